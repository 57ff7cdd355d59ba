//! The checks by name ([`CheckId`]), which of them run ([`Selection`]), and what each
//! one found ([`CheckResult`]).
//!
//! To add a check: 1. add a [`CheckId`] variant, list it in [`CheckId::ALL`] (report
//! order) and give it a name and a one-line description; 2. write it as an async fn
//! in `smoke/checks/` returning a [`CheckResult`]; 3. call it from `smoke::run`;
//! 4. test it against a server broken in exactly that way (`tests/smoke.rs`) and list
//! it in README "Smoke checks".

use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::contract::check::Violation;

/// Violations listed per check; the rest are counted.
pub const MAX_LISTED: usize = 50;

/// Every check smoke knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckId {
    Health,
    HealthUpstreams,
    HealthStore,
    Games,
    Advertised,
    Timeline,
    WsConnect,
    WsSnapshotFirst,
    WsFrames,
    WsJson,
    WsSchema,
    WsSeq,
    WsTs,
    WsHeartbeat,
    WsResume,
    WsEpoch,
    WsPing,
    WsUnknownGame,
    SseStream,
    HttpUnknownPath,
    TimelineMatchesStream,
    ScoresNfl,
    ScoresNhl,
    AdminFaults,
}

impl CheckId {
    /// Every check, in report order.
    pub const ALL: [CheckId; 24] = [
        CheckId::Health,
        CheckId::HealthUpstreams,
        CheckId::HealthStore,
        CheckId::Games,
        CheckId::Advertised,
        CheckId::Timeline,
        CheckId::WsConnect,
        CheckId::WsSnapshotFirst,
        CheckId::WsFrames,
        CheckId::WsJson,
        CheckId::WsSchema,
        CheckId::WsSeq,
        CheckId::WsTs,
        CheckId::WsHeartbeat,
        CheckId::WsResume,
        CheckId::WsEpoch,
        CheckId::WsPing,
        CheckId::WsUnknownGame,
        CheckId::SseStream,
        CheckId::HttpUnknownPath,
        CheckId::TimelineMatchesStream,
        CheckId::ScoresNfl,
        CheckId::ScoresNhl,
        CheckId::AdminFaults,
    ];

