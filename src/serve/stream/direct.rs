//! A game's writer: one task per game that hands each frame straight to the socket
//! of every viewer with nothing queued, so a broadcast wakes one task, not one per
//! client. A viewer's own task hands its receiver to the writer whenever it has
//! nothing left to write ([`Slot::hand_over`]) and takes it back before it writes
//! anything itself (a reply, a Close) or when the writer gives it back: a socket
//! that would not take a whole batch, a receiver that fell a ring behind, or the
//! writer stopping. Either way the bytes the socket did not take come back with it,
//! to be written before anything else, so the stream on the wire stays whole.
//!
//! The writer takes frames from each viewer's own receiver, so a viewer's place in
//! the ring, `Lagged`, the queue figures and the snapshot-then-live order are the
//! same whoever writes. It serves its viewers from a different one each round, so
//! no viewer is always last.

use std::future::Future;
use std::io::IoSlice;
use std::os::fd::{BorrowedFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use tokio::sync::Notify;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::TryRecvError;
use tokio_util::sync::CancellationToken;

use super::outgoing::Outgoing;

/// Most writers a game has.
const MAX_WRITERS: usize = 8;

/// Most frames handed to one socket in one write.
const MAX_BATCH: usize = 64;

/// Sockets written between clock reads: a clock read per socket would cost more
/// than the latency figure is worth, one per round would age the last sockets'.
const CLOCK_EVERY: usize = 64;

/// Sockets written before the writer lets other tasks run (accepts, reads).
const YIELD_EVERY: usize = 1024;

/// Where the writer's deliveries are counted.
pub trait DeliveryLog: Send + Sync + 'static {
    /// Frames handed to sockets, their text's bytes, and the bytes written.
    fn delivered(&self, frames: u64, text_bytes: u64, wire_bytes: u64);
    /// How long a frame waited between publishing and its hand-over.
    fn waited(&self, seconds: f64);
    /// A viewer was given back to its task (a full socket, a receiver behind).
    fn handed_back(&self);
}

/// A game's viewers that its writers may serve, split in shards, one writer task
/// each: a round over thousands of sockets takes every core, as the viewers' own
/// tasks would.
pub struct Fanout {
    shards: Box<[Shard]>,
    /// Where the next viewer joins.
    next: AtomicUsize,
    started: AtomicBool,
}

/// One writer's viewers and its wake-up.
#[derive(Default)]
struct Shard {
    /// Viewers joined since the writer's last round.
    arrivals: Mutex<Vec<Arc<Slot>>>,
    wake: Notify,
    /// Set once the writer has stopped: nothing may be handed to it any more.
    stopped: AtomicBool,
}

impl Default for Fanout {
    /// As many writers as the machine has cores.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_writers(cores.min(MAX_WRITERS))
    }
}

impl Fanout {
    pub fn with_writers(writers: usize) -> Self {
        Self {
            shards: (0..writers.max(1)).map(|_| Shard::default()).collect(),
            next: AtomicUsize::new(0),
            started: AtomicBool::new(false),
        }
    }

    /// Tells the writers a frame was published.
    pub fn wake(&self) {
        for shard in &self.shards {
            shard.wake.notify_one();
        }
    }

    /// Starts the writers (`spawn` runs each) unless they were started before.
    /// `window`: the shortest time between two rounds of a writer. Frames published
    /// closer together than that go out in one write per socket: at hundreds of
    /// frames a second per game, a segment per frame costs the sender and every
    /// receiver a system call and a wake-up each, where a batch costs one. A game
    /// publishing less often never waits for it.
    pub fn start_once(
        self: &Arc<Self>,
        window: Duration,
        log: &Arc<dyn DeliveryLog>,
        stop: &CancellationToken,
        spawn: impl Fn(Pin<Box<dyn Future<Output = ()> + Send>>),
    ) {
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        for shard in 0..self.shards.len() {
            let writer = self.clone().run(shard, window, log.clone(), stop.clone());
            spawn(Box::pin(writer));
        }
    }

    /// A new viewer's slot, known to its writer from the next round on.
    pub fn join(&self) -> Arc<Slot> {
        let shard = self.next.fetch_add(1, Ordering::Relaxed) % self.shards.len();
        let slot = Arc::new(Slot {
            shard,
            ..Slot::default()
        });
        lock(&self.shards[shard].arrivals).push(slot.clone());
        slot
    }

