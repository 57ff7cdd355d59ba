//! The live stream of each game, apart from any socket: its [`hub`] (seq, one
//! serialization per frame into an [`outgoing`] frame, the history a resume
//! replays), its subscribers in [`lanes`] so no client is always served first,
//! joining it ([`resume`]), and the [`inbound`] limit on what a client may send.
//! Each game's [`direct`] writers hand its frames to the sockets of viewers with
//! nothing queued.

pub mod direct;
mod history;
pub mod hub;
pub mod inbound;
mod lanes;
pub mod outgoing;
pub mod resume;
