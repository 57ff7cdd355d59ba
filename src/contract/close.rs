//! Named WebSocket close codes used by the live stream.

/// The server is shutting down (RFC 6455).
pub const GOING_AWAY: u16 = 1001;
/// The client broke a rule of the server (it kept sending faster than allowed).
pub const POLICY_VIOLATION: u16 = 1008;
/// The client sent a frame larger than [`super::MAX_CLIENT_FRAME_BYTES`] (RFC 6455).
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// The client could not keep up with the stream; it may resume with `?since=SEQ`.
pub const SLOW_CONSUMER: u16 = 4008;
/// The game id is unknown or invalid.
pub const UNKNOWN_GAME: u16 = 4404;

/// A short name for a close code, for reports and error messages.
pub fn describe(code: u16) -> &'static str {
    match code {
        1000 => "normal closure",
        GOING_AWAY => "going away (server shutdown)",
        1002 => "protocol error",
        1003 => "unsupported data",
        1006 => "abnormal closure (no close frame)",
        POLICY_VIOLATION => "policy violation (sending too fast)",
        MESSAGE_TOO_BIG => "message too big",
        1011 => "server error",
        SLOW_CONSUMER => "slow consumer",
        UNKNOWN_GAME => "unknown game",
        _ => "unnamed close code",
    }
}
