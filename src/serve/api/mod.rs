//! What clients ask for: the live stream of a game over a WebSocket ([`websocket`])
//! or as Server-Sent Events ([`sse`]),
//! the REST API ([`rest`]), `/health` and `/metrics` ([`probes`]), the fault
//! injection API ([`admin`]) and the dashboard's files ([`dashboard`]).

pub mod admin;
mod client_socket;
pub mod dashboard;
pub mod ops;
pub mod probes;
pub mod rest;
pub mod sse;
pub mod websocket;
