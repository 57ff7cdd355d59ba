//! The fuzz campaign: mutated HTTP requests, WebSocket sessions with mutated frames
//! and mutated `contract validate` inputs, thrown at a server for a bounded time,
//! each answer judged. It sees what a client sees (status, head, body, frames,
//! silence); what only the server's host can see (panic lines, memory, open files)
//! is judged by the bench's main, which runs the server as a child process.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod http;
pub mod mutate;
pub mod process;
pub mod validate;
pub mod ws;

/// The server under test, as discovered before the campaign.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// Sent as the admin API's bearer token in some requests (mutated or not).
    pub admin_token: Option<String>,
    /// Game ids from `GET /api/live/games`; streams and timelines are opened on them.
    pub game_ids: Vec<String>,
    /// Frames read from one of the games' streams: the seeds of the validate inputs.
    pub sample_frames: Vec<String>,
}

/// How long and how hard.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub run_for: Duration,
    pub seed: u64,
    /// Concurrent clients sending HTTP requests and WebSocket sessions.
    pub workers: usize,
    /// Longest wait for an answer (or the end of a connection the client half-closed)
    /// before it counts as a hang. Above the server's header and idle timeouts.
    pub answer_deadline: Duration,
}

/// What a finding is about, in a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A panic: in the server's log, or in `contract validate`.
    Panic,
    /// A 5xx other than the documented 502/503 with a JSON `error`.
    ServerError,
    /// No answer and no end within the deadline.
    Hang,
    /// Bytes back that are not HTTP, or server frames that do not parse.
    Garbled,
    /// A header the request smuggled in came back in the answer's head.
    HeaderInjection,
    /// A Close code no server should send for a client's input.
    BadClose,
    /// An unmutated request did not get the answer it always gets.
    ControlFailed,
    /// `/health` did not answer in time during the campaign.
    Unresponsive,
    /// Memory or open files grew past the bound and did not come back.
    Growth,
}

/// One thing that went wrong, with the input that did it.
#[derive(Debug, Clone)]
pub struct Finding {
    pub kind: Kind,
    /// `http`, `ws`, `validate`, `health` or `process`.
    pub target: &'static str,
    pub detail: String,
    /// The first input that did it.
    pub input: Vec<u8>,
    /// How many inputs did the same (same kind, target and detail).
    pub times: u64,
}

impl Finding {
    pub fn new(kind: Kind, target: &'static str, detail: String, input: Vec<u8>) -> Finding {
        Finding {
            kind,
            target,
            detail,
            input,
            times: 1,
        }
    }

    /// What makes two findings the same one: a panic's place and message (not the
    /// thread that hit it), anything else's whole description.
    fn same_as(&self, other: &Finding) -> bool {
        let what = |f: &Finding| -> String {
            match f.detail.split_once("panicked at") {
                Some((_, place)) => place.to_owned(),
                None => f.detail.clone(),
            }
        };
        self.kind == other.kind && self.target == other.target && what(self) == what(other)
    }
}

/// Findings listed in full; the rest are counted.
const MAX_LISTED: usize = 50;

/// What the campaign sent and saw.
#[derive(Debug, Default)]
pub struct Report {
    /// Inputs per target (`http`, `ws`, `validate`).
    pub inputs: BTreeMap<&'static str, u64>,
    /// Outcomes per target and class: `http 4xx`, `ws close 1002`, `http silent`...
    pub outcomes: BTreeMap<String, u64>,
    /// The first input of each outcome class: what got a 4xx, silence, a 1002.
    pub examples: BTreeMap<String, Vec<u8>>,
    pub findings: Vec<Finding>,
    pub unlisted_findings: u64,
}

impl Report {
    /// Inputs that found something, each counted (the same finding many times, too).
    pub fn finding_count(&self) -> u64 {
        self.findings.iter().map(|f| f.times).sum::<u64>() + self.unlisted_findings
    }

    /// Adds a finding, or counts it against the same one already listed.
    pub fn add(&mut self, finding: Finding) {
        if let Some(same) = self.findings.iter_mut().find(|f| f.same_as(&finding)) {
            same.times += 1;
        } else if self.findings.len() < MAX_LISTED {
            self.findings.push(finding);
        } else {
            self.unlisted_findings += 1;
        }
    }
}

/// The report, shared by the campaign's clients.
#[derive(Debug, Clone, Default)]
pub struct Shared(Arc<Mutex<Report>>);

