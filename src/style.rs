//! The stylesheet the dashboard and the HTML load report share, built into the binary
//! once (no build step, nothing fetched at run time).

/// `assets/livegames.css`.
pub const STYLE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/livegames.css"));
