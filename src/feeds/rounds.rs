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

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use tokio::sync::mpsc;

    use super::*;

    /// An upstream whose rounds end as scripted, remembering when each began.
    struct Scripted {
        ends: Mutex<VecDeque<Round>>,
        began: Mutex<Vec<tokio::time::Instant>>,
        health: HealthPolicy,
        backoff: Backoff,
    }

    impl Upstream for Scripted {
        const SOURCE: Source = Source::Espn;
        const ROUND: &'static str = "scripted round";

        fn policies(&self) -> (&HealthPolicy, &Backoff) {
            (&self.health, &self.backoff)
        }

        async fn round(
            &self,
            _: &FeedSink,
            stop: &CancellationToken,
            _: &mut HealthTracker,
        ) -> Round {
            self.began.lock().unwrap().push(tokio::time::Instant::now());
            let next = self.ends.lock().unwrap().pop_front();
            match next {
                Some(end) => end,
                None => {
                    stop.cancel();
                    Round::Stopped
                }
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_more_each_time_and_a_success_waits_what_it_asked() {
        let failed = || Round::Failed(FeedError::Status(503));
        let upstream = Arc::new(Scripted {
            ends: Mutex::new(VecDeque::from([
                failed(),
                failed(),
                failed(),
                Round::Again(Duration::from_secs(1)),
                failed(),
            ])),
            began: Mutex::new(Vec::new()),
            health: HealthPolicy::new(Duration::from_secs(5), Duration::from_secs(10)),
            backoff: Backoff {
                base: Duration::from_millis(100),
                max: Duration::from_millis(300),
            },
        });
        let (sink, _events) = mpsc::channel(16);
        let start = tokio::time::Instant::now();
        upstream.clone().run(sink, CancellationToken::new()).await;
        let waits: Vec<u128> = upstream
            .began
            .lock()
            .unwrap()
            .windows(2)
            .map(|w| (w[1] - w[0]).as_millis())
            .collect();
        // 100, 200, then capped at 300; a success waits its own 1 s, and the next
        // failure starts again from the base.
        assert_eq!(waits, [100, 200, 300, 1_000, 100]);
        assert_eq!(upstream.began.lock().unwrap()[0], start);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_during_the_wait_ends_the_loop_at_once() {
        let upstream = Arc::new(Scripted {
            ends: Mutex::new(VecDeque::from([Round::Again(Duration::from_secs(3600))])),
            began: Mutex::new(Vec::new()),
            health: HealthPolicy::new(Duration::from_secs(5), Duration::from_secs(10)),
            backoff: Backoff {
                base: Duration::from_millis(100),
                max: Duration::from_secs(1),
            },
        });
        let stop = CancellationToken::new();
        let (sink, _events) = mpsc::channel(16);
        let running = tokio::spawn(upstream.clone().run(sink, stop.clone()));
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.cancel();
        let ended = tokio::time::timeout(Duration::from_secs(1), running).await;
        assert!(ended.is_ok(), "the hour's wait was not cut short");
        assert_eq!(upstream.began.lock().unwrap().len(), 1);
    }
}
