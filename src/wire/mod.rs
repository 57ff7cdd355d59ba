//! WebSocket frames (RFC 6455) and permessage-deflate (RFC 7692) on the frame layer,
//! for both ends: tungstenite has no permessage-deflate and fails any frame with
//! RSV1 set, so connections that agree compression run on [`socket::WireSocket`].
//! Connections that do not keep using tungstenite.

pub mod deflate;
pub mod frame;
pub mod socket;

pub use deflate::{Agreed, Offer, ServerMode};
pub use socket::{Role, WireSocket, WireStats};
