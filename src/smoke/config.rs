//! What a smoke run checks and how patiently ([`SmokeConfig`]).

use std::time::Duration;

use super::check::Selection;
use crate::client::{ConnectOptions, Target};

/// The read buffer of smoke's connections: a few frames of our contract's size.
pub const READ_BUFFER: usize = 16 * 1024;

/// Frames a stream check receives after the snapshot, unless told otherwise.
pub const DEFAULT_MESSAGES: usize = 20;
/// How long any one check may wait, unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How far a frame's `ts` may be from the local clock, unless told otherwise.
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(2);

/// What to check and how patiently.
#[derive(Debug, Clone)]
pub struct SmokeConfig {
    /// The server, in any of the four schemes; its REST and stream URLs derive from it.
    pub target: Target,
    /// The game to stream; default: the first live one.
    pub game: Option<String>,
    /// Frames to receive after the snapshot.
    pub messages: usize,
    /// How long any one check may wait (connecting included).
    pub timeout: Duration,
    /// How far a frame's `ts` may be from the local clock.
    pub max_skew: Duration,
    /// The server's heartbeat interval (the contract: 5 s).
    pub heartbeat: Duration,
    pub checks: Selection,
    pub admin_token: Option<String>,
    /// How connections are opened; their connect timeout is [`SmokeConfig::timeout`].
    pub connect: ConnectOptions,
    /// Advertised URLs may point at another host or port than the one smoke reached
    /// (the server is meant to send clients elsewhere).
    pub advertised_elsewhere_ok: bool,
}

impl SmokeConfig {
    /// `livegames smoke`'s defaults against `target`.
    pub fn new(target: Target) -> Self {
        let timeout = DEFAULT_TIMEOUT;
        Self {
            target,
            game: None,
            messages: DEFAULT_MESSAGES,
            timeout,
            max_skew: DEFAULT_MAX_SKEW,
            heartbeat: Duration::from_secs(crate::contract::HEARTBEAT_INTERVAL_SECS),
            checks: Selection::default_checks(),
            admin_token: None,
            connect: ConnectOptions {
                connect_timeout: timeout,
                read_buffer: READ_BUFFER,
                ..ConnectOptions::default()
            },
            advertised_elsewhere_ok: false,
        }
    }
}
