//! The socket against itself over an in-memory pipe: both roles, with and without
//! compression, and reads that `select!` drops.

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
        let poll = tokio::time::timeout(std::time::Duration::from_millis(1), client.next()).await;
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

/// A server socket whose client end is read as raw bytes.
fn server_over(capacity: usize) -> (WireSocket<DuplexStream>, DuplexStream) {
    let (a, b) = duplex(capacity);
    (
        WireSocket::new(b, Role::Server, None, b"", 1024, 1 << 20),
        a,
    )
}

#[tokio::test]
async fn a_shared_frame_goes_to_every_socket_as_the_same_bytes() {
    let shared = SharedText::new(Utf8Bytes::from(FRAME));
    let mut wires = Vec::new();
    for _ in 0..3 {
        let (mut server, mut raw) = server_over(1 << 16);
        server.feed_shared(&shared, |_| panic!("nothing agreed: never compressed"));
        server.flush().await.unwrap();
        drop(server);
        let mut wire = Vec::new();
        raw.read_to_end(&mut wire).await.unwrap();
        wires.push(wire);
    }
    assert_eq!(wires[0], shared.framed().as_ref());
    assert!(wires.iter().all(|w| *w == wires[0]));
    // And a tungstenite client reads it as the message.
    let (mut server, raw) = server_over(1 << 16);
    server.feed_shared(&shared, |_| None);
    server.flush().await.unwrap();
    let mut client = WireSocket::new(raw, Role::Client, None, b"", 1024, 1 << 20);
    assert_eq!(client.next().await.unwrap().unwrap(), Message::text(FRAME));
}

#[tokio::test]
async fn shared_and_own_frames_arrive_whole_and_in_order_through_a_narrow_pipe() {
    // A pipe of 7 bytes: every frame is split over many partial writes, and the
    // vectored write resumes inside a buffer and across buffers.
    let (server, raw) = server_over(7);
    let mut server = server;
    let mut client = WireSocket::new(raw, Role::Client, None, b"", 1024, 1 << 20);
    let shared: Vec<SharedText> = (0..20)
        .map(|i| SharedText::new(Utf8Bytes::from(format!("{FRAME}{i}"))))
        .collect();
    let writer = async {
        for (i, frame) in shared.iter().enumerate() {
            server.feed_shared(frame, |_| None);
            if i % 3 == 0 {
                server.feed_text(format!("own {i}").as_bytes());
                server
                    .feed(Message::Ping(Bytes::from_static(b"p")))
                    .await
                    .unwrap();
            }
        }
        server.flush().await.unwrap();
        server
    };
    let reader = async {
        let mut got = Vec::new();
        while got.len() < 20 + 2 * 7 {
            got.push(client.next().await.unwrap().unwrap());
        }
        got
    };
    let (_, got) = tokio::join!(writer, reader);
    let mut expected = Vec::new();
    for i in 0..20 {
        expected.push(Message::text(format!("{FRAME}{i}")));
        if i % 3 == 0 {
            expected.push(Message::text(format!("own {i}")));
            expected.push(Message::Ping(Bytes::from_static(b"p")));
        }
    }
    assert_eq!(got, expected);
}

#[tokio::test]
async fn with_deflate_without_context_the_compressed_twin_is_shared() {
    let agreed = deflate::accept(["permessage-deflate"], deflate::ServerMode::Shared).unwrap();
    let shared = SharedText::new(Utf8Bytes::from(FRAME));
    let mut compressions = 0;
    for _ in 0..3 {
        let (a, b) = duplex(1 << 16);
        let mut server = WireSocket::new(b, Role::Server, Some(agreed), b"", 1024, 1 << 20);
        let mut client = WireSocket::new(a, Role::Client, Some(agreed), b"", 1024, 1 << 20);
        server.feed_shared(&shared, |text| {
            compressions += 1;
            let mut out = Vec::new();
            deflate::compress_one(text, &mut out);
            Some(out.into())
        });
        server.flush().await.unwrap();
        assert_eq!(client.next().await.unwrap().unwrap(), Message::text(FRAME));
        assert_eq!(client.stats().inflated, 1);
    }
    assert_eq!(compressions, 1);
}

