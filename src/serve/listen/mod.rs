//! The accept loop, and each client connection's life around the router.
//!
//! Every TCP connection, HTTP or WebSocket, holds one of `max_open` slots for as long
//! as its socket lives (a WebSocket keeps it after the upgrade). A connection must
//! send a complete request head within `header_timeout` of opening or of its head's
//! first byte, and may wait between requests for `idle_timeout`; past either it is
//! dropped. With every slot taken, the connection that has waited longest without a
//! request in progress (a header trickler, an idle keep-alive) makes room for the
//! newcomer, so slow clients cannot lock others out; with none to spare, the newcomer
//! gets a quick 503. Accept errors (out of files) back off instead of spinning.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

mod slots;
mod watched;

use super::observe::Metrics;
use crate::shutdown::Shutdown;
use slots::{Clock, Open, Phase};
use watched::{AccountedService, Counted};
pub use watched::{ConnAddrs, Watched};

/// How client connections are held to account.
#[derive(Debug, Clone, Copy)]
pub struct ListenSettings {
    /// A request head must be complete this long after the connection opened or the
    /// head's first byte arrived.
    pub header_timeout: Duration,
    /// A connection with no request in progress is closed after this long.
    pub idle_timeout: Duration,
    /// Most open client connections, HTTP and WebSocket alike.
    pub max_open: usize,
    /// SO_SNDBUF for client sockets: bounds kernel memory held for a slow reader.
    pub send_buffer: Option<usize>,
}

/// Longest request head (request line and headers), in bytes: 431 beyond it.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Newcomers waiting for an evicted connection's slot, or being told 503.
const MAX_WAITING_AT_THE_DOOR: usize = 64;
/// How long a newcomer waits for an evicted connection to give up its slot.
const EVICTION_WAIT: Duration = Duration::from_secs(1);
/// A connection as hyper holds it: an upgraded stream is taken back out of hyper as
/// this type (`hyper::upgrade::Upgraded::downcast`), so a WebSocket reads and
/// writes the socket without hyper's layers in between.
pub type ServedIo = TokioIo<Watched>;

/// How long a refused connection is given to finish sending its request head.
const REFUSAL_READ: Duration = Duration::from_millis(500);
/// How long a refusal may take to write and to drain what follows.
const REFUSAL_WRITE: Duration = Duration::from_millis(500);
/// How often a connection with a request in progress looks at its clock.
const BUSY_CHECK: Duration = Duration::from_secs(1);
/// First and longest pause after an accept error.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(5), Duration::from_secs(1));

/// Serves `router` on `listener` until `shutdown` triggers; then stops accepting and
/// asks every HTTP connection to finish its request and close.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: ListenSettings,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
) -> io::Result<()> {
    let local = listener.local_addr()?;
    let open = Arc::new(Open::new(settings.max_open));
    let door = Arc::new(Semaphore::new(MAX_WAITING_AT_THE_DOOR));
    let mut backoff: Option<Duration> = None;
    loop {
        let accepted = tokio::select! {
            _ = shutdown.triggered() => return Ok(()),
            accepted = listener.accept() => accepted,
        };
        let (tcp, _peer) = match accepted {
            Ok(accepted) => {
                backoff = None;
                accepted
            }
            Err(e) if is_the_peers_problem(&e) => continue,
            Err(e) => {
                metrics.accept_errors.inc();
                let wait = backoff.map_or(ACCEPT_BACKOFF.0, |b| (b * 2).min(ACCEPT_BACKOFF.1));
                if backoff.is_none() {
                    tracing::warn!(error = %e, "cannot accept connections; backing off");
                }
                backoff = Some(wait);
                tokio::select! {
                    _ = shutdown.triggered() => return Ok(()),
                    _ = tokio::time::sleep(wait) => continue,
                }
            }
        };
        tune(&tcp, settings.send_buffer);
        // Listening on 0.0.0.0 (or ::), the address this client reached is the
        // accepted socket's own, not the listener's.
        let reached = match local.ip().is_unspecified() {
            true => tcp.local_addr().unwrap_or(local),
            false => local,
        };
        let conn = Conn {
            tcp,
            addrs: ConnAddrs { local: reached },
            router: router.clone(),
            settings,
            open: open.clone(),
            metrics: metrics.clone(),
            shutdown: shutdown.clone(),
        };
        if let Ok(slot) = open.slots.clone().try_acquire_owned() {
            shutdown.spawn(conn.serve(slot));
            continue;
        }
        // Every slot is taken. One waiting without a request makes room (its slot
        // frees as soon as it sees that); else a quick 503, as far as the door allows.
        // (Each eviction admits one newcomer: those waits are bounded by the slots.)
        if open.evict_oldest(Instant::now()) {
            shutdown.spawn(conn.take_freed_slot());
            continue;
        }
        match door.clone().try_acquire_owned() {
            Ok(place) => {
                shutdown.spawn(conn.refuse(place));
            }
            Err(_) => conn.metrics.count_dropped("over_limit"),
        }
    }
}

