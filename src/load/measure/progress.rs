//! What a person sees while a run goes on: an indicatif spinner line fed once a second
//! from the collector's [`Tick`] (never per frame), or nothing (`--quiet`, `--json`,
//! not a terminal).

use super::collector::Tick;
use crate::units::format_micros;

pub struct Progress {
    bar: indicatif::ProgressBar,
    /// The stage's length, for "elapsed/total".
    total_s: f64,
}

impl Progress {
    /// A visible bar when `show`, a hidden one otherwise.
    pub fn new(show: bool, total: std::time::Duration) -> Self {
        let bar = if show {
            indicatif::ProgressBar::new_spinner()
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        Self {
            bar,
            total_s: total.as_secs_f64(),
        }
    }

    pub fn tick(&self, t: &Tick) {
        let p99 = t.p99_us.map(format_micros).unwrap_or_else(|| "-".into());
        self.bar.set_message(format!(
            "{:.0}/{:.0}s  open {}  frames/s {:.0}  p99(1s) {p99}",
            t.elapsed.as_secs_f64(),
            self.total_s,
            t.open,
            t.frames_per_s
        ));
        self.bar.tick();
    }

    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}