    /// A writer: a round over its viewers after each wake-up, until `stop`;
    /// whatever it holds is handed back when it ends, however it ends.
    async fn run(
        self: Arc<Self>,
        shard: usize,
        window: Duration,
        log: Arc<dyn DeliveryLog>,
        stop: CancellationToken,
    ) {
        let mut writer = Writer {
            fanout: self,
            shard,
            slots: Vec::new(),
            batch: Vec::with_capacity(MAX_BATCH),
            turn: 0,
        };
        let mut last_round: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = writer.shard().wake.notified() => {}
                _ = stop.cancelled() => return,
            }
            // Frames coming faster than one a window go out together.
            let since = last_round.map_or(window, |at| at.elapsed());
            if since < window {
                tokio::select! {
                    _ = tokio::time::sleep(window - since) => {}
                    _ = stop.cancelled() => return,
                }
            }
            last_round = Some(Instant::now());
            writer.round(&*log).await;
        }
    }
}

/// A writer's own state; dropping it hands every viewer back.
struct Writer {
    fanout: Arc<Fanout>,
    shard: usize,
    slots: Vec<Arc<Slot>>,
    batch: Vec<Outgoing>,
    turn: usize,
}

impl Writer {
    fn shard(&self) -> &Shard {
        &self.fanout.shards[self.shard]
    }

    async fn round(&mut self, log: &dyn DeliveryLog) {
        let arrived = std::mem::take(&mut *lock(&self.shard().arrivals));
        self.slots.extend(arrived);
        let count = self.slots.len();
        if count == 0 {
            return;
        }
        let turn = self.turn;
        self.turn = self.turn.wrapping_add(1);
        let mut now = Instant::now();
        for (i, at) in round_order(turn, count).enumerate() {
            if i % CLOCK_EVERY == 0 && i > 0 {
                now = Instant::now();
            }
            let slot = &self.slots[at];
            slot.deliver(&mut self.batch, now, log);
            if i % YIELD_EVERY == YIELD_EVERY - 1 {
                tokio::task::yield_now().await;
            }
        }
        self.slots
            .retain(|slot| !slot.closed.load(Ordering::Acquire));
    }
}

/// The order of round `turn` over `count` viewers: each round starts one further on,
/// so every viewer takes its turn at the front and at the back.
fn round_order(turn: usize, count: usize) -> impl Iterator<Item = usize> {
    let first = turn % count.max(1);
    (0..count).map(move |i| (first + i) % count)
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Stopped first, so no viewer hands over again once handed back below.
        self.shard().stopped.store(true, Ordering::SeqCst);
        let arrivals = std::mem::take(&mut *lock(&self.shard().arrivals));
        for slot in self.slots.iter().chain(&arrivals) {
            slot.give_back(Vec::new(), None);
        }
    }
}

/// One viewer as the writer sees it.
#[derive(Default)]
pub struct Slot {
    /// Whose writer serves it.
    shard: usize,
    state: Mutex<SlotState>,
    /// The viewer's task, waiting for its receiver back.
    waker: AtomicWaker,
    closed: AtomicBool,
}

#[derive(Default)]
struct SlotState {
    mode: Mode,
    /// The seq of the last data-bearing frame the writer handed over.
    last_seq: u64,
}

#[derive(Default)]
enum Mode {
    /// The viewer's task writes.
    #[default]
    Task,
    /// The writer takes frames from `rx` and writes them to `fd`.
    Direct { rx: Receiver<Outgoing>, fd: RawFd },
    /// The writer gave the socket back.
    HandedBack(HandBack),
    /// The viewer is gone.
    Closed,
}

/// A receiver given back to its viewer's task, and what comes with it.
pub struct HandBack {
    pub rx: Receiver<Outgoing>,
    /// Bytes the writer took off the ring but the socket did not take: written next.
    pub unsent: Vec<Bytes>,
    /// How many frames the receiver fell behind, seen by the writer.
    pub lagged: Option<u64>,
    /// The seq of the last data-bearing frame the writer handed over.
    pub last_seq: u64,
}

