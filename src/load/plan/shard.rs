//! One run over many workers: `--shard I/N` (or `--shards N` with Kubernetes'
//! `JOB_COMPLETION_INDEX`). Connections are dealt round-robin by their index in the
//! whole run: connection `j` belongs to shard `j mod N`, opens at the instant the
//! ramp gives `j`, streams game `j mod games` and gets phase `j`; so N workers
//! together open exactly `--conns`, on the same games, on the same schedule, as one
//! process would, and `report merge` can put them back together.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

/// One worker's part of a run's connections (from [`Shard::share`]): `run_conns` is
/// always the whole run's count, `conns` always this worker's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    pub shard: Shard,
    /// Connections of the whole run (`--conns`, a stage's `conns`).
    pub run_conns: usize,
    /// Of those, the ones this worker opens.
    pub conns: usize,
}

impl Share {
    /// A run on one worker: every connection is its own.
    pub fn whole(conns: usize) -> Share {
        Shard::default().share(conns)
    }

    /// The run-wide index of this worker's `local`-th connection.
    pub fn global(&self, local: usize) -> usize {
        self.shard.global(local)
    }
}

/// The environment variable a Kubernetes Indexed Job sets in each pod.
pub const JOB_COMPLETION_INDEX: &str = "JOB_COMPLETION_INDEX";

/// Shard `index` of `count` (0-based, as Kubernetes numbers a Job's completions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Default for Shard {
    /// A run on one worker.
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("--shard {0:?}: expected I/N, e.g. 0/4 (shards are numbered from 0)")]
    Syntax(String),
    #[error("there must be at least one shard (got {0})")]
    NoShards(usize),
    #[error("shard {index} of {count} is out of range: shards are numbered 0 to {last}", last = count - 1)]
    OutOfRange { index: usize, count: usize },
    #[error(
        "--shards {count} needs this worker's index: --shard I/{count}, or {JOB_COMPLETION_INDEX} (set in each pod of a Kubernetes Indexed Job)"
    )]
    NoIndex { count: usize },
    #[error("{JOB_COMPLETION_INDEX}={0:?} is not a shard index (a whole number from 0)")]
    BadIndex(String),
    #[error("--shard {shard} and --shards {count} disagree on the number of shards")]
    Mismatch { shard: Shard, count: usize },
    #[error(
        "{what} {conns} over {count} shards leaves shard {empty} with no connection: give at least {count}, or fewer shards"
    )]
    TooFewConns {
        what: String,
        conns: usize,
        count: usize,
        empty: usize,
    },
}

impl Shard {
    pub fn new(index: usize, count: usize) -> Result<Shard, ShardError> {
        if count == 0 {
            return Err(ShardError::NoShards(count));
        }
        if index >= count {
            return Err(ShardError::OutOfRange { index, count });
        }
        Ok(Shard { index, count })
    }

    /// From `--shard`, `--shards` and the environment's `JOB_COMPLETION_INDEX`
    /// (`env`): `--shard` wins; `--shards` alone takes the index from the Job.
    pub fn resolve(
        shard: Option<&str>,
        shards: Option<usize>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Shard>, ShardError> {
        match (shard, shards) {
            (None, None) => Ok(None),
            (Some(spec), count) => {
                let shard: Shard = spec.parse()?;
                match count {
                    Some(count) if count != shard.count => {
                        Err(ShardError::Mismatch { shard, count })
                    }
                    _ => Ok(Some(shard)),
                }
            }
            (None, Some(count)) => {
                let index = env(JOB_COMPLETION_INDEX).ok_or(ShardError::NoIndex { count })?;
                let index = index
                    .trim()
                    .parse()
                    .map_err(|_| ShardError::BadIndex(index.clone()))?;
                Shard::new(index, count).map(Some)
            }
        }
    }

    /// This shard's part of a run of `run_conns` connections: the one place a
    /// worker's share is worked out.
    pub fn share(self, run_conns: usize) -> Share {
        Share {
            shard: self,
            run_conns,
            conns: self.conns(run_conns),
        }
    }

    /// How many of `total` connections are this shard's.
    fn conns(&self, total: usize) -> usize {
        total / self.count + usize::from(self.index < total % self.count)
    }

    /// The run-wide index of this shard's `local`-th connection.
    pub fn global(&self, local: usize) -> usize {
        self.index + local * self.count
    }

    /// An error when `total` connections leave a shard with none (`what` names them
    /// in the message: `--conns`, or a scenario stage).
    pub fn check_conns(&self, what: &str, total: usize) -> Result<(), ShardError> {
        if total >= self.count {
            return Ok(());
        }
        Err(ShardError::TooFewConns {
            what: what.to_owned(),
            conns: total,
            count: self.count,
            empty: total,
        })
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Shard, ShardError> {
        let syntax = || ShardError::Syntax(s.to_owned());
        let (index, count) = s.trim().split_once('/').ok_or_else(syntax)?;
        let index = index.trim().parse().map_err(|_| syntax())?;
        let count = count.trim().parse().map_err(|_| syntax())?;
        Shard::new(index, count)
    }
}

/// The latest `--start-at` accepted: a worker told to wait longer is a typo, not a plan.
pub const MAX_START_WAIT: Duration = Duration::from_secs(24 * 3600);

/// A `--start-at` that cannot be waited for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    #[error(
        "--start-at {0:?}: expected an RFC 3339 time (2026-12-02T20:00:00Z) or +DURATION from now (+30s)"
    )]
    Syntax(String),
    #[error("--start-at {given}: that was {ago} ago; give a time in the future (or +30s from now)")]
    Past { given: String, ago: String },
    #[error("--start-at {given}: that is {ahead} away, more than the 24 h a worker will wait")]
    TooFar { given: String, ahead: String },
}

