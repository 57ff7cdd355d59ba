//! A text message framed once for every socket that sends it: a server's frames are
//! not masked, so the same bytes go to each client, and a broadcast costs one
//! serialization and one framing however many clients it reaches. Its compressed
//! twin (permessage-deflate without context takeover) is likewise made once, by the
//! first socket that needs it.

use std::sync::{Arc, OnceLock};

use bytes::{BufMut, Bytes, BytesMut};
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

use super::frame;

/// A server's text message: its text, the whole frame on the wire, and the
/// compressed frame once some socket asked for it. Cloning shares all three.
#[derive(Debug, Clone)]
pub struct SharedText(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    text: Utf8Bytes,
    framed: Bytes,
    /// None inside when compressing does not make the message shorter.
    deflated: OnceLock<Option<Bytes>>,
}

impl SharedText {
    pub fn new(text: Utf8Bytes) -> Self {
        let framed = frame_of(OpCode::Data(Data::Text), false, text.as_bytes());
        Self(Arc::new(Inner {
            text,
            framed,
            deflated: OnceLock::new(),
        }))
    }

    pub fn text(&self) -> &Utf8Bytes {
        &self.0.text
    }

    /// The frame as it goes on the wire: header and payload.
    pub fn framed(&self) -> &Bytes {
        &self.0.framed
    }

    /// The compressed frame (RSV1 set), made by `compress` on the first call; None
    /// when `compress` found compressing does not pay.
    pub fn deflated(&self, compress: impl FnOnce(&[u8]) -> Option<Bytes>) -> Option<&Bytes> {
        self.0
            .deflated
            .get_or_init(|| {
                let compressed = compress(self.0.text.as_bytes())?;
                Some(frame_of(OpCode::Data(Data::Text), true, &compressed))
            })
            .as_ref()
    }
}

/// One unmasked final frame carrying `payload`.
fn frame_of(opcode: OpCode, rsv1: bool, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(frame::header_len(false, payload.len()) + payload.len());
    frame::write(&mut out, opcode, rsv1, None, payload.len());
    out.put_slice(payload);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketContext};

    /// What tungstenite, as a server, puts on the wire for one text message.
    fn tungstenite_frame(text: &str) -> Vec<u8> {
        // tungstenite's streams read and write; a cursor over a Vec does both.
        let mut wire = std::io::Cursor::new(Vec::new());
        let mut context = WebSocketContext::new(Role::Server, None);
        context
            .write(&mut wire, Message::text(text))
            .expect("written to a Vec");
        context.flush(&mut wire).expect("flushed to a Vec");
        wire.into_inner()
    }

    #[test]
    fn the_frame_is_byte_for_byte_what_tungstenite_sends() {
        for len in [0, 1, 125, 126, 400, 65_535, 65_536, 200_000] {
            let text = "é".repeat(len / 2) + &"x".repeat(len % 2);
            let shared = SharedText::new(Utf8Bytes::from(text.clone()));
            assert_eq!(
                shared.framed().as_ref(),
                tungstenite_frame(&text),
                "len {len}"
            );
            assert_eq!(shared.text().as_str(), text);
        }
    }

    #[test]
    fn the_compressed_twin_is_made_once() {
        let shared = SharedText::new(Utf8Bytes::from("a".repeat(500)));
        let mut calls = 0;
        let mut compress = |text: &[u8]| {
            calls += 1;
            let mut out = Vec::new();
            super::super::deflate::compress_one(text, &mut out);
            Some(Bytes::from(out))
        };
        let first = shared.deflated(&mut compress).cloned().unwrap();
        let again = shared.clone().deflated(&mut compress).cloned().unwrap();
        assert_eq!(calls, 1);
        assert_eq!(first, again);
        assert_eq!(first[0], 0xc1, "final text frame with RSV1");
        assert!(first.len() < shared.framed().len());
    }

    #[test]
    fn a_message_that_does_not_shrink_is_not_compressed() {
        let shared = SharedText::new(Utf8Bytes::from("x"));
        assert!(shared.deflated(|_| None).is_none());
        assert!(shared.deflated(|_| panic!("asked once only")).is_none());
    }
}
