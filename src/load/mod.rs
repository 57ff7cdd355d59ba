//! `livegames load`: many WebSocket connections (or HTTP users) against any server,
//! measured.
//!
//! Layout, from the top: [`runner`] runs a [`Plan`] stage by stage and writes the
//! reports; [`engine`] runs one WebSocket stage (ramp, users, the per-second fold);
//! [`vu`] and [`connection`] are one user and one of its connections; [`recorder`]
//! holds what is measured ([`recorder::Distribution`], counters); [`summary`],
//! [`report`], [`hdrlog`] and [`merge`] turn it into results; [`budget`] judges them.
//! `load` never imports the server: with no URL, the CLI hands [`runner::run`] a way to
//! start one (`client::local`).

pub mod budget;
pub mod clock_probe;
pub mod connection;
pub mod engine;
pub mod frame_head;
pub mod hdrlog;
pub mod host;
pub mod http;
pub mod merge;
pub mod plan;
pub mod progress;
pub mod recorder;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod shard;
pub mod summary;
pub mod vu;

pub use engine::{LoadConfig, Tick, run};
pub use plan::{Output, Plan, StagePlan, StreamTarget};