    /// The name in `--checks`, the checklist, JSON and JUnit.
    pub fn name(self) -> &'static str {
        match self {
            CheckId::Health => "health",
            CheckId::HealthUpstreams => "health.upstreams",
            CheckId::HealthStore => "health.store",
            CheckId::Games => "games",
            CheckId::Advertised => "games.advertised",
            CheckId::Timeline => "timeline",
            CheckId::WsConnect => "ws.connect",
            CheckId::WsSnapshotFirst => "ws.snapshot_first",
            CheckId::WsFrames => "ws.frames",
            CheckId::WsJson => "ws.json",
            CheckId::WsSchema => "ws.schema",
            CheckId::WsSeq => "ws.seq",
            CheckId::WsTs => "ws.ts",
            CheckId::WsHeartbeat => "ws.heartbeat",
            CheckId::WsResume => "ws.resume",
            CheckId::WsEpoch => "ws.epoch",
            CheckId::WsPing => "ws.ping",
            CheckId::WsUnknownGame => "ws.unknown_game",
            CheckId::SseStream => "sse.stream",
            CheckId::HttpUnknownPath => "http.unknown_path",
            CheckId::TimelineMatchesStream => "timeline.matches_stream",
            CheckId::ScoresNfl => "scores.nfl",
            CheckId::ScoresNhl => "scores.nhl",
            CheckId::AdminFaults => "admin.faults",
        }
    }

    /// What the check verifies, in one line.
    pub fn about(self) -> &'static str {
        match self {
            CheckId::Health => "GET /health answers 200 with a known status",
            CheckId::HealthUpstreams => {
                "/health reports every upstream it uses (ESPN, Kalshi, API-SPORTS) ok"
            }
            CheckId::HealthStore => {
                "/health reports its store (InfluxDB) writing; skipped when it has none"
            }
            CheckId::Games => "GET /api/live/games is valid and lists a live game",
            CheckId::Advertised => {
                "each game's ws_url and timeline_url point where this server was reached"
            }
            CheckId::Timeline => "GET /api/games/{id}/timeline is valid",
            CheckId::WsConnect => "WS /ws/live/{id} opens",
            CheckId::WsSnapshotFirst => "the first frame is the game's snapshot",
            CheckId::WsFrames => "--messages frames arrive within --timeout",
            CheckId::WsJson => "every frame is one JSON object",
            CheckId::WsSchema => "every frame is valid against its type's schema",
            CheckId::WsSeq => "seq never goes back; data frames step by exactly 1",
            CheckId::WsTs => "ts is Unix microseconds within --max-skew of the local clock",
            CheckId::WsHeartbeat => "a heartbeat comes when nothing else does",
            CheckId::WsResume => "?since=SEQ continues at SEQ+1, then a snapshot",
            CheckId::WsEpoch => {
                "1.1.0: one epoch in /api/live/games and the snapshot; a resume from another gets epoch_changed and a fresh snapshot"
            }
            CheckId::WsPing => "a ping gets its pong",
            CheckId::WsUnknownGame => "an unknown game gets an error frame and close 4404",
            CheckId::SseStream => {
                "GET /sse/live/{id}: the same frames as events (type, id = seq), resumed with Last-Event-ID; skipped on 404"
            }
            CheckId::HttpUnknownPath => "an unknown path gets 404",
            CheckId::TimelineMatchesStream => {
                "timeline points have the shape and data of live updates"
            }
            CheckId::ScoresNfl => {
                "GET /api/nfl/scores answers 200 with scores or 503 with a reason"
            }
            CheckId::ScoresNhl => {
                "GET /api/nhl/scores answers 200 with scores or 503 with a reason"
            }
            CheckId::AdminFaults => {
                "an injected ESPN outage shows in status frames and /health, then clears (needs --admin-token)"
            }
        }
    }

    /// Whether it is judged on the main stream's frames (one connection serves them all).
    pub fn on_main_stream(self) -> bool {
        matches!(
            self,
            CheckId::WsConnect
                | CheckId::WsSnapshotFirst
                | CheckId::WsFrames
                | CheckId::WsJson
                | CheckId::WsSchema
                | CheckId::WsSeq
                | CheckId::WsTs
        )
    }

    /// Whether `--checks default` runs it (admin.faults changes the server: opt in).
    pub fn on_by_default(self) -> bool {
        self != CheckId::AdminFaults
    }

    pub fn from_name(name: &str) -> Option<CheckId> {
        CheckId::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The position in the report.
    pub fn order(self) -> usize {
        CheckId::ALL
            .iter()
            .position(|c| *c == self)
            .unwrap_or(usize::MAX)
    }
}

impl Serialize for CheckId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl std::fmt::Display for CheckId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // pad, not write_str: the checklist aligns names with a width.
        f.pad(self.name())
    }
}

/// Which checks to run, from `--checks`: names, `ws.*`-style prefixes, `default`, `all`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection(Vec<CheckId>);

impl Selection {
    pub fn default_checks() -> Self {
        Self(
            CheckId::ALL
                .into_iter()
                .filter(|c| c.on_by_default())
                .collect(),
        )
    }

    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut chosen: Vec<CheckId> = Vec::new();
        for word in spec.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            let matched: Vec<CheckId> = match word {
                "all" => CheckId::ALL.to_vec(),
                "default" => Self::default_checks().0,
                w if w.ends_with(".*") => {
                    let prefix = &w[..w.len() - 1];
                    CheckId::ALL
                        .into_iter()
                        .filter(|c| c.name().starts_with(prefix))
                        .collect()
                }
                w => CheckId::from_name(w).into_iter().collect(),
            };
            if matched.is_empty() {
                let names: Vec<&str> = CheckId::ALL.iter().map(|c| c.name()).collect();
                return Err(format!(
                    "--checks: unknown check {word:?}; known: default, all, {}, or a prefix such as ws.*",
                    names.join(", ")
                ));
            }
            for id in matched {
                if !chosen.contains(&id) {
                    chosen.push(id);
                }
            }
        }
        if chosen.is_empty() {
            return Err("--checks: name at least one check".into());
        }
        Ok(Self(chosen))
    }

    pub fn has(&self, id: CheckId) -> bool {
        self.0.contains(&id)
    }

    pub fn any(&self, ids: &[CheckId]) -> bool {
        ids.iter().any(|id| self.has(*id))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

/// One line of the checklist.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub name: CheckId,
    pub about: &'static str,
    pub status: Status,
    pub duration_ms: f64,
    /// One line: what was seen (pass), why it failed, or why it was skipped.
    pub detail: String,
    pub violation_count: usize,
    /// The first [`MAX_LISTED`] violations.
    pub violations: Vec<Violation>,
}

