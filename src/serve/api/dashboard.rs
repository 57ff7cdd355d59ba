//! The web dashboard: one HTML page, its script and the shared stylesheet, built into
//! the binary (no build step, nothing fetched from elsewhere at run time).

use axum::http::header;
use axum::response::IntoResponse;

const PAGE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/dashboard.html"
));
const SCRIPT: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/dashboard.js"));
/// The game chart's axes, ticks and drawing (pure functions the page and tests call).
const CHART: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/chart.js"));

/// Only this server may be reached from the page: no inline script, no third parties.
/// `connect-src 'self'` covers ws:/wss: to this origin (CSP 3); no framing, so the
/// page cannot be clickjacked.
const POLICY: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            // For browsers without CSP 3's frame-ancestors.
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        body,
    )
}

pub async fn page() -> impl IntoResponse {
    asset("text/html; charset=utf-8", PAGE)
}

pub async fn script() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

pub async fn chart() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", CHART)
}

pub async fn style() -> impl IntoResponse {
    asset("text/css; charset=utf-8", crate::style::STYLE)
}
