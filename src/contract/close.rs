//! Named WebSocket close codes used by the live stream.

/// The server is shutting down (RFC 6455).
pub const GOING_AWAY: u16 = 1001;
/// The client broke a rule of the WebSocket protocol or of permessage-deflate
/// (an unmasked frame, reserved bits or opcodes, a fragmented control frame, a bad
/// close payload; RFC 6455).
pub const PROTOCOL_ERROR: u16 = 1002;
/// The client sent a text message (or close reason) that is not UTF-8 (RFC 6455).
pub const INVALID_PAYLOAD: u16 = 1007;
/// The client broke a rule of the server (it kept sending faster than allowed).
pub const POLICY_VIOLATION: u16 = 1008;
/// The client sent a frame larger than [`super::MAX_CLIENT_FRAME_BYTES`] (RFC 6455).
pub const MESSAGE_TOO_BIG: u16 = 1009;
/// The client could not keep up with the stream; it may resume with `?since=SEQ`.
pub const SLOW_CONSUMER: u16 = 4008;
/// The game id is unknown or invalid.
pub const UNKNOWN_GAME: u16 = 4404;
