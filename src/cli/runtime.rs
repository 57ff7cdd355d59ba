//! What every command runs on: one tokio runtime, and signals that cancel.

use std::future::Future;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use crate::outcome::{Classify, Failure};
use crate::shutdown::Signals;

/// Runs `future` on the one runtime every command uses.
pub(super) fn block_on<F: Future>(future: F) -> Result<F::Output, Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")
        .failed()?;
    Ok(runtime.block_on(future))
}

/// Cancels `token` on the first Ctrl-C or SIGTERM, until the returned handle is
/// dropped. The listeners are registered before this returns, so a signal that
/// arrives while the command announces itself is not lost to the default action
/// (which would kill the process before it could say goodbye or write its report).
pub(super) fn cancel_on_signal(token: CancellationToken) -> Result<AbortOnDropHandle<()>, Failure> {
    let mut signals = Signals::install()
        .context("cannot listen for signals")
        .failed()?;
    Ok(AbortOnDropHandle::new(tokio::spawn(async move {
        signals.recv().await;
        token.cancel();
    })))
}
