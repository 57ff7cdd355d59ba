//! Outbound plumbing shared by the parts that test a server (`load`, `smoke`,
//! `contract record`): one [`Target`] type and one [`ConnectOptions`] value, WebSocket
//! connects with timing and typed failures, capped HTTP requests, live-game discovery,
//! and the seam through which a command gets an embedded server.

pub mod discover;
pub mod http;
pub mod local;
pub mod socket;
pub mod sse;
pub mod target;
pub mod template;
pub mod tls;
pub mod upgrade;
pub mod ws;

pub use target::{ConnectOptions, Shape, Target, TargetError};
