//! The loop every feed runs, written once: a round of talking to the upstream (a
//! poll; a snapshot then a stream), then either the wait the round asked for or, after
//! a failure, the failure told to health and the log and a back-off that grows while
//! failures continue. It ends when `stop` is cancelled, also in the middle of a round
//! or a wait.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::health::{HealthPolicy, HealthTracker};
use super::{Feed, FeedError, FeedSink, report_health};
use crate::contract::Source;
use crate::retry::Backoff;

/// How one round ended.
pub(crate) enum Round {
    /// It went well: the next round starts after this long.
    Again(Duration),
    /// It failed: the next round waits a back-off.
    Failed(FeedError),
    /// `stop` was cancelled during the round.
    Stopped,
}

/// An upstream talked to in rounds. Every `Upstream` is a [`Feed`].
pub(crate) trait Upstream: Send + Sync + 'static {
    const SOURCE: Source;
    /// What a round is called in the log when it fails ("scoreboard fetch").
    const ROUND: &'static str;

    /// When the source counts as stale or down, and how long a failed round waits.
    fn policies(&self) -> (&HealthPolicy, &Backoff);
    /// One round: reports its successes to `health` and its observations to `sink`,
    /// and returns early with [`Round::Stopped`] once `stop` is cancelled.
    fn round(
        &self,
        sink: &FeedSink,
        stop: &CancellationToken,
        health: &mut HealthTracker,
    ) -> impl Future<Output = Round> + Send;
}

impl<U: Upstream> Feed for U {
    fn source(&self) -> Source {
        U::SOURCE
    }

    fn run(
        self: Arc<Self>,
        sink: FeedSink,
        stop: CancellationToken,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move { keep_running(&*self, &sink, &stop).await })
    }
}

/// `work`'s output, or None once `stop` is cancelled (then `work` is dropped).
pub(crate) async fn unless_stopped<T>(
    stop: &CancellationToken,
    work: impl Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        _ = stop.cancelled() => None,
        out = work => Some(out),
    }
}

async fn keep_running<U: Upstream>(upstream: &U, sink: &FeedSink, stop: &CancellationToken) {
    let (policy, backoff) = upstream.policies();
    let mut health = HealthTracker::new(policy.clone(), Instant::now());
    let mut last_backoff = None;
    loop {
        let wait = match upstream.round(sink, stop, &mut health).await {
            Round::Stopped => return,
            Round::Again(wait) => {
                last_backoff = None;
                wait
            }
            Round::Failed(e) => {
                tracing::warn!(source = U::SOURCE.as_str(), error = %e, "{} failed; retrying", U::ROUND);
                let change = health.failure(Instant::now());
                report_health(sink, U::SOURCE, change, Some(e.to_string())).await;
                let next = backoff.next(last_backoff);
                last_backoff = Some(next);
                next
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
