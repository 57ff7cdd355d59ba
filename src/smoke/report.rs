//! The whole run's result ([`SmokeReport`]): every check's, the counts, and whether
//! the server could be reached at all.

use std::time::Instant;

use serde::Serialize;

use super::check::{CheckResult, Status};
use super::config::SmokeConfig;
use crate::contract::schema::Schemas;

/// What a run knows about itself besides its checks.
pub(super) struct RunFacts {
    pub started: Instant,
    /// `started`, as RFC 3339.
    pub started_at: String,
    /// The game the stream checks watched.
    pub game: Option<String>,
    /// Why the server could not be reached, when it could not.
    pub unreachable: Option<String>,
}

/// Version of the `--json` report layout.
pub const REPORT_VERSION: u32 = 1;

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct SmokeReport {
    pub version: u32,
    pub target: String,
    pub contract_version: String,
    pub strict: bool,
    /// False when certificates were not verified (`--insecure`).
    pub tls_verified: bool,
    pub game: Option<String>,
    pub started_at: String,
    pub duration_s: f64,
    pub passed: bool,
    pub counts: Counts,
    /// Set when the server could not be reached at all (exit 3).
    pub unreachable: Option<String>,
    pub checks: Vec<CheckResult>,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl SmokeReport {
    /// The result of check `name`, if it ran.
    pub fn check(&self, name: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.name.name() == name)
    }

    /// Names of the checks that failed.
    pub fn failed(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| c.name.name())
            .collect()
    }
}

impl SmokeReport {
    pub(super) fn finish(
        config: &SmokeConfig,
        schemas: &Schemas,
        facts: RunFacts,
        checks: Vec<CheckResult>,
    ) -> Self {
        let RunFacts {
            started,
            started_at,
            game,
            unreachable,
        } = facts;
        let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
        let counts = Counts {
            passed: count(Status::Pass),
            failed: count(Status::Fail),
            skipped: count(Status::Skip),
        };
        SmokeReport {
            version: REPORT_VERSION,
            target: config.target.origin(),
            contract_version: schemas.version().to_owned(),
            strict: schemas.is_strict(),
            tls_verified: !config.connect.insecure,
            game,
            started_at,
            duration_s: started.elapsed().as_secs_f64(),
            passed: unreachable.is_none() && counts.failed == 0,
            counts,
            unreachable,
            checks,
        }
    }
}
