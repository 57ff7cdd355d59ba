//! The checks every run makes, budgets or not: users connected, frames read, users
//! stayed, compression agreed (when offered), requests answered. Nothing measured
//! never passes, and each says what it saw.

use serde::Serialize;

use crate::load::measure::recorder::Counters;
use crate::load::measure::unreadable::Unreadable;

/// A check every run makes, budgets or not: nothing measured never passes.
#[derive(Debug, Clone, Serialize)]
pub struct RunCheck {
    pub name: &'static str,
    pub passed: bool,
    /// What was seen, e.g. `48 of 50 users connected`.
    pub observed: String,
}

/// What the run checks look at.
pub struct Ran<'a> {
    pub counts: &'a Counters,
    /// The users this run meant to connect.
    pub conns: usize,
    /// `--allow-drops`.
    pub drops_allowed: bool,
    /// For an HTTP run: requests answered, and made.
    pub http: Option<(u64, u64)>,
}

/// The run checks: every user connected and frames arrived (WebSocket), or requests
/// were answered (HTTP).
pub fn run_checks(ran: Ran<'_>) -> Vec<RunCheck> {
    if let Some((answered, requests)) = ran.http {
        return vec![RunCheck {
            name: "responses",
            passed: answered > 0,
            observed: format!("{answered} of {requests} requests answered"),
        }];
    }
    let c = ran.counts;
    let mut checks = vec![
        RunCheck {
            name: "connections",
            passed: c.users_connected >= ran.conns as u64,
            observed: format!("{} of {} users connected", c.users_connected, ran.conns),
        },
        frames_check(c),
        stayed_check(c, ran.drops_allowed),
    ];
    // Offered (`--compress`): a run that meant to measure compression and got none
    // did not measure it.
    if let Some(z) = c.compression.as_ref().filter(|z| !z.offered.is_empty()) {
        checks.push(RunCheck {
            name: "compression",
            passed: z.agreed_everywhere(),
            observed: z.observed(),
        });
    }
    checks
}

/// Every user that connected stayed connected to the end, or came back: a run whose
/// connections the server dropped did not measure what it claims to.
fn stayed_check(c: &Counters, allowed: bool) -> RunCheck {
    let users = c.users_connected;
    let observed = if c.users_dropped == 0 {
        format!("{users} of {users} users stayed connected to the end or came back")
    } else {
        let causes = c
            .dropped_by
            .iter()
            .map(|(cause, n)| format!("{n} {}", crate::text::printable(cause)))
            .collect::<Vec<_>>()
            .join(", ");
        let allowed = if allowed {
            " (allowed: --allow-drops)"
        } else {
            ""
        };
        format!(
            "{} of {users} users lost their connection and did not get it back ({causes}){allowed}",
            c.users_dropped
        )
    };
    RunCheck {
        name: "stayed",
        passed: c.users_dropped == 0 || allowed,
        observed,
    }
}

/// Frames arrived and most of them could be read: a run whose frames were all
/// something else (binary, socket.io packets, an HTML page) measured nothing.
fn frames_check(c: &Counters) -> RunCheck {
    let unreadable = c.unreadable_total();
    let read = c.frames - unreadable.min(c.frames);
    let kinds = c
        .unreadable
        .iter()
        .map(|(kind, n)| format!("{n} {}", Unreadable::described(kind)))
        .collect::<Vec<_>>()
        .join(", ");
    let passed = read > 0 && unreadable * 2 <= c.frames;
    let observed = if c.frames == 0 {
        "no frames received".to_owned()
    } else if unreadable == 0 {
        format!("{} frames received and read", c.frames)
    } else if passed {
        format!(
            "{} frames received, {read} read, {unreadable} unreadable ({kinds})",
            c.frames
        )
    } else {
        let first = c
            .unreadable_examples
            .first()
            .and_then(|e| e.split_once(": "))
            .map(|(_, shown)| format!(": the first was {shown}"))
            .unwrap_or_default();
        let looks = c
            .unreadable_looks_like
            .as_deref()
            .map(|l| format!(", which looks like {l}"))
            .unwrap_or_default();
        format!(
            "{unreadable} of {} frames could not be read ({kinds}){first}{looks}",
            c.frames
        )
    };
    RunCheck {
        name: "frames",
        passed,
        observed,
    }
}
