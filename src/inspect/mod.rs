//! The library half of `livegames contract`: checking recordings offline
//! ([`validate`]), recording a live stream ([`record`]), and the schemas both use
//! ([`schemas`]). The contract itself (pure, no I/O) is `crate::contract`; the
//! AsyncAPI document is generated there, beside the schemas.

pub mod record;
pub mod schemas;
pub mod validate;

pub use schemas::{LoadedSchemas, SchemaDirError};
