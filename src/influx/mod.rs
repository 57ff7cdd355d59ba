//! Writing to InfluxDB: line protocol, the `--influxdb` URL (1.x database or 2.x
//! bucket), and a batched writer whose callers never wait on it. Used by `serve`
//! (live points and scores) and by `load --out influxdb=` (per-second figures).

pub mod line;
pub mod observer;
pub mod retention;
pub mod target;
pub mod writer;

pub use line::{Field, line};
pub use observer::{StoreState, StoreStatus, Tally, WriteObserver};
pub use retention::{Retention, RetentionState, RetentionStatus};
pub use target::{InfluxTarget, parse};
pub use writer::{Writer, WriterConfig};
