//! WebSocket frames (RFC 6455) and permessage-deflate (RFC 7692) on the frame layer,
//! for both ends. Every connection serve accepts runs on [`socket::WireSocket`], so
//! a broadcast is framed once ([`shared::SharedText`]) and written to each client as
//! is; clients use it for connections that agree compression (tungstenite has no
//! permessage-deflate and fails any frame with RSV1 set), tungstenite otherwise.

pub mod deflate;
pub mod frame;
pub mod shared;
pub mod socket;

pub use deflate::{Agreed, Offer, ServerMode};
pub use shared::SharedText;
pub use socket::{Role, WireSocket, WireStats, close_code_for};