/// Accept errors that concern one connection, not the listener.
fn is_the_peers_problem(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

fn tune(tcp: &TcpStream, send_buffer: Option<usize>) {
    let _ = tcp.set_nodelay(true);
    if let Some(bytes) = send_buffer {
        let _ = socket2::SockRef::from(tcp).set_send_buffer_size(bytes);
    }
}

/// One accepted connection and what serving it needs.
struct Conn {
    tcp: TcpStream,
    addrs: ConnAddrs,
    router: Router,
    settings: ListenSettings,
    open: Arc<Open>,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
}

impl Conn {
    /// Takes the slot an evicted connection gives up (a 503 if it does not in time).
    async fn take_freed_slot(self) {
        let freed =
            tokio::time::timeout(EVICTION_WAIT, self.open.slots.clone().acquire_owned()).await;
        match freed {
            Ok(Ok(slot)) => self.serve(slot).await,
            _ => {
                self.metrics.count_dropped("over_limit");
                refuse(self.tcp).await;
            }
        }
    }

    /// No room: a quick 503 (holding a place at the door while it is written).
    async fn refuse(self, _place: OwnedSemaphorePermit) {
        self.metrics.count_dropped("over_limit");
        refuse(self.tcp).await;
    }

    /// Serves HTTP/1.1 (and upgrades) on the connection until it ends, times out, is
    /// evicted, or the server shuts down.
    async fn serve(self, slot: OwnedSemaphorePermit) {
        let Conn {
            tcp,
            addrs,
            router,
            settings,
            open,
            metrics,
            shutdown,
        } = self;
        let clock = open.new_clock();
        metrics.tcp_connections.inc();
        let io = Watched {
            tcp,
            clock: clock.clone(),
            open: open.clone(),
            _slot: slot,
            _counted: Counted(metrics.clone()),
        };
        let service = AccountedService {
            inner: TowerToHyperService::new(router),
            clock: clock.clone(),
            open: open.clone(),
            addrs,
        };
        let connection = http1::Builder::new()
            // The buffer cap alone is checked between reads, and one read can bring
            // up to another 64 KiB; the head's own size is checked once it is parsed.
            .max_buf_size(MAX_HEAD_BYTES)
            .max_header_size(MAX_HEAD_BYTES)
            .header_read_timeout(None)
            // A client may send its request and shut its write side (`nc -N`, some
            // health checkers and proxies): it still gets its answer.
            .half_close(true)
            .serve_connection(ServedIo::new(io), service)
            .with_upgrades();
        tokio::pin!(connection);
        let mut closing = false;
        let ended = loop {
            let next_look = open.instant(clock.since.load(Ordering::Relaxed))
                + match clock.phase() {
                    Phase::Head => settings.header_timeout,
                    Phase::Idle => settings.idle_timeout,
                    Phase::Busy | Phase::Upgraded => BUSY_CHECK,
                };
            tokio::select! {
                _ = &mut connection => break None,
                _ = clock.evict.cancelled() => break Some("evicted"),
                _ = tokio::time::sleep_until(next_look.max(Instant::now()).into()) => {
                    if let Some(reason) = timed_out(&clock, &open, settings) {
                        break Some(reason);
                    }
                }
                _ = shutdown.triggered(), if !closing => {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        };
        if let Some(reason) = ended {
            metrics.count_dropped(reason);
        }
        open.gone(&clock);
    }
}

/// Why the connection's time is up, if it is.
fn timed_out(clock: &Clock, open: &Open, settings: ListenSettings) -> Option<&'static str> {
    let waited =
        Instant::now().saturating_duration_since(open.instant(clock.since.load(Ordering::Relaxed)));
    match clock.phase() {
        Phase::Head if waited >= settings.header_timeout => Some("header_timeout"),
        Phase::Idle if waited >= settings.idle_timeout => Some("idle_timeout"),
        _ => None,
    }
}

/// A quick 503 for a connection there is no room for: the request head is read
/// briefly first (a client answered before it finished sending may not see the
/// answer), then the 503 is written with a deadline, then what else the client sent
/// is read briefly (closing with unread data would reset the connection).
async fn refuse(mut tcp: TcpStream) {
    const BODY: &str =
        r#"{"error":"max_open","message":"too many open connections (--max-open); retry later"}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 2048];
    let read_head = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD_BYTES {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(REFUSAL_READ, read_head).await;
    let goodbye = async {
        tcp.write_all(response.as_bytes()).await?;
        tcp.shutdown().await?;
        let mut drained = 0;
        while drained < MAX_HEAD_BYTES {
            match tcp.read(&mut buf).await? {
                0 => break,
                n => drained += n,
            }
        }
        io::Result::Ok(())
    };
    let _ = tokio::time::timeout(REFUSAL_WRITE, goodbye).await;
}

/// How many client connections may be open: the wish, within what the open-files
/// limit leaves after `reserved` descriptors for everything else. Raises the soft
/// limit first, as far as the hard limit allows.
pub fn max_open_within_files(wanted: usize, reserved: usize) -> (usize, Option<u64>) {
    let files = crate::fdlimit::raise_open_files(wanted as u64 + reserved as u64);
    let fits = files.map_or(wanted, |f| (f as usize).saturating_sub(reserved));
    (wanted.min(fits).max(1), files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_waiting_connection_is_evicted_and_busy_ones_never() {
        let open = Open::new(3);
        let trickler = open.new_clock();
        let busy = open.new_clock();
        open.busy(&busy);
        let newer = open.new_clock();
        // Everyone is younger than MIN_AGE_TO_EVICT: nobody goes.
        assert!(!open.evict_oldest(Instant::now()));
        let later = Instant::now() + Duration::from_secs(10);
        assert!(open.evict_oldest(later));
        assert!(trickler.evict.is_cancelled());
        assert!(!busy.evict.is_cancelled() && !newer.evict.is_cancelled());
        assert!(open.evict_oldest(later), "then the next oldest waiting one");
        assert!(newer.evict.is_cancelled());
        assert!(
            !open.evict_oldest(later),
            "a busy connection is never evicted"
        );
    }

    #[test]
    fn the_connection_limit_fits_the_open_files_limit() {
        let (soft, _) = crate::fdlimit::open_files().unwrap();
        let (max, files) = max_open_within_files(usize::MAX / 4, 64);
        assert!(files.unwrap() >= soft);
        assert_eq!(max as u64, files.unwrap() - 64);
        assert_eq!(max_open_within_files(10, 64).0, 10);
    }
}
