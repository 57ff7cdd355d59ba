//! One virtual user: connect, hand the socket to a [`Connection`] until it ends, and
//! reconnect with lossless resume (`?since=`) when asked to.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::config::{StreamTarget, VuConfig};
use crate::client::target::with_since;
use crate::client::ws;
use crate::load::measure::gauges::Gauges;
use crate::load::measure::recorder::{Distribution, Recorder};
use crate::load::session::connection::{Connection, End, Session, UserParts};

pub struct VirtualUser {
    /// Which user of the run: spreads their scheduled sends over the period.
    pub index: usize,
    pub target: StreamTarget,
    pub config: Arc<VuConfig>,
    pub shard: Arc<Mutex<Recorder>>,
    pub gauges: Arc<Gauges>,
    pub stop: CancellationToken,
}

impl VirtualUser {
    fn record<R>(&self, f: impl FnOnce(&mut Recorder) -> R) -> R {
        let mut shard = self.shard.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut shard)
    }

    /// Connects, streams until the connection ends, and (with reconnects on) comes
    /// back until the run stops.
    pub async fn run(self) {
        let mut session = Session::default();
        let mut backoff_wait = None;
        let mut reconnecting = false;
        while !self.stop.is_cancelled() {
            match self.attempt(&mut session, reconnecting).await {
                Attempt::Stopped | Attempt::Ended(End::Stopped) => return,
                // A churned connection comes back at once, like a client that
                // reopens the app.
                Attempt::Ended(End::Churned) => {
                    reconnecting = true;
                    continue;
                }
                // It was connected: the next failure starts the backoff afresh.
                Attempt::Ended(End::Lost { .. }) => backoff_wait = None,
                Attempt::Refused => {}
            }
            let Some(backoff) = self.config.reconnect else {
                return;
            };
            let wait = backoff.next(backoff_wait);
            backoff_wait = Some(wait);
            reconnecting = true;
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One connection attempt, and the stream if it opens.
    async fn attempt(&self, session: &mut Session, reconnecting: bool) -> Attempt {
        let connection = match self.open(session, reconnecting).await {
            Ok(connection) => connection,
            Err(attempt) => return attempt,
        };
        let end = connection.run().await;
        self.gauges.closed();
        if !matches!(end, End::Stopped) {
            session.disconnected_at = Some(Instant::now());
            self.record(|r| {
                r.counters.disconnects += 1;
                if let End::Lost { kind } = &end {
                    r.error(kind);
                }
            });
        }
        Attempt::Ended(end)
    }

    /// Connects and counts the connection; the socket comes back boxed in its
    /// [`Connection`], so what the handshake left behind is not kept in the user's
    /// task for the whole stream.
    async fn open<'s>(
        &'s self,
        session: &'s mut Session,
        reconnecting: bool,
    ) -> Result<Box<Connection<'s>>, Attempt> {
        let url = match session.last_seq {
            Some(seq) if reconnecting => {
                with_since(&self.target.url, seq, session.epoch.as_deref())
            }
            _ => self.target.url.clone(),
        };
        self.record(|r| {
            r.counters.connect_attempts += 1;
            if reconnecting {
                r.counters.reconnect_attempts += 1;
            }
        });
        let attempt = tokio::select! {
            _ = self.stop.cancelled() => return Err(Attempt::Stopped),
            // Boxed: the handshake's future (TLS, HTTP) is ~10 KiB, used once.
            a = Box::pin(ws::connect(&url, &self.config.connect)) => a,
        };
        let connected = match attempt {
            Ok(connected) => connected,
            Err(e) => {
                self.record(|r| r.error(&e.kind()));
                return Err(Attempt::Refused);
            }
        };
        self.record(|r| {
            r.counters.connected += 1;
            r.latency(
                Distribution::Connect,
                connected.connect_time.as_micros() as i64,
            );
        });
        if let Some(picked) = connected.subprotocol {
            let _ = self.gauges.subprotocol.set(picked);
        }
        self.gauges.opened();
        if !std::mem::replace(&mut session.connected_before, true) {
            self.record(|r| r.counters.users_connected += 1);
        }
        let parts = UserParts {
            config: &self.config,
            shard: &self.shard,
            stop: &self.stop,
            url: self.target.url.as_str(),
            game: self.target.game.as_deref(),
            phase: spread(self.index),
        };
        Ok(Box::new(Connection::new(
            parts,
            connected.socket,
            session,
            reconnecting,
        )))
    }
}

/// A phase in 0..1 for user `index`: the golden ratio's multiples modulo 1 spread
/// any number of users evenly over a period, whatever their count.
fn spread(index: usize) -> f64 {
    (index as f64 * 0.618_033_988_749_895).fract()
}

/// What one connection attempt came to.
enum Attempt {
    /// The run stopped while connecting.
    Stopped,
    /// No connection: the error is counted by kind.
    Refused,
    /// Connected, and the connection has ended.
    Ended(End),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each user's task is this future, alive for the whole run: at 10,000
    /// connections every KiB of it is 10 MB, and a stream that polls a large task
    /// once a second misses the cache on each poll. The handshake's future and the
    /// connection's state are boxed so they do not bloat it.
    #[test]
    fn a_users_task_stays_small() {
        let user = VirtualUser {
            index: 0,
            target: url::Url::parse("ws://127.0.0.1:9/x").unwrap().into(),
            config: Arc::new(VuConfig::default()),
            shard: Arc::new(Mutex::new(Recorder::default())),
            gauges: Arc::new(Gauges::new(1)),
            stop: CancellationToken::new(),
        };
        let task = user.run();
        let size = std::mem::size_of_val(&task);
        assert!(size <= 2048, "a user's task is {size} bytes");
        assert!(
            std::mem::size_of::<Connection>() <= 2048,
            "a connection's state is {} bytes",
            std::mem::size_of::<Connection>()
        );
    }
}
