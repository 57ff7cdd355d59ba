//! One open connection of a virtual user, as a state machine: one timer (sends on the
//! open-model schedule, protocol pings, churn, the idle check), and one handler per
//! kind of message (text frame, pong, close). Everything measured goes into the user's
//! recorder shard.

mod end;
mod measure;
mod timer;

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;

pub(super) use end::End;
use end::{io_kind, lost, read_failed, send_failed};
use timer::{on_timer_grid, timer_slot};

use super::config::VuConfig;
use super::frame::Decode;
use super::link::Link;
use super::script::{Match, Step};
use crate::client::template::Fill;
use crate::contract::rules::EpochTracker;
use crate::load::measure::recorder::Recorder;

/// Client messages awaiting their answer, at most: a server that never answers must
/// not grow the queue (the oldest is dropped and counted as `pong_missing`).
const MAX_PENDING_REPLIES: usize = 4096;
/// Protocol pings awaiting their pong, at most.
const MAX_PENDING_WS_PINGS: usize = 64;
/// How long our close frame may take before the socket is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// RFC 6455's "no status code was present" (a close frame without a code).
const CLOSE_NO_STATUS: u16 = 1005;
/// How long a quiet connection has to answer the idle check's ping: a third of
/// `--idle-timeout` (10 s by default), far beyond any round trip that still works.
fn liveness_grace(idle: Duration) -> Duration {
    idle / 3
}

/// What the idle check found.
#[derive(Debug, PartialEq, Eq)]
enum Idle {
    /// Something came within the timeout.
    Alive,
    /// Nothing came: ping it, and look again after the grace.
    Ask,
    /// Nothing came, not even after a ping (or pings are off).
    Dead,
}

/// State that lives across reconnects.
#[derive(Debug, Default)]
pub(super) struct Session {
    /// Where a resume starts: the latest data frame's seq, or the snapshot's.
    pub last_seq: Option<u64>,
    /// The server's epoch `last_seq` belongs to (contract 1.1.0 snapshots name it).
    pub epoch: Option<String>,
    /// When the previous connection ended, to time the reconnect.
    pub disconnected_at: Option<Instant>,
    /// The last client message number (numbers go on across reconnects).
    pub ping_id: u64,
    /// This user has had a connection (it counts once in `users_connected`).
    pub connected_before: bool,
}

/// What a connection borrows from its virtual user.
pub(super) struct UserParts<'a> {
    pub config: &'a VuConfig,
    /// The recorder shard this user records into.
    pub shard: &'a Mutex<Recorder>,
    /// The end of the run.
    pub stop: &'a CancellationToken,
    /// The stream, as reports name it.
    pub url: &'a str,
    /// The game of the stream (for `{game_id}` in the subscribe message).
    pub game: Option<&'a str>,
    /// The user's number in the run, and this worker's shard (`{user}`, `{shard}`).
    pub index: usize,
    pub shard_index: u32,
    /// Where in its period this user's first scheduled message falls, 0..1, so the
    /// connections' sends are spread rather than all due at once.
    pub phase: f64,
}

/// A client message awaiting its answer.
#[derive(Debug, Clone, Copy)]
struct Pending {
    id: u64,
    /// Its slot in the open-model schedule: RTT is measured from here.
    due: Instant,
    /// When it was really sent (Unix µs), for the clock-offset estimate.
    sent_us: i64,
}

pub(super) struct Connection<'a> {
    user: UserParts<'a>,
    socket: Link,
    session: &'a mut Session,
    opened: Instant,
    seq: EpochTracker,
    /// On a resume, frames up to the snapshot are replays with their original `ts`.
    replaying: bool,
    first_frame: bool,
    /// Open-model sends: the period, and the next slot.
    send_period: Option<Duration>,
    next_send: Option<Instant>,
    /// Client messages awaiting their reply, oldest first.
    pending: VecDeque<Pending>,
    /// Protocol pings awaiting their pong: (number, sent at).
    ws_pings: VecDeque<(u64, Instant)>,
    ws_ping_n: u64,
    next_ws_ping: Option<Instant>,
    churn_at: Option<Instant>,
    /// Idleness is checked lazily: a frame only stores its arrival time, and the one
    /// timer of this connection looks at it when the check comes due. (A timeout
    /// around every read would touch the timer wheel once per frame.)
    last_frame: Instant,
    idle_check: Instant,
    /// When the idle check asked a quiet connection with a ping, and nothing has
    /// come since.
    liveness_ping: Option<Instant>,
    /// The answer to a server frame a `[[reply]]` matched, to send next.
    reply: Option<String>,
}

