//! What the mock upstreams share: their configuration, the recordings, the replay
//! clock and schedules, the fault plan and the API-SPORTS usage count.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::faults::FaultPlan;
use super::recordings::Recordings;
use super::replay::{ReplayClock, Schedule};
use crate::feeds::kalshi::auth::{KeyError, Signer, Verifier};
use crate::shutdown::Shutdown;

/// The key id the mock Kalshi's own key pair goes by.
pub const MOCK_KALSHI_KEY_ID: &str = "livegames-mock-kalshi-key";

/// The key `serve` signs its requests to the mock Kalshi with when it is given none:
/// the mock's own pair (a test credential, published with the recordings), so the
/// default run signs and verifies exactly as a deployment against Kalshi does.
pub fn mock_kalshi_signer() -> Result<Signer, KeyError> {
    const PEM: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/mock-feeds/kalshi/mock-signing-key.pem"
    ));
    Signer::from_pem(MOCK_KALSHI_KEY_ID, PEM.as_bytes(), "the mock Kalshi key")
}

/// The key the mock API-SPORTS accepts unless told otherwise; `serve` gives it to its
/// own scores client so the scores endpoints work out of the box.
pub const DEFAULT_APISPORTS_KEY: &str = "livegames-mock-key";

#[derive(Debug, Clone)]
pub struct MockConfig {
    /// Replay seconds per wall second.
    pub speed: f64,
    /// Kalshi ticker messages per second per live market.
    pub rate: f64,
    pub apisports_key: String,
    /// API-SPORTS plan limits the mock enforces (requests per day and per minute).
    pub apisports_per_day: u32,
    pub apisports_per_minute: u32,
    /// Checks the signature of every Kalshi WebSocket handshake, as Kalshi does (an
    /// unsigned or badly signed one gets 401); None: any handshake is taken.
    pub kalshi_verifier: Option<Verifier>,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            speed: 1.0,
            rate: 2.0,
            apisports_key: DEFAULT_APISPORTS_KEY.to_owned(),
            apisports_per_day: 7_500,
            apisports_per_minute: 300,
            kalshi_verifier: None,
        }
    }
}

/// Shared state of the mock upstreams.
#[derive(Clone)]
pub struct MockState(pub(super) Arc<Inner>);

pub(super) struct Inner {
    pub(super) recordings: Recordings,
    pub(super) clock: ReplayClock,
    pub(super) nba: Schedule,
    pub(super) nfl: Schedule,
    pub(super) nhl: Schedule,
    pub(super) faults: FaultPlan,
    pub(super) config: MockConfig,
    pub(super) apisports_usage: Mutex<crate::feeds::quota::QuotaLimiter>,
    pub(super) shutdown: Shutdown,
}

impl MockState {
    pub fn new(
        recordings: Recordings,
        config: MockConfig,
        faults: FaultPlan,
        started: Instant,
        shutdown: Shutdown,
    ) -> Self {
        let durations: Vec<f64> = recordings.nba.iter().map(|g| g.duration_s).collect();
        let staggered = |n: usize, d: f64| Schedule::new(&vec![d; n]);
        let nfl = staggered(recordings.nfl.games.len(), recordings.nfl.duration_s);
        let nhl = staggered(recordings.nhl.games.len(), recordings.nhl.duration_s);
        let usage = crate::feeds::quota::QuotaLimiter::new(
            config.apisports_per_day,
            config.apisports_per_minute,
        );
        MockState(Arc::new(Inner {
            clock: ReplayClock::new(started, config.speed),
            nba: Schedule::new(&durations),
            nfl,
            nhl,
            recordings,
            faults,
            config,
            apisports_usage: Mutex::new(usage),
            shutdown,
        }))
    }

    pub fn faults(&self) -> &FaultPlan {
        &self.0.faults
    }

    pub fn recordings(&self) -> &Recordings {
        &self.0.recordings
    }

    /// Where the replay is now, in recording seconds.
    pub(super) fn replay_s(&self) -> f64 {
        self.0.clock.replay_s(Instant::now())
    }
}
