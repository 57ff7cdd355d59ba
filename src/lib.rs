//! livegames: a live games server, a WebSocket load generator and a contract checker
//! that share one message model.
//!
//! # Layout
//!
//! Every module, what it owns, and what of the crate it may import. Nothing imports
//! upward: `cli` wires the parts together; `load`, `smoke` and `inspect` test any
//! server through `client` and never import `serve`; `contract` is pure.
//! `tests/layering.rs` reads this table and fails on an import it does not allow, and
//! on a module that is not in it.
//!
//! | module        | owns                                                                      | may import |
//! |---------------|---------------------------------------------------------------------------|------------|
//! | [`cli`]       | flags, lowering them into plans and configs, wiring, the runtime, exit codes | client, console, contract, feeds, influx, inspect, load, mocks, outcome, serve, shutdown, smoke, text, units, wire |
//! | [`serve`]     | the server: accept loop, aggregator, hub, WebSockets, REST, probes, dashboard, store | clock, contract, fdlimit, feeds, influx, mocks, retry, shutdown, style, text, units, wire |
//! | [`load`]      | the load generator: plans, stages, users, recorder, budgets, reports, HTTP via goose | client, clock, console, contract, fdlimit, influx, junit, outcome, retry, style, text, units, wire |
//! | [`smoke`]     | the live contract checks, checklist/JSON/JUnit | client, clock, contract, junit, text |
//! | [`inspect`]   | `contract validate`, `contract record`, schemas from a folder | client, clock, contract, outcome, text |
//! | [`mocks`]     | the mock upstreams: ESPN, Kalshi and API-SPORTS replayed from recordings, with injectable faults | clock, contract, feeds, shutdown |
//! | [`feeds`]     | the upstream clients (ESPN, Kalshi, API-SPORTS) behind [`feeds::Feed`], their health and quotas | clock, contract, retry, text, units |
//! | [`influx`]    | InfluxDB line protocol, its URL, a batched writer that never blocks its callers, the retention policy | retry, text |
//! | [`client`]    | one [`client::Target`] and [`client::ConnectOptions`]; WebSocket and capped HTTP requests, discovery, the embedded-server seam | outcome, text, wire |
//! | [`wire`]      | WebSocket frames and permessage-deflate on the frame layer, both ends | nothing |
//! | [`contract`]  | frames, games, close codes, schemas, stream rules, AsyncAPI (pure) | clock, text |
//! | [`outcome`]   | how a command ends: a verdict or a failure (one per exit code) | nothing |
//! | [`console`]   | printing results (errors returned) and notes (never panicking) | nothing |
//! | [`junit`]     | JUnit XML for CI | text |
//! | [`retry`]     | backoff timing | nothing |
//! | [`fdlimit`]   | the open-files limit | nothing |
//! | [`shutdown`]  | task ownership and stop signals | nothing |
//! | [`style`]     | the stylesheet the dashboard and the HTML report share | nothing |
//! | [`text`]      | peer text made safe to show: cut, excerpt, printable, markup escaping | nothing |
//! | [`clock`]     | the wall clock as Unix time (µs, ns, s) | nothing |
//! | [`units`]     | durations, sizes and latencies as people write and read them | nothing |

pub mod cli;
pub mod client;
pub mod clock;
pub mod console;
pub mod contract;
pub mod fdlimit;
pub mod feeds;
pub mod influx;
pub mod inspect;
pub mod junit;
pub mod load;
pub mod mocks;
pub mod outcome;
pub mod retry;
pub mod serve;
pub mod shutdown;
pub mod smoke;
pub mod style;
pub mod text;
pub mod units;
pub mod wire;