impl<'a> Connection<'a> {
    pub fn new(user: UserParts<'a>, socket: Link, session: &'a mut Session, resumed: bool) -> Self {
        let config = user.config;
        let opened = Instant::now();
        let seq = match (resumed, session.last_seq) {
            (true, Some(since)) => EpochTracker::resumed(since, session.epoch.clone()),
            _ => EpochTracker::fresh(),
        };
        let send_period = config.send_rate.map(|r| Duration::from_secs_f64(1.0 / r));
        // The schedule starts at the connect, at this user's phase of the period.
        let phase = user.phase.clamp(0.0, 1.0);
        let first_send = send_period.map(|p| opened + p.mul_f64(phase));
        // Pings at this user's phase too, so they are spread over the interval instead
        // of arriving together from every connection opened at once.
        let first_ws_ping = config
            .ws_ping
            .map(|p| on_timer_grid(opened + p.mul_f64(phase).max(p / 100), timer_slot(p)));
        Self {
            user,
            socket,
            replaying: resumed && session.last_seq.is_some(),
            session,
            opened,
            seq,
            first_frame: true,
            send_period,
            next_send: first_send,
            pending: VecDeque::new(),
            ws_pings: VecDeque::new(),
            ws_ping_n: 0,
            next_ws_ping: first_ws_ping,
            churn_at: config.churn.map(|c| opened + c),
            last_frame: opened,
            idle_check: on_timer_grid(
                opened + config.idle_timeout,
                timer_slot(config.idle_timeout),
            ),
            liveness_ping: None,
            reply: None,
        }
    }

    /// Runs the connection until it ends. Boxed: the state (~1.7 KiB, the socket
    /// included) lives once on the heap; taken by value, an `async fn` would copy it
    /// into the user's task twice (the argument and the body's local), beside what
    /// the handshake left there.
    pub async fn run(mut self: Box<Self>) -> End {
        let end = self.stream().await;
        if let Some(stats) = self.socket.wire_stats() {
            self.record(|r| r.counters.wire_counted(stats));
        }
        end
    }

    async fn stream(&mut self) -> End {
        if let Err(end) = self.subscribe().await {
            return end;
        }
        if let Err(end) = self.run_session().await {
            return end;
        }
        // This connection's own child of the run's stop token: every connection waiting
        // on the shared token would poll its one waiter list, under its lock, on every
        // frame, from every worker thread (tokio's Notify locks it to update a waker).
        let stop = self.user.stop.child_token();
        let cancelled = stop.cancelled();
        tokio::pin!(cancelled);
        let timer = tokio::time::sleep_until(self.next_wake().into());
        tokio::pin!(timer);
        loop {
            tokio::select! {
                _ = &mut cancelled => return self.close(End::Stopped).await,
                _ = &mut timer => {
                    if let Some(end) = self.on_timer().await {
                        return end;
                    }
                    timer.as_mut().reset(self.next_wake().into());
                }
                next = self.socket.next() => {
                    if let Some(end) = self.on_message(next) {
                        return end;
                    }
                    if let Some(reply) = self.reply.take()
                        && let Err(e) = self.socket.send(Message::Text(reply.into())).await
                    {
                        return send_failed(e);
                    }
                }
            }
        }
    }

    /// The earliest instant something is due.
    fn next_wake(&self) -> Instant {
        [self.next_send, self.next_ws_ping, self.churn_at]
            .into_iter()
            .flatten()
            .fold(self.idle_check, Instant::min)
    }

    async fn close(&mut self, end: End) -> End {
        let _ = tokio::time::timeout(CLOSE_GRACE, self.socket.close()).await;
        end
    }

