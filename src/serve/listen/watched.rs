//! What hyper holds for each client connection: the router, telling the connection's
//! clock when a request starts and ends, and the socket, holding its slot and marking
//! traffic.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use super::slots::{Clock, Open, Phase};
use crate::serve::observe::Metrics;

/// Where a request came in: the address the client reached (not what its Host
/// header claims).
#[derive(Debug, Clone, Copy)]
pub struct ConnAddrs {
    pub local: SocketAddr,
}

/// The router behind hyper, telling the connection's clock when a request starts and
/// when its answer leaves.
#[derive(Clone)]
pub(super) struct AccountedService {
    pub(super) inner: TowerToHyperService<Router>,
    pub(super) clock: Arc<Clock>,
    pub(super) open: Arc<Open>,
    pub(super) addrs: ConnAddrs,
}

impl Service<hyper::Request<Incoming>> for AccountedService {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, mut request: hyper::Request<Incoming>) -> Self::Future {
        self.open.busy(&self.clock);
        request.extensions_mut().insert(self.addrs);
        let answer = self.inner.call(request);
        let (clock, open) = (self.clock.clone(), self.open.clone());
        Box::pin(async move {
            let response = answer.await?;
            let upgraded = response.status() == hyper::StatusCode::SWITCHING_PROTOCOLS;
            open.answered(&clock, upgraded);
            Ok(response)
        })
    }
}

/// Keeps `tcp_connections` right however the socket ends (also inside a WebSocket).
pub(super) struct Counted(pub(super) Arc<Metrics>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.tcp_connections.dec();
    }
}

/// The socket, holding its slot for as long as it lives, and marking activity: the
/// first byte of a request head starts the header clock; traffic while idle resets
/// the idle clock.
pub struct Watched {
    pub(super) tcp: TcpStream,
    pub(super) clock: Arc<Clock>,
    pub(super) open: Arc<Open>,
    pub(super) _slot: OwnedSemaphorePermit,
    pub(super) _counted: Counted,
}

impl Watched {
    /// The socket's descriptor, for a writer outside the task that owns it.
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.tcp)
    }

    fn activity(&self, read: bool) {
        match self.clock.phase() {
            Phase::Idle if read => {
                self.clock
                    .set(Phase::Head, self.open.micros(Instant::now()));
            }
            Phase::Idle => {
                self.clock
                    .since
                    .store(self.open.micros(Instant::now()), Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity(true);
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.tcp).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity(false);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity(false);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}
