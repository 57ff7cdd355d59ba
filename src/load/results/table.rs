//! The summary as a person reads it on the terminal: totals, the latency table, HTTP
//! paths, then errors, notes, checks and budgets. Text from the server (error kinds,
//! worker names) is made printable first.

use std::fmt::Write;

use super::summary::{LoadSummary, count_text};
use crate::load::measure::unreadable::Unreadable;
use crate::units::format_micros;

impl LoadSummary {
    /// The summary for people: totals, latency table, HTTP paths, then errors, notes
    /// and budgets.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "livegames load: {} connections, {:.1}s{}",
            self.conns,
            self.duration_s,
            if self.stopped_early {
                " (stopped early)"
            } else {
                ""
            }
        );
        self.render_totals(&mut out);
        self.render_latency(&mut out);
        self.render_http(&mut out);
        self.render_notes(&mut out);
        out
    }

    fn render_totals(&self, out: &mut String) {
        let t = &self.totals;
        let c = &t.counts;
        if c.connect_attempts == 0 {
            return;
        }
        let _ = writeln!(
            out,
            "  frames {} ({:.0}/s), bytes {}, lost {}, duplicates {}, reordered {}",
            c.frames,
            t.frames_per_s,
            c.bytes,
            count_text(c.lost),
            count_text(c.duplicates),
            count_text(c.reordered)
        );
        if c.binary_frames > 0 {
            let _ = writeln!(out, "  binary frames {}", c.binary_frames);
        }
        if !c.unreadable.is_empty() {
            let kinds: Vec<String> = c
                .unreadable
                .iter()
                .map(|(kind, n)| format!("{} {n}", Unreadable::described(kind)))
                .collect();
            let _ = writeln!(out, "  unreadable frames: {}", kinds.join(", "));
            for example in &c.unreadable_examples {
                let _ = writeln!(out, "    {}", crate::text::printable(example));
            }
        }
        if c.restarts > 0 {
            let _ = writeln!(
                out,
                "  server restarts seen {}, resumes that could not recover {}",
                c.restarts, c.unrecoverable
            );
        }
        let _ = writeln!(
            out,
            "  connections: {} attempted, {} connected, peak open {}, disconnects {}, reconnects {}/{}",
            c.connect_attempts,
            c.connected,
            t.peak_open,
            c.disconnects,
            c.reconnect_successes,
            c.reconnect_attempts
        );
        if let Some(s) = t.all_open_after_s {
            let _ = writeln!(out, "  all {} connections open after {:.2}s", self.conns, s);
        }
        if let Some(w) = &self.worker {
            let run = w
                .run_id
                .as_deref()
                .map(|r| format!(", run {r}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  shard {} (worker {}{})",
                w.shard,
                crate::text::printable(&w.name),
                crate::text::printable(&run)
            );
        }
        if let Some(start) = &self.start {
            let _ = writeln!(
                out,
                "  started {:.1} ms after --start-at {}",
                start.slip_ms, start.at
            );
        }
    }

    fn render_latency(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "  {:<12} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "latency", "count", "p50", "p90", "p95", "p99", "p99.9", "max"
        );
        for (name, p) in &self.latency {
            let [count, p50, p90, p95, p99, p999, max] = p.cells();
            let _ = writeln!(
                out,
                "  {name:<12} {count:>8} {p50:>10} {p90:>10} {p95:>10} {p99:>10} {p999:>10} {max:>10}"
            );
        }
    }

    fn render_http(&self, out: &mut String) {
        let Some(h) = &self.http else {
            return;
        };
        let _ = writeln!(
            out,
            "  http: {} users, {} requests ({:.0}/s), {} failed",
            h.users, h.requests, h.requests_per_s, h.failures
        );
        for (path, p) in &h.by_path {
            let codes: Vec<String> = p
                .status_codes
                .iter()
                .map(|(c, n)| format!("{c}x{n}"))
                .collect();
            let _ = writeln!(
                out,
                "    {path:<28} {:>7} req  p50 {:>9}  p95 {:>9}  p99 {:>9}  max {:>9}  [{}]",
                p.requests,
                format_micros(p.p50_us),
                format_micros(p.p95_us),
                format_micros(p.p99_us),
                format_micros(p.max_us),
                codes.join(" ")
            );
        }
    }

    /// Errors, the clock, the generator's CPU, warnings and budgets.
    fn render_notes(&self, out: &mut String) {
        let errors = &self.totals.counts.errors;
        if !errors.is_empty() {
            let list: Vec<String> = errors
                .iter()
                .map(|(k, v)| format!("{} {v}", crate::text::printable(k)))
                .collect();
            let _ = writeln!(out, "  errors: {}", list.join(", "));
            for (kind, said) in &self.totals.counts.error_examples {
                let _ = writeln!(
                    out,
                    "    {}: {}",
                    crate::text::printable(kind),
                    crate::text::printable(said)
                );
            }
        }
        if let Some(p) = &self.subprotocol {
            let _ = writeln!(out, "  subprotocol: {p}");
        }
        if let Some(z) = &self.totals.counts.compression {
            let _ = writeln!(out, "  compression: {}", z.observed());
        }
        if !self.tls_verified {
            let _ = writeln!(
                out,
                "  warning: TLS certificates were not verified (--insecure)"
            );
        }
        if let Some(c) = &self.clock {
            let _ = writeln!(out, "  clock: {}", c.note);
        }
        if let Some(cpu) = self.generator_cpu_percent {
            let _ = writeln!(out, "  generator CPU: {cpu:.0}%");
        }
        for w in &self.warnings {
            let _ = writeln!(out, "  warning: {w}");
        }
        for c in &self.checks {
            let verdict = if c.passed { "PASS" } else { "FAIL" };
            let _ = writeln!(out, "  check {verdict} {}: {}", c.name, c.observed);
        }
        for b in &self.budgets {
            let verdict = if b.passed { "PASS" } else { "FAIL" };
            let note = b
                .note
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  budget {verdict} {}: measured {} (limit {}){note}",
                b.budget, b.measured, b.limit
            );
        }
    }
}
