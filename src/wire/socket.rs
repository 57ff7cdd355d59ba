//! A WebSocket on the frame layer, for connections that agreed permessage-deflate
//! (tungstenite fails any frame with RSV1 set): messages reassembled from fragments
//! and inflated under a cap, pings answered, the close handshake echoed, and what
//! crossed the wire counted. It reads and writes tungstenite's `Message`, so code
//! above it does not care which socket it holds.
//!
//! Every buffered byte lives in the socket, never in a future, so reading is
//! cancel-safe (a `select!` may drop `next()` at any await).

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::error::{CapacityError, Error, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::deflate::{self, Agreed, Deflater, InflateError, Inflater};
use super::frame;

/// Which end of the connection this socket is: clients mask what they send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

/// Messages shorter than this go out uncompressed: DEFLATE's block overhead would
/// make them longer.
const COMPRESS_FROM: usize = 32;

/// Buffered output beyond which a send waits for the socket.
const WRITE_HIGH_WATER: usize = 64 * 1024;

/// What crossed the wire, counted as it happens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WireStats {
    /// Bytes read off the socket: frame headers and payloads as sent.
    pub bytes_read: u64,
    /// Bytes written to the socket.
    pub bytes_written: u64,
    /// Bytes of the data messages read, as delivered (inflated).
    pub message_bytes_read: u64,
    /// Messages that arrived compressed.
    pub inflated: u64,
    /// Time spent inflating them.
    pub inflate_nanos: u64,
    /// Time spent compressing what this socket sent.
    pub deflate_nanos: u64,
}

/// The negotiated extension and the state it needs: a decompressor for a peer that
/// keeps its context (others use the thread's), a compressor when we keep ours.
struct Deflate {
    agreed: Agreed,
    inflater: Option<Inflater>,
    deflater: Option<Deflater>,
}

/// A data message being reassembled from fragments.
struct Partial {
    text: bool,
    compressed: bool,
    data: BytesMut,
}

