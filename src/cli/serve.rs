//! `livegames serve`: flags, logs, signals, the server.

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::args::ServeArgs;
use super::runtime::{block_on, cancel_on_signal};
use crate::outcome::{Classify, CommandResult, Verdict};
use crate::shutdown::Shutdown;

pub fn run(args: ServeArgs) -> CommandResult {
    crate::telemetry::init(args.log_format);
    let config = args.lower().usage()?;
    block_on(async move {
        let listener = crate::serve::bind(args.addr)
            .with_context(|| format!("cannot listen on {}", args.addr))
            .failed()?;
        let shutdown = Shutdown::new();
        let requested = CancellationToken::new();
        let _signals = cancel_on_signal(requested.clone())?;
        let on_request = shutdown.clone();
        tokio::spawn(async move {
            requested.cancelled().await;
            // Trigger first: a log line that cannot be written must not stop the shutdown.
            on_request.trigger();
            tracing::info!("shutdown requested; closing client connections");
        });
        crate::serve::run(config, listener, shutdown)
            .await
            .failed()?;
        Ok(Verdict::Pass)
    })?
}
