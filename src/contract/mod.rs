//! The message contract: what `serve` sends, and what `load` and `smoke` check.
//!
//! This module is pure: no sockets, files or clocks. Timestamps are parameters.
//!
//! # Wire format (contract version [`CONTRACT_VERSION`])
//!
//! `WS /ws/live/{game_id}` sends one JSON object per text frame. Every frame has the
//! envelope:
//!
//! | field     | type   | meaning                                                          |
//! |-----------|--------|------------------------------------------------------------------|
//! | `type`    | string | `snapshot`, `update`, `status`, `heartbeat`, `final`, `error`, `pong` |
//! | `game_id` | string | the game this stream is about                                    |
//! | `seq`     | int    | per-game sequence; `update`, `status` and `final` each add exactly 1, every other type repeats the latest |
//! | `ts`      | int    | Unix time in microseconds when the server wrote (serialized) the frame |
//!
//! Bodies by type (see [`frame`]): `snapshot` has `game` (teams, league, start) and
//! `data` (the latest [`Point`]); `update` and `final` have `data`; `status` has
//! `state`, `sources` and `message`; `error` has `code` and `message`; `pong` echoes
//! `id`. A [`Point`] carries `observed_at`, the Unix microseconds at which the server
//! observed the upstream change, so end-to-end latency is `receive time - observed_at`.
//!
//! Since 1.1.0 the `snapshot` and `GET /api/live/games` carry the server's `epoch`, new
//! at each start; a client resuming with `?since=SEQ&epoch=E` from another epoch gets
//! an `epoch_changed` error and a fresh snapshot instead of a replay.
//!
//! Since 1.2.0 every point (and `status` frame) carries `as_of`: when the server last
//! heard from ESPN and from Kalshi about the game, so a client can say how old the
//! values beside a `stale` source are, and since when a `down` source's are withheld.
//!
//! Since 1.3.0 `/health` says how a streaming source (Kalshi) is reached: `stream`
//! `streaming`, `polling` (no key for its stream) or `down` (with why), and what the
//! search for the day's games found (`games`); a market's
//! prices may be null (no bid, no ask, never traded), and a settled market carries
//! its `settlement` instead of its last order book; a game's state may also be
//! `postponed`, `canceled` or `suspended`.
//!
//! Objects may grow new fields, and `error` frames new codes, in a minor contract
//! version; clients must ignore fields they do not know and treat unknown codes as
//! errors without a special meaning.
//!
//! To add a frame type: 1. add a variant to [`FrameType`] and a body struct in
//! [`frame`]; 2. add its `$defs` entry to `fixtures/schemas/frames.schema.json` and
//! to the root `oneOf`; 3. say whether it is data-bearing in
//! [`FrameType::is_data_bearing`]; 4. document it in README "The message contract".

pub mod asyncapi;
pub mod check;
pub mod close;
pub mod frame;
pub mod game;
pub mod rules;
pub mod schema;

pub use frame::*;
pub use game::*;

/// The version of the published contract (the schemas in `fixtures/schemas`).
pub const CONTRACT_VERSION: &str = "1.3.0";

/// The WebSocket subprotocol of this contract, chosen when a client offers it.
pub const SUBPROTOCOL: &str = "livegames.v1";

/// The contract version the embedded schemas describe (their `x-contract-version`).
pub const FRAMES_SCHEMA_VERSION: &str = CONTRACT_VERSION;

/// Client frames larger than this are refused with close code 1009.
pub const MAX_CLIENT_FRAME_BYTES: usize = 64 * 1024;

/// The longest gap between two frames on a healthy stream.
pub const HEARTBEAT_INTERVAL_SECS: u64 = 5;