impl Slot {
    fn state(&self) -> MutexGuard<'_, SlotState> {
        lock(&self.state)
    }

    /// Hands the stream to the writer: from now on it writes to `fd`. Refused
    /// (the receiver returned) while frames wait in `rx` (the writer may have passed
    /// this viewer for them already) or once the writer has stopped.
    ///
    /// `fd` must stay open until [`Slot::take_back`] or [`Slot::close`] returns:
    /// the writer writes to it while it holds the stream.
    pub fn hand_over(
        &self,
        rx: Receiver<Outgoing>,
        fd: RawFd,
        last_seq: u64,
        fanout: &Fanout,
    ) -> Result<(), Receiver<Outgoing>> {
        let mut state = self.state();
        if !matches!(state.mode, Mode::Task)
            || !rx.is_empty()
            || fanout.shards[self.shard].stopped.load(Ordering::SeqCst)
        {
            return Err(rx);
        }
        state.mode = Mode::Direct { rx, fd };
        state.last_seq = last_seq;
        Ok(())
    }

    /// Takes the stream back from the writer, if it had it.
    pub fn take_back(&self) -> Option<HandBack> {
        let mut state = self.state();
        let last_seq = state.last_seq;
        match std::mem::take(&mut state.mode) {
            Mode::Direct { rx, .. } => Some(HandBack {
                rx,
                unsent: Vec::new(),
                lagged: None,
                last_seq,
            }),
            Mode::HandedBack(back) => Some(back),
            other => {
                state.mode = other;
                None
            }
        }
    }

    /// Waits until the writer gives the stream back, and takes it. Cancel-safe:
    /// it is taken only in the poll that returns it.
    pub fn handed_back(&self) -> impl Future<Output = HandBack> + '_ {
        std::future::poll_fn(move |cx| {
            self.waker.register(cx.waker());
            let mut state = self.state();
            match std::mem::take(&mut state.mode) {
                Mode::HandedBack(back) => Poll::Ready(back),
                other => {
                    state.mode = other;
                    Poll::Pending
                }
            }
        })
    }

    /// The viewer is gone: the writer forgets it (and its descriptor).
    pub fn close(&self) {
        self.state().mode = Mode::Closed;
        self.closed.store(true, Ordering::Release);
    }

    /// Gives the stream back to the viewer's task with what it must write first.
    fn give_back(&self, unsent: Vec<Bytes>, lagged: Option<u64>) {
        let mut state = self.state();
        let last_seq = state.last_seq;
        match std::mem::take(&mut state.mode) {
            Mode::Direct { rx, .. } => {
                state.mode = Mode::HandedBack(HandBack {
                    rx,
                    unsent,
                    lagged,
                    last_seq,
                });
                drop(state);
                self.waker.wake();
            }
            // Not the writer's to give: left as it was.
            other => state.mode = other,
        }
    }

    /// Writes what waits in this viewer's receiver to its socket, if the writer has
    /// the stream; gives it back when the socket does not take everything.
    fn deliver(&self, batch: &mut Vec<Outgoing>, now: Instant, log: &dyn DeliveryLog) {
        let mut state = self.state();
        loop {
            let SlotState {
                mode: Mode::Direct { rx, fd },
                last_seq,
            } = &mut *state
            else {
                return;
            };
            let fd = *fd;
            let taken = take_batch(rx, batch);
            for out in batch.iter() {
                if out.kind.is_data_bearing() {
                    *last_seq = out.seq;
                }
            }
            let unsent = write_batch(fd, batch, now, log);
            match (unsent, taken) {
                (None, Taken::More) => continue,
                (None, Taken::All) => return,
                (unsent, taken) => {
                    let lagged = match taken {
                        Taken::Lagged(n) => Some(n),
                        _ => None,
                    };
                    drop(state);
                    log.handed_back();
                    return self.give_back(unsent.unwrap_or_default(), lagged);
                }
            }
        }
    }
}

/// How far a batch emptied the receiver.
enum Taken {
    /// Nothing is left (or the ring closed: the task sees that itself).
    All,
    /// The batch is full; more is waiting.
    More,
    /// The receiver fell this many frames behind: the task closes it.
    Lagged(u64),
}

fn take_batch(rx: &mut Receiver<Outgoing>, batch: &mut Vec<Outgoing>) -> Taken {
    batch.clear();
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(out) => batch.push(out),
            Err(TryRecvError::Lagged(n)) => return Taken::Lagged(n),
            Err(TryRecvError::Empty | TryRecvError::Closed) => return Taken::All,
        }
    }
    Taken::More
}

