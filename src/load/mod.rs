//! `livegames load`: many WebSocket connections (or HTTP users) against any server,
//! measured.
//!
//! The folders follow a frame's way through the load generator:
//! [`plan`] (what to run: stages, scenario files, shards, budgets as parsed) ->
//! [`session`] (the connection: user loop, handshake, frame reading, replies) ->
//! [`measure`] (recorders, the per-second fold, the interval log, progress) ->
//! [`results`] (summary, judging budgets, report files, merging workers).
//! [`runner`] runs a [`Plan`] stage by stage; [`engine`] runs one WebSocket stage,
//! its users on `user_threads` (a single-threaded runtime per core).
//! `load` never imports the server: with no URL, the CLI hands [`runner::run`] a way to
//! start one (`client::local`).

pub mod engine;
pub mod measure;
pub mod plan;
pub mod results;
pub mod runner;
pub mod session;
mod user_threads;

pub use engine::{LoadConfig, run};
pub use measure::collector::Tick;
pub use plan::{Output, Plan, StagePlan};
pub use session::StreamTarget;
