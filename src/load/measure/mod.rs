//! Measuring: what the connections record, and what becomes of it each second.
//!
//! In: latencies and counts from every connection ([`recorder::Recorder`] shards,
//! [`gauges::Gauges`]). Out: the run's totals, a per-second series
//! ([`collector::Second`]), the interval log (`latency.hlog`), progress on the terminal,
//! and this process's own cost ([`host`]).

pub mod collector;
pub mod compression;
pub mod gauges;
pub mod hdrlog;
pub mod host;
pub mod progress;
pub mod recorder;
pub mod unreadable;