/// Writes `batch` to `fd` in one call and counts it; what the socket did not take,
/// if anything (a batch is handed over in full either way: to the socket, or back
/// to the task to write next).
fn write_batch(
    fd: RawFd,
    batch: &[Outgoing],
    now: Instant,
    log: &dyn DeliveryLog,
) -> Option<Vec<Bytes>> {
    if batch.is_empty() {
        return None;
    }
    let mut slices = [IoSlice::new(&[]); MAX_BATCH];
    let mut text_bytes = 0;
    let mut total = 0;
    for (slot, out) in slices.iter_mut().zip(batch) {
        *slot = IoSlice::new(out.frame.framed());
        text_bytes += out.text().len() as u64;
        total += out.frame.framed().len();
        log.waited(now.saturating_duration_since(out.published).as_secs_f64());
    }
    // Refused (full, or the peer gone) is written nothing: the task finds out which.
    let written = send_now(fd, &slices[..batch.len()]).unwrap_or(0);
    log.delivered(batch.len() as u64, text_bytes, written as u64);
    (written < total).then(|| unsent_after(batch, written))
}

/// The frames of `batch` from byte `written` on.
fn unsent_after(batch: &[Outgoing], mut written: usize) -> Vec<Bytes> {
    let mut unsent = Vec::new();
    for out in batch {
        let framed = out.frame.framed();
        if written >= framed.len() {
            written -= framed.len();
            continue;
        }
        unsent.push(framed.slice(written..));
        written = 0;
    }
    unsent
}

