//! Outbound plumbing shared by the parts that test a server: WebSocket connects with
//! timing and typed failures, `{game_id}` templating, and live-game discovery.

pub mod discover;
pub mod ws;