pub struct WireSocket<S> {
    io: S,
    role: Role,
    deflate: Option<Deflate>,
    read: BytesMut,
    read_chunk: usize,
    max_message: usize,
    partial: Option<Partial>,
    /// Bytes waiting to be written, from `written` on.
    out: Vec<u8>,
    written: usize,
    close_sent: bool,
    close_received: bool,
    /// The peer's end of the stream was reported (an error or the end once).
    finished: bool,
    stats: WireStats,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WireSocket<S> {
    /// A socket over an upgraded connection. `already_read`: bytes that arrived with
    /// the handshake's answer; `deflate`: what was agreed, if anything.
    pub fn new(
        io: S,
        role: Role,
        deflate: Option<Agreed>,
        already_read: &[u8],
        read_chunk: usize,
        max_message: usize,
    ) -> Self {
        let mut read = BytesMut::with_capacity(read_chunk.max(already_read.len()));
        read.extend_from_slice(already_read);
        Self {
            io,
            role,
            deflate: deflate.map(|agreed| Deflate {
                agreed,
                inflater: None,
                deflater: None,
            }),
            read,
            read_chunk: read_chunk.max(256),
            max_message,
            partial: None,
            out: Vec::new(),
            written: 0,
            close_sent: false,
            close_received: false,
            finished: false,
            stats: WireStats {
                bytes_read: already_read.len() as u64,
                ..WireStats::default()
            },
        }
    }

    /// The permessage-deflate parameters agreed, if any.
    pub fn agreed(&self) -> Option<Agreed> {
        self.deflate.as_ref().map(|d| d.agreed)
    }

    pub fn stats(&self) -> WireStats {
        self.stats
    }

    /// Whether each message we send must be compressed on its own, so one
    /// compressed copy may go to every peer that agreed the same.
    pub fn sends_without_context(&self) -> bool {
        self.deflate
            .as_ref()
            .is_some_and(|d| !d.agreed.keeps_context(self.role == Role::Server))
    }

    /// Queues a text message whose payload the caller already compressed on its own
    /// (no context): for a broadcast compressed once for many sockets.
    pub fn feed_precompressed_text(&mut self, compressed: &[u8]) {
        self.queue_frame(OpCode::Data(Data::Text), true, compressed);
    }

    /// Queues a message, compressing it when the extension was agreed and this end
    /// compresses (the server; a client may always send uncompressed).
    fn queue_message(&mut self, message: Message) -> Result<(), Error> {
        if self.close_sent {
            return Err(Error::Protocol(ProtocolError::SendAfterClosing));
        }
        let (opcode, payload): (OpCode, Bytes) = match message {
            Message::Text(text) => (OpCode::Data(Data::Text), text.into()),
            Message::Binary(data) => (OpCode::Data(Data::Binary), data),
            Message::Ping(data) => (OpCode::Control(Control::Ping), data),
            Message::Pong(data) => (OpCode::Control(Control::Pong), data),
            Message::Close(frame) => {
                self.queue_close(frame);
                return Ok(());
            }
            Message::Frame(_) => {
                return Err(Error::Io(std::io::Error::other(
                    "raw frames cannot be sent on a permessage-deflate socket",
                )));
            }
        };
        match opcode {
            OpCode::Data(_) => self.queue_data(opcode, &payload),
            OpCode::Control(_) => self.queue_frame(opcode, false, &payload),
        }
        Ok(())
    }

    /// Queues a text message from its bytes (which the caller knows are UTF-8: a
    /// frame it serialized), compressed as [`Sink::start_send`] would.
    pub fn feed_text(&mut self, text: &[u8]) {
        self.queue_data(OpCode::Data(Data::Text), text);
    }

    fn queue_data(&mut self, opcode: OpCode, payload: &[u8]) {
        if self.compresses() && payload.len() >= COMPRESS_FROM {
            let compressed = self.compress(payload);
            // A message compressed on its own may go out as it was when that is
            // shorter; with a kept context the peer must see every compressed byte.
            if compressed.len() < payload.len() || !self.sends_without_context() {
                self.queue_frame(opcode, true, &compressed);
                return;
            }
        }
        self.queue_frame(opcode, false, payload);
    }

    fn compresses(&self) -> bool {
        self.role == Role::Server && self.deflate.is_some()
    }

    fn compress(&mut self, payload: &[u8]) -> Vec<u8> {
        let started = Instant::now();
        let mut out = Vec::new();
        let keep = !self.sends_without_context();
        match self.deflate.as_mut() {
            Some(d) if keep => d
                .deflater
                .get_or_insert_with(|| Deflater::new(true))
                .compress(payload, &mut out),
            _ => deflate::compress_one(payload, &mut out),
        }
        self.stats.deflate_nanos += started.elapsed().as_nanos() as u64;
        out
    }

    fn queue_close(&mut self, frame: Option<CloseFrame>) {
        if self.close_sent {
            return;
        }
        self.close_sent = true;
        let payload = frame
            .map(|f| {
                let mut p = u16::from(f.code).to_be_bytes().to_vec();
                p.extend_from_slice(f.reason.as_bytes());
                p.truncate(frame::MAX_CONTROL_PAYLOAD as usize);
                p
            })
            .unwrap_or_default();
        self.queue_frame(OpCode::Control(Control::Close), false, &payload);
    }

    fn queue_frame(&mut self, opcode: OpCode, rsv1: bool, payload: &[u8]) {
        if self.written == self.out.len() {
            self.out.clear();
            self.written = 0;
        }
        let mask = (self.role == Role::Client).then(rand::random::<[u8; 4]>);
        frame::write(&mut self.out, opcode, rsv1, mask, payload.len());
        let start = self.out.len();
        self.out.extend_from_slice(payload);
        if let Some(key) = mask {
            frame::apply_mask(&mut self.out[start..], key);
        }
    }

    /// Writes what is queued, then flushes the stream.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        while self.written < self.out.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.out[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(Error::Io(std::io::ErrorKind::WriteZero.into())));
            }
            self.written += n;
            self.stats.bytes_written += n as u64;
        }
        self.out.clear();
        self.written = 0;
        Pin::new(&mut self.io).poll_flush(cx).map_err(Error::Io)
    }

    fn poll_read_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        if self.finished {
            return Poll::Ready(None);
        }
        loop {
            // Pongs and close replies queued by earlier reads go out as soon as they can.
            if self.written < self.out.len()
                && let Poll::Ready(Err(e)) = self.poll_write_out(cx)
            {
                return self.finish(Err(e));
            }
            if self.close_received && self.close_sent {
                return self.finish_quietly();
            }
            match self.take_frame() {
                Err(e) => return self.finish(Err(e)),
                Ok(Some(message)) => return Poll::Ready(Some(Ok(message))),
                Ok(None) => {}
            }
            self.read.reserve(self.read_chunk);
            let n = match ready!(tokio_util::io::poll_read_buf(
                Pin::new(&mut self.io),
                cx,
                &mut self.read
            )) {
                Ok(n) => n,
                Err(e) => return self.finish(Err(Error::Io(e))),
            };
            if n == 0 {
                return if self.close_received {
                    self.finish_quietly()
                } else {
                    self.finish(Err(Error::Protocol(
                        ProtocolError::ResetWithoutClosingHandshake,
                    )))
                };
            }
            self.stats.bytes_read += n as u64;
        }
    }

    fn finish(&mut self, result: Result<Message, Error>) -> Poll<Option<Result<Message, Error>>> {
        self.finished = true;
        Poll::Ready(Some(result))
    }

    fn finish_quietly(&mut self) -> Poll<Option<Result<Message, Error>>> {
        self.finished = true;
        Poll::Ready(None)
    }

    /// The next whole message in the read buffer, None when more bytes are needed.
    fn take_frame(&mut self) -> Result<Option<Message>, Error> {
        loop {
            let Some((header, at)) = frame::parse(&self.read)? else {
                return Ok(None);
            };
            match (self.role, header.mask.is_some()) {
                (Role::Server, false) => {
                    return Err(Error::Protocol(ProtocolError::UnmaskedFrameFromClient));
                }
                (Role::Client, true) => {
                    return Err(Error::Protocol(ProtocolError::MaskedFrameFromServer));
                }
                _ => {}
            }
            let so_far = self.partial.as_ref().map_or(0, |p| p.data.len());
            let size = so_far as u64 + header.len;
            if size > self.max_message as u64 {
                return Err(Error::Capacity(CapacityError::MessageTooLong {
                    size: size as usize,
                    max_size: self.max_message,
                }));
            }
            let len = header.len as usize;
            if self.read.len() < at + len {
                self.read.reserve(at + len - self.read.len());
                return Ok(None);
            }
            let _ = self.read.split_to(at);
            let mut payload = self.read.split_to(len);
            if let Some(key) = header.mask {
                frame::apply_mask(&mut payload, key);
            }
            if let Some(message) = self.on_frame(header, payload)? {
                return Ok(Some(message));
            }
        }
    }

    fn on_frame(
        &mut self,
        header: frame::Header,
        payload: BytesMut,
    ) -> Result<Option<Message>, Error> {
        if header.rsv1 && (self.deflate.is_none() || header.opcode == OpCode::Data(Data::Continue))
        {
            return Err(Error::Protocol(ProtocolError::NonZeroReservedBits));
        }
        match header.opcode {
            OpCode::Control(Control::Ping) => {
                let data = payload.freeze();
                if !self.close_sent {
                    self.queue_frame(OpCode::Control(Control::Pong), false, &data);
                }
                Ok(Some(Message::Ping(data)))
            }
            OpCode::Control(Control::Pong) => Ok(Some(Message::Pong(payload.freeze()))),
            OpCode::Control(Control::Close) => self.on_close(payload.freeze()).map(Some),
            OpCode::Control(Control::Reserved(n)) => {
                Err(Error::Protocol(ProtocolError::UnknownControlFrameType(n)))
            }
            OpCode::Data(Data::Continue) => {
                let Some(partial) = self.partial.as_mut() else {
                    return Err(Error::Protocol(ProtocolError::UnexpectedContinueFrame));
                };
                partial.data.extend_from_slice(&payload);
                if !header.fin {
                    return Ok(None);
                }
                let whole = self.partial.take().expect("checked above");
                self.complete(whole.text, whole.compressed, whole.data.freeze())
                    .map(Some)
            }
            OpCode::Data(kind) => {
                if self.partial.is_some() {
                    return Err(Error::Protocol(ProtocolError::ExpectedFragment(kind)));
                }
                let text = kind == Data::Text;
                if header.fin {
                    return self.complete(text, header.rsv1, payload.freeze()).map(Some);
                }
                self.partial = Some(Partial {
                    text,
                    compressed: header.rsv1,
                    data: payload,
                });
                Ok(None)
            }
        }
    }

    fn on_close(&mut self, payload: Bytes) -> Result<Message, Error> {
        self.close_received = true;
        let frame = match payload.len() {
            0 => None,
            1 => return Err(Error::Protocol(ProtocolError::InvalidCloseSequence)),
            _ => {
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                let reason = Utf8Bytes::try_from(payload.slice(2..))?;
                Some(CloseFrame {
                    code: code.into(),
                    reason,
                })
            }
        };
        // Echo the code (RFC 6455 5.5.1) unless we closed first.
        self.queue_close(frame.clone());
        Ok(Message::Close(frame))
    }

    fn complete(&mut self, text: bool, compressed: bool, data: Bytes) -> Result<Message, Error> {
        let data = if compressed {
            self.inflate(&data)?
        } else {
            data
        };
        self.stats.message_bytes_read += data.len() as u64;
        Ok(if text {
            Message::Text(Utf8Bytes::try_from(data)?)
        } else {
            Message::Binary(data)
        })
    }

    fn inflate(&mut self, payload: &[u8]) -> Result<Bytes, Error> {
        let started = Instant::now();
        let peer_is_server = self.role == Role::Client;
        let max = self.max_message;
        let deflate = self.deflate.as_mut().expect("RSV1 is refused without it");
        let mut out = Vec::with_capacity(payload.len() * 4);
        let result = if deflate.agreed.keeps_context(peer_is_server) {
            deflate
                .inflater
                .get_or_insert_with(|| Inflater::new(true))
                .inflate(payload, max, &mut out)
        } else {
            deflate::inflate_one(payload, max, &mut out)
        };
        self.stats.inflated += 1;
        self.stats.inflate_nanos += started.elapsed().as_nanos() as u64;
        match result {
            Ok(()) => Ok(out.into()),
            Err(InflateError::TooLarge { max }) => {
                Err(Error::Capacity(CapacityError::MessageTooLong {
                    size: max + 1,
                    max_size: max,
                }))
            }
            // The InflateError stays inside, for callers that name failures by kind.
            Err(e @ InflateError::Corrupt(_)) => Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                e,
            ))),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WireSocket<S> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_read_message(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WireSocket<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        if this.out.len() - this.written > WRITE_HIGH_WATER {
            ready!(this.poll_write_out(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        self.get_mut().queue_message(message)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().poll_write_out(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        this.queue_close(None);
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx).map_err(Error::Io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

    fn pair(agreed: Option<Agreed>) -> (WireSocket<DuplexStream>, WireSocket<DuplexStream>) {
        let (a, b) = duplex(1 << 20);
        (
            WireSocket::new(a, Role::Client, agreed, b"", 1024, 1 << 20),
            WireSocket::new(b, Role::Server, agreed, b"", 1024, 1 << 20),
        )
    }

    const FRAME: &str = r#"{"type":"score","game_id":"0022400196","seq":42,"ts":1733000000000000,"data":{"home":{"team":"BOS","score":101},"away":{"team":"MIL","score":99},"period":4,"clock":"2:31","status":"in_progress"}}"#;

    #[tokio::test]
    async fn a_compressed_stream_round_trips_and_is_smaller_on_the_wire() {
        for agreed in [
            Agreed::default(),
            deflate::accept(["permessage-deflate"], deflate::ServerMode::Shared).unwrap(),
        ] {
            let (mut client, mut server) = pair(Some(agreed));
            for _ in 0..20 {
                server.send(Message::text(FRAME)).await.unwrap();
            }
            for _ in 0..20 {
                let got = client.next().await.unwrap().unwrap();
                assert_eq!(got, Message::text(FRAME));
            }
            let stats = client.stats();
            assert_eq!(stats.inflated, 20);
            assert_eq!(stats.bytes_read, server.stats().bytes_written);
            assert!(
                stats.bytes_read < 20 * FRAME.len() as u64,
                "{agreed:?}: {stats:?}"
            );
            // The client never compresses, and the server reads it.
            client.send(Message::text(FRAME)).await.unwrap();
            assert_eq!(server.next().await.unwrap().unwrap(), Message::text(FRAME));
        }
    }

    #[tokio::test]
    async fn a_precompressed_broadcast_reads_as_the_message() {
        let agreed = deflate::accept(["permessage-deflate"], deflate::ServerMode::Shared).unwrap();
        let (mut client, mut server) = pair(Some(agreed));
        assert!(server.sends_without_context());
        let mut compressed = Vec::new();
        deflate::compress_one(FRAME.as_bytes(), &mut compressed);
        server.feed_precompressed_text(&compressed);
        server.flush().await.unwrap();
        assert_eq!(client.next().await.unwrap().unwrap(), Message::text(FRAME));
    }

    #[tokio::test]
    async fn pings_are_answered_and_close_is_echoed() {
        let (mut client, mut server) = pair(None);
        server
            .send(Message::Ping(Bytes::from_static(b"hi")))
            .await
            .unwrap();
        assert_eq!(
            client.next().await.unwrap().unwrap(),
            Message::Ping(Bytes::from_static(b"hi"))
        );
        // The pong goes out on the client's next read or write.
        client.flush().await.unwrap();
        assert_eq!(
            server.next().await.unwrap().unwrap(),
            Message::Pong(Bytes::from_static(b"hi"))
        );
        server
            .send(Message::Close(Some(CloseFrame {
                code: 4008u16.into(),
                reason: "slow".into(),
            })))
            .await
            .unwrap();
        let Message::Close(Some(frame)) = client.next().await.unwrap().unwrap() else {
            panic!("expected a close");
        };
        assert_eq!(u16::from(frame.code), 4008);
        assert!(client.next().await.is_none());
        let Message::Close(Some(echo)) = server.next().await.unwrap().unwrap() else {
            panic!("expected the echo");
        };
        assert_eq!(u16::from(echo.code), 4008);
    }

    /// A client socket reading raw bytes written by a test "server".
    async fn client_reading(bytes: &[u8], agreed: Option<Agreed>, max: usize) -> Vec<String> {
        let (a, mut b) = duplex(1 << 20);
        b.write_all(bytes).await.unwrap();
        // The "server" stops writing but still reads (the client's pongs).
        b.shutdown().await.unwrap();
        let mut client = WireSocket::new(a, Role::Client, agreed, b"", 1024, max);
        let mut seen = Vec::new();
        while let Some(item) = client.next().await {
            seen.push(match item {
                Ok(m) => format!("ok {m}"),
                Err(e) => format!("err {e}"),
            });
        }
        seen
    }

    #[tokio::test]
    async fn fragments_reassemble_and_hostile_frames_end_the_stream() {
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        // A compressed message in two fragments (RFC 7692 7.2.3.1), with a ping between.
        let mut bytes = vec![0x41, 3];
        bytes.extend_from_slice(&hello[..3]);
        bytes.extend_from_slice(&[0x89, 0]);
        bytes.extend_from_slice(&[0x80, 4]);
        bytes.extend_from_slice(&hello[3..]);
        let seen = client_reading(&bytes, Some(Agreed::default()), 100).await;
        assert_eq!(seen[0], "ok ");
        assert_eq!(seen[1], "ok Hello");
        assert!(seen[2].contains("closing handshake"), "{seen:?}");

        // RSV1 without the extension.
        let seen = client_reading(
            &[0xc1, 7, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
            None,
            100,
        )
        .await;
        assert!(seen[0].contains("Reserved bits"), "{seen:?}");
        assert_eq!(seen.len(), 1);
        // A masked frame from a server.
        let seen = client_reading(&[0x81, 0x81, 1, 2, 3, 4, 5], None, 100).await;
        assert!(seen[0].contains("masked"), "{seen:?}");
        // Over the cap, by header and by inflating.
        let seen = client_reading(&[0x81, 126, 0x10, 0], None, 100).await;
        assert!(seen[0].contains("too long"), "{seen:?}");
        let mut bomb = Vec::new();
        deflate::compress_one(&[b'a'; 5000], &mut bomb);
        let mut bytes = vec![0xc1, bomb.len() as u8];
        bytes.extend_from_slice(&bomb);
        let seen = client_reading(&bytes, Some(Agreed::default()), 100).await;
        assert!(seen[0].contains("too long"), "{seen:?}");
        // Not DEFLATE at all; not UTF-8 text.
        let seen = client_reading(&[0xc1, 3, 0xff, 0xff, 0xff], Some(Agreed::default()), 100).await;
        assert!(seen[0].contains("not valid DEFLATE"), "{seen:?}");
        let seen = client_reading(&[0x81, 2, 0xff, 0xfe], None, 100).await;
        assert!(seen[0].contains("UTF-8"), "{seen:?}");
        // A continuation with nothing to continue.
        let seen = client_reading(&[0x80, 0], None, 100).await;
        assert!(seen[0].contains("Continue frame"), "{seen:?}");
    }

    #[tokio::test]
    async fn reading_is_cancel_safe_across_partial_frames() {
        let (a, mut b) = duplex(1 << 16);
        let mut client = WireSocket::new(a, Role::Client, None, b"", 256, 1 << 20);
        let mut bytes = vec![0x81, 5];
        bytes.extend_from_slice(b"Hello");
        for byte in &bytes[..4] {
            b.write_all(&[*byte]).await.unwrap();
            // A read that is dropped mid-frame loses nothing.
            let poll =
                tokio::time::timeout(std::time::Duration::from_millis(1), client.next()).await;
            assert!(poll.is_err());
        }
        b.write_all(&bytes[4..]).await.unwrap();
        assert_eq!(
            client.next().await.unwrap().unwrap(),
            Message::text("Hello")
        );
        // A masked client write unmasks on the other side.
        client.send(Message::text("back")).await.unwrap();
        let mut raw = [0u8; 10];
        b.read_exact(&mut raw).await.unwrap();
        assert_eq!(raw[1], 0x80 | 4);
        let mut payload = raw[6..].to_vec();
        frame::apply_mask(&mut payload, raw[2..6].try_into().unwrap());
        assert_eq!(payload, b"back");
    }
}
