//! The figures behind `/health` and `/metrics` (their handlers are in `api::probes`):
//! the Prometheus counters ([`metrics`]) and each upstream source's health
//! ([`sources`]). Hot paths hold the metric handles directly, never a registry
//! lookup; the ones added to for every write (by the games' writers and the
//! clients' tasks) are sharded per thread ([`sharded`]).

pub mod alerts;
pub mod exposition;
pub mod metrics;
pub mod ops;
pub mod sharded;
pub mod sources;

pub use metrics::{
    CacheLabel, CodeLabel, GameLabel, LeagueLabel, Metrics, ReasonLabel, ResultLabel,
    SourceCodeLabel, SourceLabel,
};
pub use sources::{SourceBoard, SourceEntry};