impl CheckResult {
    fn new(id: CheckId, took: Duration) -> Self {
        Self {
            name: id,
            about: id.about(),
            status: Status::Pass,
            duration_ms: took.as_secs_f64() * 1000.0,
            detail: String::new(),
            violation_count: 0,
            violations: Vec::new(),
        }
    }

    pub(crate) fn pass(id: CheckId, took: Duration, detail: impl Into<String>) -> Self {
        Self {
            detail: shown(detail.into()),
            ..Self::new(id, took)
        }
    }

    pub(crate) fn fail(id: CheckId, took: Duration, detail: impl Into<String>) -> Self {
        Self {
            status: Status::Fail,
            detail: shown(detail.into()),
            ..Self::new(id, took)
        }
    }

    pub(crate) fn skip(id: CheckId, why: impl Into<String>) -> Self {
        Self {
            status: Status::Skip,
            detail: shown(why.into()),
            ..Self::new(id, Duration::ZERO)
        }
    }

    /// Pass with `ok` when `violations` is empty, else fail listing them.
    pub(crate) fn judged(
        id: CheckId,
        took: Duration,
        ok: impl Into<String>,
        violations: Vec<Violation>,
    ) -> Self {
        if violations.is_empty() {
            return Self::pass(id, took, ok);
        }
        let count = violations.len();
        let first = &violations[0];
        let detail = format!(
            "{count} violation{}: expected {}; got {}",
            if count == 1 { "" } else { "s" },
            first.expected,
            first.actual
        );
        Self {
            status: Status::Fail,
            detail,
            violation_count: count,
            violations: violations.into_iter().take(MAX_LISTED).collect(),
            ..Self::new(id, took)
        }
    }
}

/// A detail as it may be printed: text from the server is shown, never obeyed.
fn shown(detail: String) -> String {
    crate::text::printable(&detail).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_take_names_prefixes_and_groups() {
        let ws = Selection::parse("ws.*").unwrap();
        assert!(ws.has(CheckId::WsSeq) && ws.has(CheckId::WsPing) && !ws.has(CheckId::Health));
        let all = Selection::parse("all").unwrap();
        assert!(all.has(CheckId::AdminFaults));
        assert!(!Selection::default_checks().has(CheckId::AdminFaults));
        let mixed = Selection::parse("default, admin.faults").unwrap();
        assert!(mixed.has(CheckId::AdminFaults) && mixed.has(CheckId::Health));
        let e = Selection::parse("health,nope").unwrap_err();
        assert!(e.contains("\"nope\"") && e.contains("ws.seq"), "{e}");
        assert!(Selection::parse(" , ").is_err());
    }

    #[test]
    fn every_check_has_a_unique_name_that_parses_back() {
        for id in CheckId::ALL {
            assert_eq!(CheckId::from_name(id.name()), Some(id));
            assert!(!id.about().is_empty());
        }
    }

    #[test]
    fn a_check_with_violations_fails_and_names_the_first() {
        let v = Violation::new("seq", 7, "/seq", "seq 8", "seq 6", "{}");
        let r = CheckResult::judged(CheckId::WsSeq, Duration::from_millis(5), "ok", vec![v]);
        assert_eq!(r.status, Status::Fail);
        assert_eq!(r.detail, "1 violation: expected seq 8; got seq 6");
        let ok = CheckResult::judged(CheckId::WsSeq, Duration::ZERO, "in order", vec![]);
        assert_eq!((ok.status, ok.detail.as_str()), (Status::Pass, "in order"));
    }
}
