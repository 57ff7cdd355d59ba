//! Tiny WebSocket servers with one behaviour each, for checking what `load` measures.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use super::now_micros;

#[derive(Clone, Copy, Debug)]
pub enum Behaviour {
    /// Every frame is written `delay` after its `ts` was taken.
    Delayed { delay: Duration, every: Duration },
    /// Answers pings at once, except that after the `after`-th ping it stops for `stall`.
    StallOnce { after: u64, stall: Duration },
    /// Sends frames, then closes every connection with `code` after `after`.
    CloseAfter { after: Duration, code: u16 },
    /// A snapshot, then `binary` frames every `every` (MessagePack-like bytes, or
    /// JSON when `json`), with a JSON update every tenth.
    Binary { every: Duration, json: bool },
    /// Engine.IO's open packet, then socket.io events (`42["tick",{...}]`) every `every`.
    SocketIoLike { every: Duration },
    /// Takes the handshake and closes at once, without a frame (a broker refusing by
    /// closing).
    AcceptThenClose,
    /// Sends a snapshot, then drops the TCP connection after `after` without a close
    /// frame.
    Vanish { after: Duration },
    /// Frames with `seq` and `ts` every `every`, encoded as MessagePack (else CBOR) in
    /// binary frames.
    Encoded { every: Duration, msgpack: bool },
}

/// Starts the server; it runs until the test's runtime ends.
pub async fn start(behaviour: Behaviour) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                serve(ws, behaviour).await;
            });
        }
    });
    addr
}