impl Shared {
    pub fn input(&self, target: &'static str) {
        *self.lock().inputs.entry(target).or_default() += 1;
    }

    pub fn outcome(&self, class: String, input: &[u8]) {
        let mut report = self.lock();
        if !report.examples.contains_key(&class) {
            report.examples.insert(class.clone(), input.to_vec());
        }
        *report.outcomes.entry(class).or_default() += 1;
    }

    pub fn finding(&self, finding: Finding) {
        self.lock().add(finding);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Report> {
        // A panic while holding the lock cannot leave a report half-updated.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn take(&self) -> Report {
        std::mem::take(&mut *self.lock())
    }
}

/// Runs the campaign against `target` for `plan.run_for`; returns what it saw.
/// Every client stops at the end of the run, at most `answer_deadline` later.
pub async fn run(target: &Target, plan: Plan) -> Report {
    let shared = Shared::default();
    let until = Instant::now() + plan.run_for;
    let validating = validate::spawn(target.sample_frames.clone(), plan, until, shared.clone());
    let mut clients = tokio::task::JoinSet::new();
    for worker in 0..plan.workers.max(1) {
        let (target, shared) = (target.clone(), shared.clone());
        let seed = plan.seed.wrapping_add(1 + worker as u64);
        clients.spawn(client_loop(target, plan, seed, until, shared));
    }
    clients.spawn(health_loop(target.addr, plan, until, shared.clone()));
    clients.join_all().await;
    validating.finish(plan.answer_deadline, &shared).await;
    shared.take()
}

/// One client: HTTP requests and WebSocket sessions, two to one, until the end.
async fn client_loop(target: Target, plan: Plan, seed: u64, until: Instant, shared: Shared) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let seeds = http::seeds(&target);
    while Instant::now() < until {
        if rng.u8(0..3) == 0 {
            ws::session(&mut rng, &target, plan.answer_deadline, &shared).await;
        } else {
            http::request(&mut rng, &target, &seeds, plan.answer_deadline, &shared).await;
        }
    }
}

/// `/health` every second: a server busy with hostile input still answers it.
async fn health_loop(addr: SocketAddr, plan: Plan, until: Instant, shared: Shared) {
    const EVERY: Duration = Duration::from_secs(1);
    let request = b"GET /health HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n";
    while Instant::now() < until {
        let started = Instant::now();
        let answer = http::exchange(addr, request, plan.answer_deadline).await;
        match answer {
            http::Answer::Response { status, .. } if status == 200 || status == 503 => {}
            other => shared.finding(Finding::new(
                Kind::Unresponsive,
                "health",
                format!("GET /health: {}", other.describe()),
                request.to_vec(),
            )),
        }
        tokio::time::sleep(EVERY.saturating_sub(started.elapsed())).await;
    }
}

/// The target's game ids and a few frames from one of its streams.
pub async fn discover(
    addr: SocketAddr,
    admin_token: Option<String>,
    deadline: Duration,
) -> Result<Target, String> {
    let url = format!("http://{addr}/api/live/games");
    let list: serde_json::Value = reqwest::Client::builder()
        .timeout(deadline)
        .build()
        .map_err(|e| e.to_string())?
        .get(&url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("GET {url}: {e}"))?
        .json()
        .await
        .map_err(|e| format!("GET {url}: not JSON: {e}"))?;
    let game_ids: Vec<String> = list["games"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g["id"].as_str().map(str::to_owned))
        .collect();
    let sample_frames = match game_ids.first() {
        Some(game) => ws::sample_frames(addr, game, 20, deadline).await,
        None => Vec::new(),
    };
    Ok(Target {
        addr,
        admin_token,
        game_ids,
        sample_frames,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_finding_is_listed_once_and_counted() {
        let mut report = Report::default();
        let panic = |thread: u32| {
            let detail =
                format!("thread 'tokio-rt-worker' ({thread}) panicked at src/a.rs:1:2: boom");
            Finding::new(Kind::Panic, "process", detail, Vec::new())
        };
        report.add(panic(1));
        report.add(panic(2));
        report.add(Finding::new(
            Kind::Hang,
            "http",
            "no end".into(),
            b"GET".to_vec(),
        ));
        report.add(Finding::new(Kind::Hang, "ws", "no end".into(), Vec::new()));
        assert_eq!(report.findings.len(), 3);
        assert_eq!(report.findings[0].times, 2);
        assert_eq!(report.finding_count(), 4);
    }
}