#[test]
fn broken_rules_name_their_close_codes() {
    use tokio_tungstenite::tungstenite::error::CapacityError;
    let code = |e: Error| close_code_for(&e).map(u16::from);
    assert_eq!(
        code(Error::Protocol(ProtocolError::UnmaskedFrameFromClient)),
        Some(1002)
    );
    assert_eq!(
        code(Error::Protocol(ProtocolError::ResetWithoutClosingHandshake)),
        None
    );
    assert_eq!(
        code(Error::Utf8(
            String::from_utf8(vec![0xff]).unwrap_err().to_string()
        )),
        Some(1007)
    );
    assert_eq!(
        code(Error::Capacity(CapacityError::MessageTooLong {
            size: 2,
            max_size: 1
        })),
        Some(1009)
    );
    let corrupt = std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        InflateError::Corrupt("bad".into()),
    );
    assert_eq!(code(Error::Io(corrupt)), Some(1002));
    assert_eq!(code(Error::Io(std::io::ErrorKind::BrokenPipe.into())), None);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// A server socket reads `bytes` from a client that then goes away; returns what
    /// it made of them: messages, then the error it ended with (if any).
    fn server_reads(bytes: Vec<u8>, agreed: Option<Agreed>) -> (Vec<Message>, Option<Error>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let (mut client, server) = duplex(1 << 16);
            let mut server = WireSocket::new(server, Role::Server, agreed, b"", 256, 4096);
            let writer = tokio::spawn(async move {
                let _ = client.write_all(&bytes).await;
                let _ = client.shutdown().await;
                // Drain what the server answers (pongs, its Close) so it never blocks.
                let mut sink = Vec::new();
                let _ = client.read_to_end(&mut sink).await;
            });
            let mut messages = Vec::new();
            let mut error = None;
            while let Some(next) = server.next().await {
                match next {
                    Ok(message) => messages.push(message),
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
            drop(server);
            writer.await.unwrap();
            (messages, error)
        })
    }

    /// Frames a client might send, some broken: masked or not, any opcode and bits.
    fn client_bytes() -> impl Strategy<Value = Vec<u8>> {
        // Mostly well-formed first bytes (FIN or not, a known opcode), so the reader
        // gets past the first frame into fragments and interleaved control frames;
        // now and then any byte at all, and now and then an unmasked frame.
        let well_formed = (
            any::<bool>(),
            prop::sample::select(vec![0u8, 1, 2, 8, 9, 10]),
        )
            .prop_map(|(fin, opcode)| if fin { 0x80 | opcode } else { opcode });
        let first = prop_oneof![8 => well_formed, 1 => any::<u8>()];
        let masked = prop_oneof![9 => Just(true), 1 => Just(false)];
        let frame = (
            first,
            masked,
            proptest::collection::vec(any::<u8>(), 0..200),
        )
            .prop_map(|(first, masked, payload)| {
                let mut out = Vec::new();
                let mask = masked.then_some([7, 1, 2, 3]);
                let opcode = OpCode::from(first & 0x0f);
                super::frame::write(&mut out, opcode, false, mask, payload.len());
                // Any FIN and RSV bits, as they came.
                out[0] = first;
                let start = out.len();
                out.extend_from_slice(&payload);
                if let Some(key) = mask {
                    super::frame::apply_mask(&mut out[start..], key);
                }
                out
            });
        proptest::collection::vec(frame, 0..6).prop_map(|frames| frames.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Whatever a client sends, the server socket reads messages within the cap
        /// and ends with an error that has a close code, or with the connection
        /// gone; it never panics or hangs.
        #[test]
        fn any_client_bytes_end_in_messages_and_a_named_error(bytes in client_bytes(), deflate: bool) {
            let agreed = deflate.then(Agreed::default);
            let (messages, error) = server_reads(bytes, agreed);
            for message in &messages {
                prop_assert!(message.len() <= 4096);
            }
            if let Some(error) = error {
                let gone = matches!(error, Error::Protocol(ProtocolError::ResetWithoutClosingHandshake));
                prop_assert!(gone || close_code_for(&error).is_some(), "{error:?} has no close code");
            }
        }

        /// Random bytes, not even shaped as frames: the same.
        #[test]
        fn any_bytes_at_all_are_survived(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let (_, error) = server_reads(bytes, None);
            if let Some(error) = error {
                let gone = matches!(error, Error::Protocol(ProtocolError::ResetWithoutClosingHandshake));
                prop_assert!(gone || close_code_for(&error).is_some(), "{error:?} has no close code");
            }
        }
    }
}

#[tokio::test]
async fn a_quiet_peer_costs_no_read_buffer_and_one_that_spoke_gives_it_back() {
    let (mut client, mut server) = pair(None);
    assert_eq!(
        server.read.capacity(),
        0,
        "nothing allocated before any byte"
    );
    // A read that finds nothing (polled once, as select! does) allocates nothing.
    let waker = futures_util::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    assert!(Pin::new(&mut server).poll_next(&mut cx).is_pending());
    assert_eq!(server.read.capacity(), 0);
    // Messages of every size arrive whole, from the stack or the heap...
    for len in [10, 511, 512, 513, 5_000] {
        let text = "x".repeat(len);
        client.send(Message::text(text.clone())).await.unwrap();
        assert_eq!(server.next().await.unwrap().unwrap(), Message::text(text));
        // ...and with nothing left to read the buffer is given back.
        assert_eq!(server.read.capacity(), 0, "after a {len}-byte message");
    }
    // Two messages in one read: the second is kept until it is taken.
    client.feed(Message::text("one")).await.unwrap();
    client.feed(Message::text("two")).await.unwrap();
    client.flush().await.unwrap();
    assert_eq!(server.next().await.unwrap().unwrap(), Message::text("one"));
    assert_eq!(server.next().await.unwrap().unwrap(), Message::text("two"));
    assert_eq!(server.read.capacity(), 0);
}

#[tokio::test]
async fn a_lent_socket_holds_its_pong_and_takes_back_the_rest_of_a_frame_first() {
    let (mut client, mut server) = pair(None);
    server.hold_output();
    client
        .send(Message::Ping(Bytes::from_static(b"hi")))
        .await
        .unwrap();
    // Read while lent: the ping is seen, its pong waits.
    assert_eq!(
        server.next().await.unwrap().unwrap(),
        Message::Ping(Bytes::from_static(b"hi"))
    );
    assert!(server.output_held() && server.has_output());
    // The other writer got half a frame out; the rest comes back to go first.
    let framed = super::super::shared::SharedText::new(FRAME.into());
    let (sent, rest) = framed.framed().split_at(10);
    server.get_mut_for_tests().write_all(sent).await.unwrap();
    server.resume_output(vec![Bytes::copy_from_slice(rest)]);
    assert!(!server.output_held());
    server.flush().await.unwrap();
    assert_eq!(client.next().await.unwrap().unwrap(), Message::text(FRAME));
    assert_eq!(
        client.next().await.unwrap().unwrap(),
        Message::Pong(Bytes::from_static(b"hi"))
    );
}