/// The instant `--start-at` names, judged against `now`.
pub fn start_instant(spec: &str, now: SystemTime) -> Result<SystemTime, StartError> {
    let spec = spec.trim();
    let at = match spec.strip_prefix('+') {
        Some(delay) => {
            let delay = humantime::parse_duration(delay)
                .map_err(|_| StartError::Syntax(spec.to_owned()))?;
            now + delay
        }
        None => humantime::parse_rfc3339(spec).map_err(|_| StartError::Syntax(spec.to_owned()))?,
    };
    let whole =
        |d: Duration| humantime::format_duration(Duration::from_secs(d.as_secs())).to_string();
    match at.duration_since(now) {
        Err(past) => Err(StartError::Past {
            given: spec.to_owned(),
            ago: whole(past.duration()),
        }),
        Ok(ahead) if ahead > MAX_START_WAIT => Err(StartError::TooFar {
            given: spec.to_owned(),
            ahead: whole(ahead),
        }),
        Ok(_) => Ok(at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_together_open_exactly_the_runs_connections_once_each() {
        for (total, count) in [(10, 3), (10_000, 7), (5, 5), (100_000, 6), (8, 1)] {
            let mut seen = vec![0u8; total];
            let mut sum = 0;
            for index in 0..count {
                let shard = Shard::new(index, count).unwrap();
                let n = shard.conns(total);
                sum += n;
                for local in 0..n {
                    seen[shard.global(local)] += 1;
                }
            }
            assert_eq!(sum, total, "{total} over {count}");
            assert!(seen.iter().all(|&s| s == 1), "{total} over {count}");
        }
    }

    #[test]
    fn shard_specs_parse_and_bad_ones_say_why() {
        assert_eq!(
            "2/4".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 4 }
        );
        assert_eq!(
            "4/4".parse::<Shard>().unwrap_err().to_string(),
            "shard 4 of 4 is out of range: shards are numbered 0 to 3"
        );
        assert!(matches!(
            "0/0".parse::<Shard>(),
            Err(ShardError::NoShards(0))
        ));
        assert!(matches!("a/4".parse::<Shard>(), Err(ShardError::Syntax(_))));
        assert!(matches!("3".parse::<Shard>(), Err(ShardError::Syntax(_))));
    }

    #[test]
    fn a_kubernetes_indexed_job_gives_the_index() {
        let job = |v: &'static str| {
            move |name: &str| (name == JOB_COMPLETION_INDEX).then(|| v.to_owned())
        };
        let none = |_: &str| None;
        assert_eq!(Shard::resolve(None, None, none).unwrap(), None);
        assert_eq!(
            Shard::resolve(None, Some(4), job("3")).unwrap(),
            Some(Shard { index: 3, count: 4 })
        );
        assert!(matches!(
            Shard::resolve(None, Some(4), none),
            Err(ShardError::NoIndex { count: 4 })
        ));
        assert!(matches!(
            Shard::resolve(None, Some(4), job("x")),
            Err(ShardError::BadIndex(_))
        ));
        assert!(matches!(
            Shard::resolve(None, Some(4), job("4")),
            Err(ShardError::OutOfRange { .. })
        ));
        // --shard wins over the Job's index, but must agree with --shards.
        assert_eq!(
            Shard::resolve(Some("1/4"), Some(4), job("3")).unwrap(),
            Some(Shard { index: 1, count: 4 })
        );
        assert!(matches!(
            Shard::resolve(Some("1/4"), Some(5), none),
            Err(ShardError::Mismatch { .. })
        ));
    }

    #[test]
    fn a_start_time_is_in_the_future_and_within_a_day() {
        let now = humantime::parse_rfc3339("2026-12-02T20:00:00Z").unwrap();
        assert_eq!(
            start_instant("2026-12-02T20:01:00Z", now).unwrap(),
            now + Duration::from_secs(60)
        );
        assert_eq!(
            start_instant("+30s", now).unwrap(),
            now + Duration::from_secs(30)
        );
        assert_eq!(
            start_instant("2026-12-02T19:59:00Z", now)
                .unwrap_err()
                .to_string(),
            "--start-at 2026-12-02T19:59:00Z: that was 1m ago; give a time in the future (or +30s from now)"
        );
        assert!(matches!(
            start_instant("+2days", now),
            Err(StartError::TooFar { .. })
        ));
        assert!(matches!(
            start_instant("tomorrow", now),
            Err(StartError::Syntax(_))
        ));
    }

    #[test]
    fn too_few_connections_for_the_shards_is_refused() {
        let shard = Shard::new(0, 4).unwrap();
        assert!(shard.check_conns("--conns", 4).is_ok());
        let e = shard.check_conns("--conns", 3).unwrap_err().to_string();
        assert!(e.contains("--conns 3 over 4 shards leaves shard 3"), "{e}");
    }
}
