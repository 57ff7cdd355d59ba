//! A WebSocket on the frame layer: every connection serve accepts, and clients that
//! agreed permessage-deflate (tungstenite fails any frame with RSV1 set). Messages
//! are reassembled from fragments and inflated under a cap, every protocol rule a
//! peer can break is an error that names the close code it deserves, pings are
//! answered, the close handshake echoed, and what crossed the wire counted. It reads
//! and writes tungstenite's `Message`, so code above it does not care which socket
//! it holds.
//!
//! Output is a queue of byte buffers written with vectored writes: a frame framed
//! once for many sockets ([`SharedText`]) is queued by reference, never copied.
//! Every buffered byte lives in the socket, never in a future, so reading is
//! cancel-safe (a `select!` may drop `next()` at any await).

use std::collections::VecDeque;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::error::{CapacityError, Error, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::deflate::{self, Agreed, Deflater, InflateError, Inflater};
use super::frame;
use super::shared::SharedText;

/// Which end of the connection this socket is: clients mask what they send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

/// Messages shorter than this go out uncompressed: DEFLATE's block overhead would
/// make them longer.
const COMPRESS_FROM: usize = 32;

/// Most bytes read at once by a socket with nothing buffered (on the stack).
const IDLE_READ: usize = 512;

/// Buffered output beyond which a send waits for the socket.
const WRITE_HIGH_WATER: usize = 64 * 1024;

/// Most buffers handed to one vectored write (Linux takes up to 1,024).
const MAX_IO_SLICES: usize = 64;

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
    /// Frames this socket made itself (replies, masked frames), not yet queued.
    scratch: BytesMut,
    /// Buffers waiting to be written, in order; the first from `written` on.
    out: VecDeque<Bytes>,
    written: usize,
    /// Bytes in `out` not yet written.
    queued: usize,
    /// Another writer has the socket: what this one queues waits (see
    /// [`WireSocket::hold_output`]).
    output_held: bool,
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
        // No buffer until bytes arrive: most clients send nothing after the handshake.
        let read = BytesMut::from(already_read);
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
            scratch: BytesMut::new(),
            out: VecDeque::new(),
            written: 0,
            queued: 0,
            output_held: false,
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

    /// Queues a message framed once for every socket (a server's frames are not
    /// masked, so one copy of the bytes serves all): the frame itself when nothing
    /// was agreed, its compressed twin when each message is compressed on its own,
    /// and a compression of its text on a socket that keeps its context. `compress`
    /// makes the twin for the first socket that needs it.
    pub fn feed_shared(
        &mut self,
        text: &SharedText,
        compress: impl FnOnce(&[u8]) -> Option<Bytes>,
    ) {
        debug_assert_eq!(self.role, Role::Server, "clients mask every frame");
        if self.deflate.is_none() {
            return self.queue_bytes(text.framed().clone());
        }
        if !self.sends_without_context() {
            return self.queue_data(OpCode::Data(Data::Text), text.text().as_bytes());
        }
        match text.deflated(compress) {
            Some(framed) => self.queue_bytes(framed.clone()),
            None => self.queue_bytes(text.framed().clone()),
        }
    }

    /// The connection underneath.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// The connection underneath, to write past the socket as another writer does.
    #[cfg(test)]
    fn get_mut_for_tests(&mut self) -> &mut S {
        &mut self.io
    }

    /// Lends the socket's sending side to another writer: replies a read queues
    /// (pongs, the Close echo) wait until [`WireSocket::resume_output`]. Reads go on.
    pub fn hold_output(&mut self) {
        debug_assert!(!self.has_output(), "lent with output queued");
        self.output_held = true;
    }

    /// Whether the sending side is lent to another writer.
    pub fn output_held(&self) -> bool {
        self.output_held
    }

    /// Takes the sending side back; `unsent`, what the other writer could not write,
    /// goes out first, ahead of anything queued meanwhile.
    pub fn resume_output(&mut self, unsent: Vec<Bytes>) {
        self.output_held = false;
        self.seal_scratch();
        // Nothing was written while lent, so the queue's front is whole.
        debug_assert_eq!(self.written, 0);
        for bytes in unsent.into_iter().rev() {
            self.queued += bytes.len();
            self.out.push_front(bytes);
        }
    }

    /// Whether the queued output is past the point where a sender should wait.
    pub fn over_high_water(&self) -> bool {
        self.queued + self.scratch.len() > WRITE_HIGH_WATER
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

    /// Frames a message into the scratch buffer, where consecutive frames this socket
    /// makes share one buffer (and one slot of the vectored write).
    fn queue_frame(&mut self, opcode: OpCode, rsv1: bool, payload: &[u8]) {
        let mask = (self.role == Role::Client).then(rand::random::<[u8; 4]>);
        self.scratch
            .reserve(frame::header_len(mask.is_some(), payload.len()) + payload.len());
        frame::write(&mut self.scratch, opcode, rsv1, mask, payload.len());
        let start = self.scratch.len();
        self.scratch.extend_from_slice(payload);
        if let Some(key) = mask {
            frame::apply_mask(&mut self.scratch[start..], key);
        }
    }

    /// Queues bytes made elsewhere, after whatever this socket framed before them.
    fn queue_bytes(&mut self, bytes: Bytes) {
        self.seal_scratch();
        self.queued += bytes.len();
        self.out.push_back(bytes);
    }

    /// Moves the frames in the scratch buffer to the output queue.
    fn seal_scratch(&mut self) {
        if !self.scratch.is_empty() {
            let made = self.scratch.split().freeze();
            self.queued += made.len();
            self.out.push_back(made);
        }
    }

    /// Writes what is queued, as many buffers per system call as it takes, then
    /// flushes the stream.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.seal_scratch();
        while self.queued > 0 {
            let mut slices = [IoSlice::new(&[]); MAX_IO_SLICES];
            let mut count = 0;
            for (i, buffer) in self.out.iter().take(MAX_IO_SLICES).enumerate() {
                let from = if i == 0 { self.written } else { 0 };
                slices[i] = IoSlice::new(&buffer[from..]);
                count += 1;
            }
            let n = ready!(Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..count]))?;
            if n == 0 {
                return Poll::Ready(Err(Error::Io(std::io::ErrorKind::WriteZero.into())));
            }
            self.advance(n);
            self.stats.bytes_written += n as u64;
        }
        Pin::new(&mut self.io).poll_flush(cx).map_err(Error::Io)
    }

    /// Drops `n` written bytes off the front of the queue.
    fn advance(&mut self, mut n: usize) {
        self.queued -= n;
        while n > 0 {
            let Some(front) = self.out.front() else {
                break;
            };
            let left = front.len() - self.written;
            if n < left {
                self.written += n;
                return;
            }
            n -= left;
            self.written = 0;
            self.out.pop_front();
        }
    }

    /// Whether anything waits to be written.
    pub fn has_output(&self) -> bool {
        self.queued > 0 || !self.scratch.is_empty()
    }

    fn poll_read_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        if self.finished {
            return Poll::Ready(None);
        }
        loop {
            // Pongs and close replies queued by earlier reads go out as soon as they
            // can, unless another writer has the socket.
            if !self.output_held
                && self.has_output()
                && let Poll::Ready(Err(e)) = self.poll_write_out(cx)
            {
                return self.finish(Err(e));
            }
            if self.close_received && self.close_sent {
                return self.finish_quietly();
            }
            match self.take_frame() {
                Err(e) => return self.finish(Err(e)),
                Ok(Some(message)) => {
                    self.release_read_buffer();
                    return Poll::Ready(Some(Ok(message)));
                }
                Ok(None) => {}
            }
            let read = if self.read.is_empty() {
                ready!(self.poll_read_idle(cx))
            } else {
                self.read.reserve(self.read_chunk);
                ready!(tokio_util::io::poll_read_buf(
                    Pin::new(&mut self.io),
                    cx,
                    &mut self.read
                ))
            };
            let n = match read {
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

    /// Reads with nothing buffered: into the stack, so a socket whose peer is quiet
    /// (most of a server's clients, most of the time) holds no read buffer; the
    /// bytes move to the heap only when some arrive.
    fn poll_read_idle(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        // Uninitialised: this runs on every wake-up of every quiet client.
        let mut stack = [std::mem::MaybeUninit::<u8>::uninit(); IDLE_READ];
        let mut buf = ReadBuf::uninit(&mut stack);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf))?;
        self.read.extend_from_slice(buf.filled());
        Poll::Ready(Ok(buf.filled().len()))
    }

    /// Gives the read buffer back once everything in it was taken: it is allocated
    /// again by the next bytes that arrive.
    fn release_read_buffer(&mut self) {
        if self.read.is_empty() && self.read.capacity() > 0 {
            self.read = BytesMut::new();
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
                // A code no endpoint may send (RFC 6455 7.4): 1005, 1006, 1015,
                // unassigned ones, or out of range.
                if !CloseCode::from(code).is_allowed() {
                    return Err(Error::Protocol(ProtocolError::InvalidCloseSequence));
                }
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

/// The close code a read error calls for (RFC 6455 7.4.1): 1002 for a broken rule
/// of the protocol or of permessage-deflate, 1007 for text that is not UTF-8, 1009
/// for a message over the cap; None when the connection itself failed and no Close
/// can be sent.
pub fn close_code_for(error: &Error) -> Option<CloseCode> {
    match error {
        Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        Error::Protocol(_) => Some(CloseCode::Protocol),
        Error::Utf8(_) => Some(CloseCode::Invalid),
        Error::Capacity(_) => Some(CloseCode::Size),
        Error::Io(e) if e.get_ref().is_some_and(|inner| inner.is::<InflateError>()) => {
            Some(CloseCode::Protocol)
        }
        _ => None,
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
        if this.over_high_water() {
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
mod tests;
