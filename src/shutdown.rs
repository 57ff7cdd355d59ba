//! Who owns each task, and how it is told to stop.
//!
//! [`Shutdown`] pairs a [`CancellationToken`] (the signal) with a [`TaskTracker`]
//! (the owner): every long-lived task is spawned through [`Shutdown::spawn`], so a
//! shutdown can cancel them all and then wait until each has finished its goodbye
//! (for WebSockets: the 1001 close frame, which axum's graceful shutdown does not
//! cover, axum issue #3003).

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    token: CancellationToken,
    tracker: TaskTracker,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Spawns a task owned by this shutdown: [`Shutdown::drain`] waits for it.
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker.spawn(task)
    }

    /// Counts the caller as an owned task until the returned token is dropped: for
    /// tasks spawned by someone else (axum's WebSocket upgrades).
    pub fn hold(&self) -> tokio_util::task::task_tracker::TaskTrackerToken {
        self.tracker.token()
    }

    /// Asks every owned task to stop.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once a shutdown was triggered.
    pub async fn triggered(&self) {
        self.token.cancelled().await
    }

    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Triggers the shutdown and waits (at most `grace`) for every owned task to end.
    /// Returns false if some task was still running when the grace period ran out.
    pub async fn drain(&self, grace: Duration) -> bool {
        self.trigger();
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
    }
}

/// Ctrl-C and SIGTERM listeners, registered when created: a signal that arrives
/// after [`Signals::install`] returns is never lost to the default action (which
/// would kill the process before it could say goodbye or write its report).
pub struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Resolves on the next Ctrl-C or SIGTERM.
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {},
            _ = self.terminate.recv() => {},
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drain_waits_for_tasks_to_say_goodbye() {
        let shutdown = Shutdown::new();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let s = shutdown.clone();
        shutdown.spawn(async move {
            s.triggered().await;
            let _ = done_tx.send("goodbye");
        });
        assert!(shutdown.drain(Duration::from_secs(5)).await);
        assert_eq!(done_rx.await.unwrap(), "goodbye");
    }
}
