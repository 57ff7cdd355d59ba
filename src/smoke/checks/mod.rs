//! The checks, one file per group: REST endpoints, the main stream, protocol
//! behaviour on separate connections, consistency between what the server said twice,
//! and the opt-in admin fault round trip.

pub(crate) mod admin;
pub(crate) mod consistency;
pub(crate) mod protocol;
pub(crate) mod rest;
pub(crate) mod sse;
pub(crate) mod stream;
