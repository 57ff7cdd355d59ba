//! Mutated input for `contract validate`: a stream's real frames, as NDJSON, as an
//! array or run together, mutated, fed to the same function the command runs, on a
//! thread of its own so a hang is seen (and a panic caught) without stopping the rest.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fastrand::Rng;
use livegames::contract::schema::Schemas;
use livegames::inspect::validate::validate;

use super::mutate::{escaped, mutate};
use super::{Finding, Kind, Plan, Shared};

/// Frames used when the target's stream gave none.
const FALLBACK_FRAMES: [&str; 2] = [
    r#"{"type":"snapshot","game_id":"g1","seq":1,"ts":1700000000000000,"data":{"state":"live"}}"#,
    r#"{"type":"heartbeat","game_id":"g1","seq":1,"ts":1700000000000001}"#,
];

/// The validating thread, and the input it is on.
pub struct Validating {
    done: tokio::sync::oneshot::Receiver<()>,
    current: Arc<Mutex<Vec<u8>>>,
}

/// Starts validating mutated inputs until `until`.
pub fn spawn(samples: Vec<String>, plan: Plan, until: Instant, shared: Shared) -> Validating {
    let (tell_done, done) = tokio::sync::oneshot::channel();
    let current = Arc::new(Mutex::new(Vec::new()));
    let on = current.clone();
    std::thread::spawn(move || {
        let schemas = Schemas::builtin(false);
        let mut rng = Rng::with_seed(plan.seed);
        let samples = if samples.is_empty() {
            FALLBACK_FRAMES.iter().map(|f| f.to_string()).collect()
        } else {
            samples
        };
        while Instant::now() < until {
            let input = input(&mut rng, &samples);
            *on.lock().unwrap_or_else(|e| e.into_inner()) = input.clone();
            shared.input("validate");
            check(&input, schemas, &shared);
        }
        let _ = tell_done.send(());
    });
    Validating { done, current }
}

impl Validating {
    /// Waits for the thread's last input; one still running after `grace` is a hang.
    pub async fn finish(self, grace: Duration, shared: &Shared) {
        if tokio::time::timeout(grace, self.done).await.is_err() {
            let input = self
                .current
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let detail = format!("still validating {} bytes after the run", input.len());
            shared.finding(Finding::new(Kind::Hang, "validate", detail, input));
        }
    }
}

/// Validates one input; a panic is a finding, and so is a report that does not add up.
fn check(input: &[u8], schemas: &Schemas, shared: &Shared) {
    match catch_unwind(AssertUnwindSafe(|| validate(Cursor::new(input), schemas))) {
        Ok(Ok(report)) => {
            let verdict = if report.passed() {
                "valid"
            } else {
                "violations"
            };
            shared.outcome(format!("validate {verdict}"), input);
        }
        Ok(Err(e)) => shared.outcome(format!("validate read error: {e}"), input),
        Err(panic) => shared.finding(Finding::new(
            Kind::Panic,
            "validate",
            format!("panicked: {}", escaped(panic_text(&panic).as_bytes(), 300)),
            input.to_vec(),
        )),
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// One to five frames, laid out one way or another, then mutated four times in five.
fn input(rng: &mut Rng, samples: &[String]) -> Vec<u8> {
    let frames: Vec<&str> = (0..rng.usize(1..=5))
        .map(|_| samples[rng.usize(0..samples.len())].as_str())
        .collect();
    let text = match rng.u8(0..3) {
        0 => frames.join("\n"),
        1 => format!("[{}]", frames.join(",")),
        _ => frames.concat(),
    };
    if rng.u8(0..5) == 0 {
        text.into_bytes()
    } else {
        mutate(rng, text.as_bytes(), 6)
    }
}
