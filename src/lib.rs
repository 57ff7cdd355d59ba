//! livegames: a live games server, a WebSocket load generator and a contract checker
//! that share one message model.
//!
//! # Layout
//!
//! | module       | owns                                                        | may import |
//! |--------------|-------------------------------------------------------------|------------|
//! | [`contract`] | frames, games, close codes, schemas, stream rules (pure)    | nothing of the crate |
//! | [`feeds`]    | upstream clients behind [`feeds::Feed`], mocks, resilience  | contract, shutdown |
//! | [`serve`]    | the server: aggregator, hub, WebSockets, REST, metrics      | contract, feeds, shutdown |
//! | [`cli`]      | flags, lowering to configs, exit codes                      | everything |
//! | [`client`]   | outbound WebSocket/HTTP plumbing for load (and smoke)       | contract |
//! | [`load`]     | the load generator: virtual users, recorder, budgets, reports, scenarios, HTTP via goose | client, contract, retry |
//! | [`inspect`]  | `contract validate` and `contract schema`, offline            | contract |
//! | [`retry`]    | backoff timing                                              | std |
//! | [`shutdown`] | task ownership and stop signals                             | tokio |
//! | [`telemetry`]| log setup                                                   | tracing |
//!
//! `tests/layering.rs` enforces the arrows.

pub mod cli;
pub mod client;
pub mod console;
pub mod contract;
pub mod feeds;
pub mod inspect;
pub mod junit;
pub mod load;
pub mod outcome;
pub mod retry;
pub mod serve;
pub mod shutdown;
pub mod smoke;
pub mod telemetry;