fn frame(kind: &str, seq: u64, ts: i64, extra: &str) -> Message {
    Message::Text(
        format!(r#"{{"type":"{kind}","game_id":"fake","seq":{seq},"ts":{ts}{extra}}}"#).into(),
    )
}

async fn serve(
    mut ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    behaviour: Behaviour,
) {
    match behaviour {
        Behaviour::Delayed { delay, every } => {
            let _ = ws.send(frame("snapshot", 0, now_micros(), "")).await;
            for seq in 1.. {
                let ts = now_micros();
                tokio::time::sleep(delay).await;
                if ws.send(frame("update", seq, ts, "")).await.is_err() {
                    return;
                }
                tokio::time::sleep(every.saturating_sub(delay)).await;
            }
        }
        Behaviour::StallOnce { after, stall } => {
            let _ = ws.send(frame("snapshot", 0, now_micros(), "")).await;
            let mut pings = 0;
            while let Some(Ok(msg)) = ws.next().await {
                let Message::Text(text) = msg else { continue };
                let v: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
                pings += 1;
                if pings == after {
                    tokio::time::sleep(stall).await;
                }
                let extra = format!(r#","id":{}"#, v["id"]);
                if ws
                    .send(frame("pong", 0, now_micros(), &extra))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
        Behaviour::Binary { every, json } => {
            let _ = ws.send(frame("snapshot", 0, now_micros(), "")).await;
            for n in 1u64.. {
                tokio::time::sleep(every).await;
                let message = if n % 10 == 0 {
                    frame("update", n / 10, now_micros(), "")
                } else if json {
                    let body = format!(r#"{{"type":"tick","seq":{n},"ts":{}}}"#, now_micros());
                    Message::Binary(body.into_bytes().into())
                } else {
                    Message::Binary(
                        vec![0x82, 0xa1, b'n', 0xcd, (n >> 8) as u8, n as u8, 0xff].into(),
                    )
                };
                if ws.send(message).await.is_err() {
                    return;
                }
            }
        }
        Behaviour::SocketIoLike { every } => {
            let open = r#"0{"sid":"lg","upgrades":[],"pingInterval":25000,"pingTimeout":20000}"#;
            let _ = ws.send(Message::Text(open.into())).await;
            for n in 1u64.. {
                tokio::time::sleep(every).await;
                let event = format!(r#"42["tick",{{"n":{n}}}]"#);
                if ws.send(Message::Text(event.into())).await.is_err() {
                    return;
                }
            }
        }
        Behaviour::AcceptThenClose => {
            let _ = ws.close(None).await;
        }
        Behaviour::Encoded { every, msgpack } => {
            for seq in 1u64.. {
                tokio::time::sleep(every).await;
                let frame = serde_json::json!({"type": "update", "seq": seq, "ts": now_micros(),
                    "data": {"score": [seq % 7, 3]}});
                let bytes = if msgpack {
                    rmp_serde::to_vec(&frame).unwrap()
                } else {
                    let mut out = Vec::new();
                    ciborium::into_writer(&frame, &mut out).unwrap();
                    out
                };
                if ws.send(Message::Binary(bytes.into())).await.is_err() {
                    return;
                }
            }
        }
        Behaviour::Vanish { after } => {
            let _ = ws.send(frame("snapshot", 0, now_micros(), "")).await;
            tokio::time::sleep(after).await;
            drop(ws);
        }
        Behaviour::CloseAfter { after, code } => {
            let _ = ws.send(frame("snapshot", 0, now_micros(), "")).await;
            tokio::time::sleep(after).await;
            let _ = ws
                .send(Message::Close(Some(CloseFrame {
                    code: code.into(),
                    reason: "test".into(),
                })))
                .await;
        }
    }
}

/// A server that restarts behind a proxy: connections taken before `after` get frames,
/// then are closed with 1001 at `after`; for `down_for` every handshake is answered
/// 502 (the proxy, its backend away); then connections are taken again and held.
pub async fn start_restarting(after: Duration, down_for: Duration) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let started = tokio::time::Instant::now();
    let (down, up) = (started + after, started + after + down_for);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let now = tokio::time::Instant::now();
                if now >= down && now < up {
                    let mut head = [0u8; 2048];
                    let _ = stream.read(&mut head).await;
                    let answer = "HTTP/1.1 502 Bad Gateway\r\ncontent-length: 11\r\nconnection: close\r\n\r\nBad Gateway";
                    let _ = stream.write_all(answer.as_bytes()).await;
                    return;
                }
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                let _ = ws.send(frame("snapshot", 0, now_micros(), "")).await;
                for seq in 1u64.. {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if tokio::time::Instant::now() >= down && now < down {
                        let close = CloseFrame {
                            code: 1001u16.into(),
                            reason: "restart".into(),
                        };
                        let _ = ws.send(Message::Close(Some(close))).await;
                        return;
                    }
                    if ws
                        .send(frame("update", seq, now_micros(), ""))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// An HTTP server that answers every upgrade with `status` and `body` (nginx refusing
/// a request that lost its Upgrade header, a 404 at the bare host).
pub async fn start_refusing(status: &'static str, body: &'static str) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = [0u8; 4096];
                let _ = stream.read(&mut head).await;
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    addr
}

/// What a socket.io-like server saw of its clients.
#[derive(Clone, Default)]
pub struct SocketIoSeen {
    /// Namespace connects (`40...`), as sent.
    pub connects: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// Events the clients emitted (`42[...]`), as sent.
    pub emits: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// Pongs (`3`) answering the server's pings.
    pub pongs: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// The path and query of each handshake.
    pub paths: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// An Engine.IO v4 / socket.io server at `/socket.io/`: the open packet, then, once a
/// client connects to the namespace, a `tick` event every `every` (with `seq` and a
/// microsecond `ts`), a `chat` event between them (not measured when the run filters
/// on `tick`), and a ping every 200 ms that a client must answer.
pub async fn start_socket_io(every: Duration) -> (SocketAddr, SocketIoSeen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = SocketIoSeen::default();
    let shared = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = shared.clone();
            tokio::spawn(async move {
                let paths = seen.paths.clone();
                // tungstenite's callback type fixes the error type.
                #[allow(clippy::result_large_err)]
                let record_path =
                    move |request: &tokio_tungstenite::tungstenite::handshake::server::Request,
                          response| {
                        paths.lock().unwrap().push(request.uri().to_string());
                        Ok(response)
                    };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, record_path).await
                else {
                    return;
                };
                let open = r#"0{"sid":"lg","upgrades":[],"pingInterval":200,"pingTimeout":1000,"maxPayload":1000000}"#;
                if ws.send(Message::Text(open.into())).await.is_err() {
                    return;
                }
                let mut connected = false;
                let mut seq = 0u64;
                let mut ticks = tokio::time::interval(every);
                let mut pings = tokio::time::interval(Duration::from_millis(200));
                loop {
                    tokio::select! {
                        incoming = ws.next() => {
                            let text = match incoming {
                                Some(Ok(Message::Text(text))) => text,
                                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                                // Protocol pings (tungstenite answers them) and the rest.
                                Some(Ok(_)) => continue,
                            };
                            let text = text.as_str();
                            if text.starts_with("40") {
                                seen.connects.lock().unwrap().push(text.to_owned());
                                connected = true;
                                if ws.send(Message::Text(r#"40{"sid":"ns"}"#.into())).await.is_err() {
                                    return;
                                }
                            } else if text.starts_with("42") {
                                seen.emits.lock().unwrap().push(text.to_owned());
                            } else if text == "3" {
                                seen.pongs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                        }
                        _ = ticks.tick(), if connected => {
                            seq += 1;
                            let tick = format!(r#"42["tick",{{"seq":{seq},"ts":{}}}]"#, now_micros());
                            let chat = r#"42["chat",{"text":"hi"}]"#;
                            if ws.send(Message::Text(tick.into())).await.is_err()
                                || ws.send(Message::Text(chat.into())).await.is_err()
                            {
                                return;
                            }
                        }
                        _ = pings.tick() => {
                            if ws.send(Message::Text("2".into())).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// What a connect-then-subscribe server (Centrifugo's protocol, in JSON) saw.
#[derive(Clone, Default)]
pub struct SessionSeen {
    /// Clients that connected, subscribed and got publications.
    pub subscribed: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Answers to the server's pings.
    pub pongs: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// A server that wants `{"id":1,"connect":{...}}` first (answered with the client's
/// id), then `{"id":2,"subscribe":{"channel":...}}` (answered), and only then pushes
/// publications (`/push/pub/data/seq` and `.../ts`) every `every`, with a
/// `{"type":"ping"}` every 200 ms that wants `{"type":"pong"}`. A client that sends
/// anything out of order is closed with 3501 (Centrifugo's "bad request").
pub async fn start_connect_then_subscribe(every: Duration) -> (SocketAddr, SessionSeen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = SessionSeen::default();
    let shared = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = shared.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                let bad = CloseFrame {
                    code: 3501u16.into(),
                    reason: "bad request".into(),
                };
                let mut step = 0;
                let mut seq = 0u64;
                let mut pushes = tokio::time::interval(every);
                let mut pings = tokio::time::interval(Duration::from_millis(200));
                loop {
                    tokio::select! {
                        incoming = ws.next() => {
                            let text = match incoming {
                                Some(Ok(Message::Text(text))) => text,
                                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                                Some(Ok(_)) => continue,
                            };
                            let v: serde_json::Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                            let answer = match step {
                                0 if v["id"] == 1 && v["connect"].is_object() => r#"{"id":1,"connect":{"client":"c1"}}"#,
                                1 if v["id"] == 2 && v["subscribe"]["channel"].is_string() => r#"{"id":2,"subscribe":{}}"#,
                                2 if v["type"] == "pong" => {
                                    seen.pongs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                    continue;
                                }
                                _ => {
                                    let _ = ws.send(Message::Close(Some(bad.clone()))).await;
                                    return;
                                }
                            };
                            step += 1;
                            if step == 2 {
                                seen.subscribed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            if ws.send(Message::Text(answer.into())).await.is_err() {
                                return;
                            }
                        }
                        _ = pushes.tick(), if step == 2 => {
                            seq += 1;
                            let push = format!(r#"{{"push":{{"channel":"games:g1","pub":{{"data":{{"seq":{seq},"ts":{}}}}}}}}}"#, now_micros());
                            if ws.send(Message::Text(push.into())).await.is_err() {
                                return;
                            }
                        }
                        _ = pings.tick(), if step == 2 => {
                            if ws.send(Message::Text(r#"{"type":"ping"}"#.into())).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// A STOMP 1.2 broker over WebSocket, as RabbitMQ's Web-STOMP speaks it: picks the
/// `v12.stomp` subprotocol when offered, wants `CONNECT` (or `STOMP`) first, answered
/// `CONNECTED` (heart-beats from the server every 300 ms), then `SUBSCRIBE` with an
/// `id` and a `destination` (a `receipt` header gets its `RECEIPT`), and only then
/// sends `MESSAGE` frames whose JSON body has `seq` and `ts`. A frame out of order
/// gets an `ERROR` frame and the connection closed. `subscribed` counts clients that
/// got that far.
pub async fn start_stomp(every: Duration) -> (SocketAddr, SessionSeen) {
    use livegames::load::session::stomp::{self, Stomp};
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = SessionSeen::default();
    let shared = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = shared.clone();
            tokio::spawn(async move {
                // tungstenite's callback type fixes the error type.
                #[allow(clippy::result_large_err)]
                let pick = |request: &Request, mut response: Response| {
                    let offered = request
                        .headers()
                        .get("sec-websocket-protocol")
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.split(',').any(|p| p.trim() == "v12.stomp"));
                    if offered {
                        response
                            .headers_mut()
                            .insert("sec-websocket-protocol", "v12.stomp".parse().unwrap());
                    }
                    Ok(response)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, pick).await else {
                    return;
                };
                let mut subscription: Option<(String, String)> = None;
                let mut connected = false;
                let mut seq = 0u64;
                let mut messages = tokio::time::interval(every);
                let mut beats = tokio::time::interval(Duration::from_millis(300));
                loop {
                    tokio::select! {
                        incoming = ws.next() => {
                            let bytes = match incoming {
                                Some(Ok(Message::Text(text))) => text.as_bytes().to_vec(),
                                Some(Ok(Message::Binary(bytes))) => bytes.to_vec(),
                                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                                Some(Ok(_)) => continue,
                            };
                            let frame = match stomp::read(&bytes) {
                                Some(Stomp::Frame(frame)) => frame,
                                Some(Stomp::HeartBeat) => continue,
                                None => serde_json::Value::Null,
                            };
                            let header = |name: &str| frame["headers"][name].as_str().map(str::to_owned);
                            let answer = match (frame["command"].as_str(), connected, &subscription) {
                                (Some("CONNECT" | "STOMP"), false, _)
                                    if header("accept-version").is_some_and(|v| v.split(',').any(|v| v == "1.2")) =>
                                {
                                    connected = true;
                                    "CONNECTED\nversion:1.2\nheart-beat:300,0\nserver:fake-stomp/1.0\n\n\0".to_owned()
                                }
                                (Some("SUBSCRIBE"), true, None) => match (header("id"), header("destination")) {
                                    (Some(id), Some(destination)) => {
                                        subscription = Some((id, destination));
                                        seen.subscribed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                        match header("receipt") {
                                            Some(receipt) => format!("RECEIPT\nreceipt-id:{receipt}\n\n\0"),
                                            None => continue,
                                        }
                                    }
                                    _ => "ERROR\nmessage:SUBSCRIBE needs id and destination\n\n\0".to_owned(),
                                },
                                (Some("DISCONNECT"), _, _) => return,
                                _ => "ERROR\nmessage:unexpected frame\n\n\0".to_owned(),
                            };
                            let failed = answer.starts_with("ERROR");
                            if ws.send(Message::Text(answer.into())).await.is_err() || failed {
                                let _ = ws.close(None).await;
                                return;
                            }
                        }
                        _ = messages.tick(), if subscription.is_some() => {
                            seq += 1;
                            let (id, destination) = subscription.clone().unwrap_or_default();
                            let message = format!(
                                "MESSAGE\ndestination:{destination}\nsubscription:{id}\nmessage-id:{seq}\ncontent-type:application/json\n\n{{\"seq\":{seq},\"ts\":{}}}\0",
                                now_micros()
                            );
                            if ws.send(Message::Text(message.into())).await.is_err() {
                                return;
                            }
                        }
                        _ = beats.tick(), if connected => {
                            if ws.send(Message::Text("\n".into())).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (addr, seen)
}
