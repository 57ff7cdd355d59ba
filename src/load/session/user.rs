//! One virtual user: connect, hand the socket to a [`Connection`] until it ends, and
//! reconnect with lossless resume (`?since=`) when asked to.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::config::{StreamTarget, VuConfig};
use crate::client::target::with_since;
use crate::client::ws::{self, ConnectError};
use crate::load::measure::gauges::Gauges;
use crate::load::measure::recorder::{Distribution, Recorder};
use crate::load::session::connection::{Connection, End, Session, UserParts};
use crate::load::session::link::{self, Link, Opened, Protocol};
use crate::load::session::socketio::SocketIo;

pub struct VirtualUser {
    /// Which user of the run: spreads their scheduled sends over the period.
    pub index: usize,
    /// This worker's shard of the run (0 when not sharded).
    pub shard_index: u32,
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
        let mut dropped = None;
        self.stream(&mut dropped).await;
        // Lost, and not regained before the run ended; a user still within its
        // reconnect window at the end (waiting out its back-off, or connecting) had
        // no chance to come back yet, and is not counted.
        let window = self
            .config
            .reconnect
            .map(|b| b.max + self.config.connect.connect_timeout);
        let Some((cause, lost_at)) = dropped else {
            return;
        };
        if window.is_some_and(|w| lost_at.elapsed() < w) {
            self.record(|r| r.counters.reconnects_pending += 1);
            return;
        }
        self.record(|r| {
            r.counters.users_dropped += 1;
            *r.counters.dropped_by.entry(cause).or_default() += 1;
        });
    }

    /// The user's connections until the run stops or the user gives up; `dropped`
    /// holds why and when the last one was lost while no other has opened since.
    async fn stream(&self, dropped: &mut Option<(String, Instant)>) {
        let mut session = Session::default();
        let mut backoff_wait = None;
        let mut reconnecting = false;
        let mut waits = 0u32;
        while !self.stop.is_cancelled() {
            let opened = Instant::now();
            let attempt = self.attempt(&mut session, reconnecting).await;
            if matches!(attempt, Attempt::Ended(_)) {
                *dropped = None;
            }
            if let Attempt::Ended(End::Lost { kind, .. }) = &attempt {
                *dropped = Some((kind.clone(), Instant::now()));
            }
            match attempt {
                Attempt::Stopped | Attempt::Ended(End::Stopped) => return,
                // A churned connection comes back at once, like a client that
                // reopens the app.
                Attempt::Ended(End::Churned) => {
                    reconnecting = true;
                    continue;
                }
                // It was connected a while: the next failure starts the backoff
                // afresh. One closed right after opening is a refusal in all but
                // name (a broker closing what it will not serve): the wait grows.
                Attempt::Ended(End::Lost { .. }) if opened.elapsed() >= SHORT_LIVED => {
                    backoff_wait = None
                }
                Attempt::Ended(End::Lost { .. }) | Attempt::Refused => {}
            }
            let Some(backoff) = self.config.reconnect else {
                return;
            };
            let wait = backoff.next(backoff_wait);
            backoff_wait = Some(wait);
            reconnecting = true;
            waits += 1;
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(jittered(wait, self.index, waits)) => {}
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
                if let End::Lost { kind, said } = &end {
                    r.error_saying(kind, said);
                }
            });
        }
        Attempt::Ended(end)
    }

    /// Opens the link this run speaks: a WebSocket, or an SSE stream (resuming after
    /// `resume_after` with Last-Event-ID).
    async fn connect(
        &self,
        url: &url::Url,
        resume_after: Option<u64>,
    ) -> Result<Opened, ConnectError> {
        let connect = &self.config.connect;
        match (self.config.protocol, &self.config.sse_client) {
            (Protocol::Sse, Some(client)) => {
                let max_event = connect
                    .max_message
                    .unwrap_or(crate::client::target::DEFAULT_MAX_MESSAGE);
                link::open_events(
                    client,
                    url,
                    resume_after,
                    max_event,
                    connect.connect_timeout,
                )
                .await
            }
            (Protocol::Sse, None) => Err(ConnectError::Io(
                "no HTTP client for Server-Sent Events".into(),
            )),
            (Protocol::Ws, _) => ws::connect(url, connect).await.map(|c| Opened {
                link: Link::Ws(Box::new(c.socket)),
                connect_time: c.connect_time,
                subprotocol: c.subprotocol,
            }),
            (Protocol::Socketio, _) => ws::connect(url, connect).await.map(|c| {
                let options = self.config.socketio.clone();
                Opened {
                    link: Link::SocketIo(SocketIo::new(Box::new(c.socket), options)),
                    connect_time: c.connect_time,
                    subprotocol: c.subprotocol,
                }
            }),
        }
    }

    /// Connects and counts the connection; the socket comes back boxed in its
    /// [`Connection`], so what the handshake left behind is not kept in the user's
    /// task for the whole stream.
    async fn open<'s>(
        &'s self,
        session: &'s mut Session,
        reconnecting: bool,
    ) -> Result<Box<Connection<'s>>, Attempt> {
        let resume_after = session.last_seq.filter(|_| reconnecting);
        let url = match (resume_after, self.config.protocol) {
            // Server-Sent Events resume with the Last-Event-ID header.
            (Some(seq), Protocol::Ws) => {
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
            a = Box::pin(self.connect(&url, resume_after)) => a,
        };
        let connected = match attempt {
            Ok(connected) => connected,
            Err(e) => {
                self.record(|r| r.error_saying(&e.kind(), &e.to_string()));
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
        if let Some(offered) = self.config.connect.compress.header() {
            let agreed = connected.link.compression();
            self.record(|r| r.counters.compression_agreed(offered, agreed));
        }
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
            index: self.index,
            shard_index: self.shard_index,
            phase: spread(self.index),
        };
        Ok(Box::new(Connection::new(
            parts,
            connected.link,
            session,
            reconnecting,
        )))
    }
}

/// A connection that ends sooner than this after its attempt began counts as refused
/// for the back-off.
const SHORT_LIVED: std::time::Duration = std::time::Duration::from_secs(1);

/// Between half the wait and the whole of it, different for each user and each wait,
/// so users dropped together do not all come back at the same instant.
fn jittered(wait: std::time::Duration, index: usize, n: u32) -> std::time::Duration {
    let f = spread(index.wrapping_mul(31).wrapping_add(n as usize));
    wait.mul_f64(0.5 + 0.5 * f)
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
            shard_index: 0,
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
