//! The connection: what one virtual user does, from the handshake to the last frame.
//!
//! In: a stream URL and the stage's [`config::VuConfig`]. Out: every frame read
//! ([`frame`], its one-pass contract scan, [`pointers`]), timed and checked (seq, loss, replies), recorded into a
//! `measure` recorder shard. Also the clock probe a sharded worker makes before it
//! starts, and the HTTP users of an `--http` stage.

pub mod clock_probe;
pub mod config;
pub mod connection;
pub mod frame;
mod head_scan;
pub mod http;
pub mod link;
pub mod pointers;
pub mod script;
pub mod socketio;
pub mod stomp;

pub mod user;

pub use config::{StreamTarget, VuConfig};
