//! What every command runs on: standard streams it can rely on, one tokio runtime,
//! and signals that cancel.

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

/// Opens `/dev/null` on any of fds 0, 1 and 2 the process was started without
/// (`2>&-`). Otherwise the next socket the server opens takes that number, and log
/// lines meant for stderr would be written into a client's connection.
pub(super) fn reserve_standard_fds() {
    for fd in 0..=2 {
        // SAFETY: F_GETFD only asks whether `fd` is open; it changes nothing.
        let open = unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1;
        if !open {
            // open() returns the lowest free number, which is `fd`; leaving it open
            // for the life of the process is the point.
            // SAFETY: a constant NUL-terminated path; the result is checked.
            let got = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
            if got != fd && got >= 0 {
                // Someone else took `fd` between the two calls: give ours back.
                // SAFETY: `got` is a descriptor this function just opened.
                unsafe { libc::close(got) };
            }
        }
    }
}