    fn record<R>(&self, f: impl FnOnce(&mut Recorder) -> R) -> R {
        let mut shard = self.user.shard.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut shard)
    }

    /// Whatever came due: churn, the idle check, a protocol ping, scheduled sends.
    async fn on_timer(&mut self) -> Option<End> {
        let now = Instant::now();
        if self.churn_at.is_some_and(|c| c <= now) {
            return Some(self.close(End::Churned).await);
        }
        if self.idle_check <= now {
            match self.check_idle(now) {
                Idle::Alive => {}
                Idle::Ask => {
                    if let Err(e) = self.send_ws_ping(now).await {
                        return Some(e);
                    }
                }
                Idle::Dead => {
                    let idle = crate::units::show_duration(self.user.config.idle_timeout);
                    return Some(lost(
                        "idle_timeout",
                        format!("nothing arrived for {idle}, not even a pong to a ping"),
                    ));
                }
            }
        }
        if self.next_ws_ping.is_some_and(|t| t <= now)
            && let Err(e) = self.send_ws_ping(now).await
        {
            return Some(e);
        }
        self.send_due(now).await.err()
    }

    /// The idle check, come due: a connection that said nothing (no frame, no pong)
    /// for `--idle-timeout` is asked with a protocol ping when pings are on, and is
    /// dead only if nothing at all comes in the grace after it; with pings off it is
    /// dead at once. So a server with nothing to say is told from a dead connection
    /// whatever the ping interval (`auto` stretches it past the timeout at 10,000
    /// connections), and a busy connection is looked at once per timeout, as before.
    fn check_idle(&mut self, now: Instant) -> Idle {
        let idle = self.user.config.idle_timeout;
        let slot = timer_slot(idle);
        let asked = self.liveness_ping.take();
        if asked.is_some_and(|sent| self.last_frame < sent) {
            return Idle::Dead;
        }
        if now.duration_since(self.last_frame) < idle {
            self.idle_check = on_timer_grid(self.last_frame + idle, slot);
            return Idle::Alive;
        }
        if self.user.config.ws_ping.is_none() {
            return Idle::Dead;
        }
        self.liveness_ping = Some(now);
        self.idle_check = on_timer_grid(now + liveness_grace(idle), slot);
        Idle::Ask
    }

    async fn send_ws_ping(&mut self, now: Instant) -> Result<(), End> {
        self.ws_ping_n += 1;
        if self.ws_pings.len() >= MAX_PENDING_WS_PINGS {
            self.ws_pings.pop_front();
        }
        self.ws_pings.push_back((self.ws_ping_n, now));
        self.next_ws_ping = self
            .user
            .config
            .ws_ping
            .map(|p| on_timer_grid(now + p, timer_slot(p)));
        let payload = self.ws_ping_n.to_be_bytes().to_vec();
        self.socket
            .send(Message::Ping(payload.into()))
            .await
            .map_err(send_failed)
    }

    /// Open model: every slot that came due is sent and timed from its slot, however
    /// late the sending is.
    async fn send_due(&mut self, now: Instant) -> Result<(), End> {
        let period = self.send_period.unwrap_or_default();
        while let Some(due) = self.next_send.filter(|d| *d <= now) {
            self.session.ping_id += 1;
            let id = self.session.ping_id;
            let body = self.user.config.send_template.render(&self.fill(id));
            if self.pending.len() >= MAX_PENDING_REPLIES {
                self.pending.pop_front();
                self.record(|r| r.error("pong_missing"));
            }
            self.pending.push_back(Pending {
                id,
                due,
                sent_us: crate::clock::unix_micros(),
            });
            self.next_send = Some(due + period);
            self.socket
                .send(Message::Text(body.into()))
                .await
                .map_err(send_failed)?;
            self.record(|r| r.counters.pings_sent += 1);
        }
        Ok(())
    }

    fn on_message(&mut self, next: Option<Result<Message, tungstenite::Error>>) -> Option<End> {
        match next {
            None => Some(lost(
                "closed_without_frame",
                "the server closed the connection without a close frame".into(),
            )),
            Some(Err(e)) => Some(lost(&io_kind(&e), read_failed(&e))),
            Some(Ok(Message::Close(frame))) => {
                let code = frame
                    .as_ref()
                    .map_or(CLOSE_NO_STATUS, |f| u16::from(f.code));
                let reason = frame.as_ref().map(|f| f.reason.as_str()).unwrap_or("");
                let said = if reason.is_empty() {
                    format!("closed with {code}, no reason given")
                } else {
                    let reason = crate::text::printable(reason).into_owned();
                    format!("closed with {code}: {reason}")
                };
                Some(lost(&format!("close_{code}"), said))
            }
            Some(Ok(Message::Text(text))) if self.user.config.decode == Decode::Stomp => {
                self.on_stomp(text.as_bytes());
                None
            }
            Some(Ok(Message::Binary(bytes))) if self.user.config.decode == Decode::Stomp => {
                self.on_stomp(&bytes);
                None
            }
            Some(Ok(Message::Text(text))) => {
                let arrived = self.on_frame();
                // A server's own ping is answered, not measured.
                let config = self.user.config;
                match config
                    .replies
                    .iter()
                    .find(|r| r.when.matches(text.as_str()))
                {
                    Some(reply) => self.reply = Some(reply.send.render(&self.fill(0))),
                    None => match config.decode {
                        Decode::Text | Decode::Bytes => self.arrived(text.len()),
                        _ => self.measure(text.as_str(), text.len(), arrived),
                    },
                }
                None
            }
            Some(Ok(Message::Binary(bytes))) => {
                let arrived = self.on_frame();
                self.record(|r| r.counters.binary_frames += 1);
                self.on_binary(&bytes, arrived);
                None
            }
            Some(Ok(Message::Pong(payload))) => {
                self.on_pong(&payload);
                None
            }
            Some(Ok(_)) => {
                self.last_frame = Instant::now();
                None
            }
        }
    }

    /// The scenario's session: its sends, and its waits for the frames that answer
    /// them (not measured: protocol, not data).
    async fn run_session(&mut self) -> Result<(), End> {
        let config = self.user.config;
        for step in &config.session {
            match step {
                Step::Send(template) => {
                    let body = template.render(&self.fill(self.session.ping_id));
                    self.socket
                        .send(Message::Text(body.into()))
                        .await
                        .map_err(send_failed)?;
                }
                Step::Wait { want, timeout } => self.wait_for(want, *timeout).await?,
            }
        }
        Ok(())
    }

    /// Reads until a frame matches `want`; none within `timeout` ends the connection.
    async fn wait_for(&mut self, want: &Match, timeout: Duration) -> Result<(), End> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let next = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .map_err(|_| {
                    let waited = crate::units::show_duration(timeout);
                    lost(
                        "session_timeout",
                        format!("waited {waited} for a frame with {}", want.describe()),
                    )
                })?;
            match next {
                Some(Ok(Message::Text(text))) => {
                    self.last_frame = Instant::now();
                    if self
                        .session_view(text.as_bytes())
                        .is_some_and(|view| want.matches(&view))
                    {
                        return Ok(());
                    }
                }
                Some(Ok(Message::Binary(bytes))) => {
                    self.last_frame = Instant::now();
                    if self
                        .session_view(&bytes)
                        .is_some_and(|view| want.matches(&view))
                    {
                        return Ok(());
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => self.last_frame = Instant::now(),
                Some(Ok(Message::Frame(_))) => {}
                other => {
                    return Err(self
                        .on_message(other)
                        .unwrap_or_else(|| lost("session", "the session ended early".into())));
                }
            }
        }
    }

    /// What fills a template for message `id` of this connection now.
    fn fill(&self, id: u64) -> Fill<'_> {
        Fill {
            id,
            game_id: self.user.game.unwrap_or(""),
            since: self.session.last_seq,
            user: self.user.index,
            shard: self.user.shard_index,
            now_ms: crate::clock::unix_micros() / 1_000,
        }
    }

    /// Sends the subscribe message (if any), its placeholders filled in.
    async fn subscribe(&mut self) -> Result<(), End> {
        let Some(template) = &self.user.config.subscribe else {
            return Ok(());
        };
        let body = template.render(&self.fill(self.session.ping_id));
        self.socket
            .send(Message::Text(body.into()))
            .await
            .map_err(send_failed)
    }
}