/// One non-blocking vectored send.
fn send_now(fd: RawFd, slices: &[IoSlice<'_>]) -> std::io::Result<usize> {
    // SAFETY: the writer holds a descriptor only while its viewer's task keeps the
    // socket open (see `Slot::hand_over`), and uses it under the slot's lock.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    socket2::SockRef::from(&fd)
        .send_vectored_with_flags(slices, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;
    use std::sync::atomic::AtomicU64;
    use std::time::Duration;

    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::broadcast;
    use tokio_tungstenite::tungstenite::Utf8Bytes;

    use super::*;
    use crate::contract::FrameType;

    const PATIENCE: Duration = Duration::from_secs(10);

    #[derive(Default)]
    struct Counted {
        frames: AtomicU64,
        wire_bytes: AtomicU64,
        /// Frames per write, in order.
        writes: Mutex<Vec<u64>>,
        handed_back: AtomicU64,
    }

    impl DeliveryLog for Counted {
        fn delivered(&self, frames: u64, _text_bytes: u64, wire_bytes: u64) {
            lock(&self.writes).push(frames);
            self.frames.fetch_add(frames, Ordering::Relaxed);
            self.wire_bytes.fetch_add(wire_bytes, Ordering::Relaxed);
        }

        fn waited(&self, _seconds: f64) {}

        fn handed_back(&self) {
            self.handed_back.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A connected pair on loopback: (the server's end, the client's end).
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        (accepted.unwrap().0, client.unwrap())
    }

    fn frame(seq: u64, pad: usize) -> Outgoing {
        let text = format!(
            r#"{{"type":"update","seq":{seq},"pad":"{}"}}"#,
            "x".repeat(pad)
        );
        Outgoing::new(
            seq,
            FrameType::Update,
            Utf8Bytes::from(text),
            Instant::now(),
        )
    }

    fn start(fanout: &Arc<Fanout>, log: &Arc<Counted>) -> CancellationToken {
        start_with_window(fanout, log, Duration::ZERO)
    }

    fn start_with_window(
        fanout: &Arc<Fanout>,
        log: &Arc<Counted>,
        window: Duration,
    ) -> CancellationToken {
        let stop = CancellationToken::new();
        let log: Arc<dyn DeliveryLog> = log.clone();
        fanout.start_once(window, &log, &stop, |writer| {
            tokio::spawn(writer);
        });
        stop
    }

    async fn read_exactly(client: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut got = vec![0; n];
        tokio::time::timeout(PATIENCE, client.read_exact(&mut got))
            .await
            .expect("the bytes arrive")
            .unwrap();
        got
    }

    /// A game's writers, their log, a ring, and one viewer over a loopback pair.
    struct Rig {
        fanout: Arc<Fanout>,
        log: Arc<Counted>,
        tx: broadcast::Sender<Outgoing>,
        server: TcpStream,
        client: TcpStream,
        slot: Arc<Slot>,
    }

    impl Rig {
        /// The viewer joined, its receiver (on a ring of `capacity`) still its own.
        async fn joined(writers: usize, capacity: usize) -> (Self, broadcast::Receiver<Outgoing>) {
            let fanout = Arc::new(Fanout::with_writers(writers));
            let (tx, rx) = broadcast::channel(capacity);
            let (server, client) = pair().await;
            let slot = fanout.join();
            let log = Arc::new(Counted::default());
            let rig = Self {
                fanout,
                log,
                tx,
                server,
                client,
                slot,
            };
            (rig, rx)
        }

        /// The viewer joined and its receiver handed over.
        async fn lent(writers: usize, capacity: usize) -> Self {
            let (rig, rx) = Self::joined(writers, capacity).await;
            assert!(rig.hand_over(rx, 0).is_ok());
            rig
        }

        fn hand_over(
            &self,
            rx: broadcast::Receiver<Outgoing>,
            last_seq: u64,
        ) -> Result<(), broadcast::Receiver<Outgoing>> {
            self.slot
                .hand_over(rx, self.server.as_raw_fd(), last_seq, &self.fanout)
        }

        fn publish(&self, out: &Outgoing) {
            // With every receiver gone, only the round matters.
            let _ = self.tx.send(out.clone());
            self.fanout.wake();
        }
    }

    #[tokio::test]
    async fn every_lent_socket_gets_each_frame_as_framed_once_in_order() {
        let fanout = Arc::new(Fanout::with_writers(2));
        let log = Arc::new(Counted::default());
        let (tx, _) = broadcast::channel(16);
        let mut viewers = Vec::new();
        for _ in 0..5 {
            let (server, client) = pair().await;
            let slot = fanout.join();
            assert!(
                slot.hand_over(tx.subscribe(), server.as_raw_fd(), 0, &fanout)
                    .is_ok()
            );
            viewers.push((server, client, slot));
        }
        let stop = start(&fanout, &log);
        let frames: Vec<Outgoing> = (1..=3).map(|seq| frame(seq, 100 * seq as usize)).collect();
        for out in &frames {
            tx.send(out.clone()).unwrap();
            fanout.wake();
        }
        let expected: Vec<u8> = frames
            .iter()
            .flat_map(|o| o.frame.framed().to_vec())
            .collect();
        for (_, client, slot) in &mut viewers {
            assert_eq!(read_exactly(client, expected.len()).await, expected);
            let back = slot.take_back().expect("the writer had it");
            assert_eq!(back.last_seq, 3);
            assert!(back.unsent.is_empty() && back.lagged.is_none());
        }
        assert_eq!(log.frames.load(Ordering::Relaxed), 15);
        assert_eq!(
            log.wire_bytes.load(Ordering::Relaxed),
            5 * expected.len() as u64
        );
        stop.cancel();
    }

    #[tokio::test]
    async fn a_socket_that_takes_part_comes_back_with_the_rest_to_write_first() {
        let mut rig = Rig::lent(2, 64).await;
        let log = rig.log.clone();
        socket2::SockRef::from(&rig.server)
            .set_send_buffer_size(4096)
            .unwrap();
        socket2::SockRef::from(&rig.client)
            .set_recv_buffer_size(4096)
            .unwrap();
        let stop = start(&rig.fanout, &log);
        // Frames until the writer gives the socket back; the client reads nothing.
        let mut published = Vec::new();
        let back = loop {
            let out = frame(published.len() as u64 + 1, 20_000);
            rig.publish(&out);
            published.push(out);
            if let Ok(back) =
                tokio::time::timeout(Duration::from_millis(50), rig.slot.handed_back()).await
            {
                break back;
            }
            assert!(
                published.len() < 60,
                "a socket that takes nothing was never given back"
            );
        };
        assert!(back.lagged.is_none());
        assert!(!back.unsent.is_empty());
        assert_eq!(log.handed_back.load(Ordering::Relaxed), 1);
        let mut rx = back.rx;
        let mut left = Vec::new();
        while let Ok(out) = rx.try_recv() {
            left.extend_from_slice(out.frame.framed());
        }
        let unsent: Vec<u8> = back.unsent.iter().flat_map(|b| b.to_vec()).collect();
        let all: Vec<u8> = published
            .iter()
            .flat_map(|o| o.frame.framed().to_vec())
            .collect();
        let written = all.len() - unsent.len() - left.len();
        assert_eq!(log.wire_bytes.load(Ordering::Relaxed), written as u64);
        let mut on_the_wire = read_exactly(&mut rig.client, written).await;
        on_the_wire.extend(unsent);
        on_the_wire.extend(left);
        assert!(
            on_the_wire == all,
            "the stream is not whole once the rest is written"
        );
        stop.cancel();
    }

    #[tokio::test]
    async fn a_receiver_a_ring_behind_comes_back_with_its_lag() {
        let rig = Rig::lent(2, 4).await;
        for seq in 1..=10 {
            rig.tx.send(frame(seq, 10)).unwrap();
        }
        let stop = start(&rig.fanout, &rig.log);
        rig.fanout.wake();
        let back = tokio::time::timeout(PATIENCE, rig.slot.handed_back())
            .await
            .unwrap();
        assert_eq!(back.lagged, Some(6));
        stop.cancel();
    }

    #[tokio::test]
    async fn hand_over_waits_for_an_empty_receiver_and_a_running_writer() {
        let (rig, rx) = Rig::joined(2, 4).await;
        rig.tx.send(frame(1, 10)).unwrap();
        let mut rx = rig.hand_over(rx, 0).expect_err("a frame waits");
        rx.try_recv().unwrap();
        let stop = start(&rig.fanout, &rig.log);
        assert!(rig.hand_over(rx, 1).is_ok());
        // Stopping gives it back and refuses it from then on.
        stop.cancel();
        let back = tokio::time::timeout(PATIENCE, rig.slot.handed_back())
            .await
            .unwrap();
        assert_eq!(
            (back.last_seq, back.unsent.len(), back.lagged),
            (1, 0, None)
        );
        assert!(rig.hand_over(back.rx, 1).is_err());
    }

    #[tokio::test]
    async fn a_closed_viewer_is_forgotten_by_the_next_round() {
        let rig = Rig::lent(2, 4).await;
        let stop = start(&rig.fanout, &rig.log);
        rig.slot.close();
        assert!(rig.slot.take_back().is_none());
        rig.publish(&frame(1, 10));
        let deadline = Instant::now() + PATIENCE;
        while Arc::strong_count(&rig.slot) > 1 {
            assert!(
                Instant::now() < deadline,
                "the writer still holds a closed viewer"
            );
            tokio::task::yield_now().await;
        }
        assert_eq!(rig.log.frames.load(Ordering::Relaxed), 0);
        stop.cancel();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn frames_closer_together_than_the_window_go_out_in_one_write() {
        let mut rig = Rig::lent(1, 16).await;
        let stop = start_with_window(&rig.fanout, &rig.log, Duration::from_millis(300));
        let frames: Vec<Outgoing> = (1..=4).map(|seq| frame(seq, 10)).collect();
        // The first frame goes at once (no round before it).
        rig.publish(&frames[0]);
        read_exactly(&mut rig.client, frames[0].frame.framed().len()).await;
        // The next, published within the window, waits for it; the writer runs
        // meanwhile (it is asleep) and the two after join it.
        rig.publish(&frames[1]);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        rig.publish(&frames[2]);
        rig.publish(&frames[3]);
        let rest: usize = frames[1..].iter().map(|o| o.frame.framed().len()).sum();
        read_exactly(&mut rig.client, rest).await;
        assert_eq!(*lock(&rig.log.writes), [1, 3]);
        stop.cancel();
    }

    #[test]
    fn each_round_starts_one_viewer_further_on() {
        let firsts: Vec<usize> = (0..4)
            .map(|turn| round_order(turn, 3).next().unwrap())
            .collect();
        assert_eq!(firsts, [0, 1, 2, 0]);
        let mut one_round: Vec<usize> = round_order(7, 5).collect();
        one_round.sort();
        assert_eq!(one_round, [0, 1, 2, 3, 4]);
        assert_eq!(round_order(3, 0).count(), 0);
    }
}
