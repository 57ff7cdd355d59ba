//! The client's WebSocket upgrade done by hand, for connections that offer
//! permessage-deflate: TCP, TLS, the HTTP/1.1 upgrade with the offer, and the
//! answer checked (status, accept key, subprotocol, extension) before the frame-layer
//! socket takes over, with any bytes that came after the answer's head.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use url::Url;

use super::socket::{ConnectError, Connected, Socket, what_the_refusal_said};
use super::target::ConnectOptions;
use crate::wire::{Offer, Role, WireSocket, deflate};

/// The longest answer head read: far above any real server's.
const MAX_HEAD: usize = 16 * 1024;
/// Headers in an answer, at most.
const MAX_HEADERS: usize = 64;
/// Bytes of a refusal's body read for its error.
const MAX_REFUSAL_BODY: usize = 2048;

/// Connects with `request` (the upgrade tungstenite would send) plus our offer, and
/// reads the answer. The caller bounds the whole of it with the connect timeout.
pub async fn connect(
    url: &Url,
    request: Request,
    options: &ConnectOptions,
) -> Result<Connected, ConnectError> {
    let started = Instant::now();
    let mut stream = open_stream(url, options).await?;
    let offer = options.compress;
    let (head, key) = request_head(&request, offer)?;
    stream.write_all(head.as_bytes()).await.map_err(io)?;
    let (answer, after) = read_answer_head(&mut stream).await?;
    let parsed = parse_answer(&answer)?;
    if parsed.status != 101 {
        let body = refusal_body(&mut stream, &answer, &parsed).await;
        let said = what_the_refusal_said(
            parsed.status,
            parsed.header("content-type"),
            Some(&body),
            url,
        );
        return Err(ConnectError::Handshake {
            status: parsed.status,
            said,
        });
    }
    if parsed.header("sec-websocket-accept") != Some(derive_accept_key(key.as_bytes()).as_str()) {
        return Err(ConnectError::Io(
            "the server's Sec-WebSocket-Accept does not answer our key".into(),
        ));
    }
    let subprotocol = picked_subprotocol(&parsed, &options.subprotocols)?;
    let extensions = parsed.all("sec-websocket-extensions").join(", ");
    let agreed = deflate::read_answer(&extensions, offer).map_err(ConnectError::Extension)?;
    let max_message = options
        .max_message
        .unwrap_or(super::target::DEFAULT_MAX_MESSAGE);
    let socket = WireSocket::new(
        stream,
        Role::Client,
        agreed,
        &answer[after..],
        options.read_buffer,
        max_message,
    );
    Ok(Connected {
        socket: Socket::Deflate(socket),
        connect_time: started.elapsed(),
        subprotocol,
    })
}

fn io(e: std::io::Error) -> ConnectError {
    if let Some((kind, reason)) = super::tls::failure(&e) {
        return ConnectError::Tls { kind, reason };
    }
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => ConnectError::Refused,
        _ => ConnectError::Io(e.to_string()),
    }
}

async fn open_stream(
    url: &Url,
    options: &ConnectOptions,
) -> Result<MaybeTlsStream<TcpStream>, ConnectError> {
    let host = url
        .host_str()
        .ok_or_else(|| ConnectError::Url(format!("{url} has no host")))?;
    let tls = match url.scheme() {
        "ws" => false,
        "wss" => true,
        other => return Err(ConnectError::Url(format!("unsupported scheme {other:?}"))),
    };
    let port = url
        .port_or_known_default()
        .unwrap_or(if tls { 443 } else { 80 });
    // A bracketed IPv6 literal connects without its brackets.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let tcp = match TcpStream::connect((bare, port)).await {
        Ok(tcp) => tcp,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Err(ConnectError::Refused);
        }
        Err(e) if tokio::net::lookup_host((bare, port)).await.is_err() => {
            return Err(ConnectError::Dns(e.to_string()));
        }
        Err(e) => return Err(ConnectError::Io(e.to_string())),
    };
    let _ = tcp.set_nodelay(true);
    if !tls {
        return Ok(MaybeTlsStream::Plain(tcp));
    }
    let config = match &options.tls {
        Some(config) => config.clone(),
        None => super::tls::client_config(None, false).map_err(|e| ConnectError::Tls {
            kind: "setup",
            reason: e.to_string(),
        })?,
    };
    let name = rustls::pki_types::ServerName::try_from(bare.to_owned())
        .map_err(|e| ConnectError::Url(format!("{host} is not a TLS server name: {e}")))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(&config));
    let stream = connector.connect(name, tcp).await.map_err(io)?;
    Ok(MaybeTlsStream::Rustls(stream))
}

/// The request's head as bytes on the wire, and its key.
fn request_head(request: &Request, offer: Offer) -> Result<(String, String), ConnectError> {
    let uri = request.uri();
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut head = format!("GET {target} HTTP/1.1\r\n");
    let mut key = None;
    for (name, value) in request.headers() {
        let value = value
            .to_str()
            .map_err(|_| ConnectError::Url(format!("header {name} is not text")))?;
        if name == "sec-websocket-key" {
            key = Some(value.to_owned());
        }
        let _ = write!(head, "{name}: {value}\r\n");
    }
    if let Some(extensions) = offer.header() {
        let _ = write!(head, "sec-websocket-extensions: {extensions}\r\n");
    }
    head.push_str("\r\n");
    let key = key.ok_or_else(|| ConnectError::Url("the request has no key".into()))?;
    Ok((head, key))
}

/// Reads until the end of the answer's head: the bytes read, and where the head ends.
async fn read_answer_head(
    stream: &mut MaybeTlsStream<TcpStream>,
) -> Result<(Vec<u8>, usize), ConnectError> {
    let mut answer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = find_head_end(&answer) {
            return Ok((answer, end));
        }
        if answer.len() > MAX_HEAD {
            return Err(ConnectError::Io(format!(
                "the server's answer has a head over {MAX_HEAD} bytes"
            )));
        }
        let n = stream.read(&mut chunk).await.map_err(io)?;
        if n == 0 {
            return Err(ConnectError::Io(if answer.is_empty() {
                "the server closed the connection without answering the upgrade".into()
            } else {
                "the server closed the connection in the middle of its answer".into()
            }));
        }
        answer.extend_from_slice(&chunk[..n]);
    }
}

fn find_head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4)
}

/// An answer's status line and headers.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    head_len: usize,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.all(name).into_iter().next()
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

fn parse_answer(bytes: &[u8]) -> Result<Answer, ConnectError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let not_http = |why: String| {
        let start = crate::text::printable(&crate::text::cut(
            &String::from_utf8_lossy(&bytes[..bytes.len().min(60)]),
            60,
        ))
        .into_owned();
        ConnectError::Io(format!("the answer is not HTTP ({why}): {start:?}"))
    };
    let head_len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err(not_http("incomplete".into())),
        Err(e) => return Err(not_http(e.to_string())),
    };
    Ok(Answer {
        status: response.code.unwrap_or(0),
        headers: response
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_owned(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        head_len,
    })
}

/// What the server picked, checked against what was offered.
fn picked_subprotocol(answer: &Answer, offered: &[String]) -> Result<Option<String>, ConnectError> {
    let picked = answer.header("sec-websocket-protocol").map(str::to_owned);
    match (&picked, offered.is_empty()) {
        (None, false) => Err(ConnectError::Subprotocol(format!(
            "the server picked none of the offered {}",
            offered.join(", ")
        ))),
        (Some(p), _) if !offered.contains(p) => Err(ConnectError::Subprotocol(format!(
            "the server picked one that was not offered (offered {})",
            offered.join(", ")
        ))),
        _ => Ok(picked),
    }
}

/// The start of a refusal's body: what came with the head, and a little more.
async fn refusal_body(
    stream: &mut MaybeTlsStream<TcpStream>,
    answer: &[u8],
    parsed: &Answer,
) -> Vec<u8> {
    let mut body = answer[parsed.head_len..].to_vec();
    let wanted = parsed
        .header("content-length")
        .and_then(|l| l.trim().parse::<usize>().ok())
        .unwrap_or(MAX_REFUSAL_BODY)
        .min(MAX_REFUSAL_BODY);
    let mut chunk = [0u8; 512];
    let more = async {
        while body.len() < wanted {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_millis(500), more).await;
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    #[test]
    fn the_request_carries_the_offer_and_the_key() {
        let request = "ws://h:1/ws/live/1?since=4".into_client_request().unwrap();
        let (head, key) = request_head(&request, Offer::On).unwrap();
        assert!(
            head.starts_with("GET /ws/live/1?since=4 HTTP/1.1\r\n"),
            "{head}"
        );
        assert!(head.contains(&format!("sec-websocket-key: {key}\r\n")));
        assert!(
            head.contains(
                "sec-websocket-extensions: permessage-deflate; client_max_window_bits\r\n"
            )
        );
        assert!(head.ends_with("\r\n\r\n"));
    }

    #[test]
    fn answers_are_read_and_checked() {
        let bytes = b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Protocol: b\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n\x81\x02hi";
        let end = find_head_end(bytes).unwrap();
        assert_eq!(&bytes[end..], b"\x81\x02hi");
        let answer = parse_answer(bytes).unwrap();
        assert_eq!(answer.status, 101);
        assert_eq!(answer.head_len, end);
        assert_eq!(
            answer.header("sec-websocket-extensions"),
            Some("permessage-deflate")
        );
        let offered = |o: &[&str]| o.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            picked_subprotocol(&answer, &offered(&["a", "b"])).unwrap(),
            Some("b".into())
        );
        assert!(picked_subprotocol(&answer, &offered(&["a"])).is_err());
        let bare = parse_answer(b"HTTP/1.1 101 OK\r\n\r\n").unwrap();
        assert!(picked_subprotocol(&bare, &offered(&["a"])).is_err());
        let err = parse_answer(b"SSH-2.0-OpenSSH\r\n\r\n").err().unwrap();
        assert!(err.to_string().contains("not HTTP"), "{err}");
    }

    /// A server that reads one request head and answers `answer` (with the client's
    /// key's accept value where `{accept}` stands), then closes.
    async fn answering(answer: &'static str) -> Url {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && tcp.read_exact(&mut byte).await.is_ok() {
                head.push(byte[0]);
            }
            let text = String::from_utf8_lossy(&head).into_owned();
            // The header's name in any case; its value (base64) exactly as sent.
            let key = text
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("sec-websocket-key")
                        .then(|| value.trim().to_owned())
                })
                .unwrap_or_default();
            let accept = derive_accept_key(key.as_bytes());
            let reply = answer.replace("{accept}", &accept);
            let _ = tcp.write_all(reply.as_bytes()).await;
        });
        Url::parse(&format!("ws://{addr}/ws/live/1")).unwrap()
    }

    async fn connect_to(url: &Url) -> Result<Connected, ConnectError> {
        let options = ConnectOptions {
            compress: Offer::On,
            ..ConnectOptions::default()
        };
        let request = url.as_str().into_client_request().unwrap();
        connect(url, request, &options).await
    }

    #[tokio::test]
    async fn a_refused_upgrade_says_what_the_server_said() {
        let url = answering(
            "HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 17\r\n\r\nno token, no feed",
        )
        .await;
        let Err(ConnectError::Handshake { status, said }) = connect_to(&url).await else {
            panic!("a 403 is a refused handshake");
        };
        assert_eq!(status, 403);
        assert!(said.contains("no token, no feed"), "{said}");
    }

    #[tokio::test]
    async fn an_accept_that_does_not_answer_our_key_fails_the_connection() {
        let url = answering(
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n",
        )
        .await;
        let Err(ConnectError::Io(said)) = connect_to(&url).await else {
            panic!("a wrong accept key is refused");
        };
        assert!(said.contains("Sec-WebSocket-Accept"), "{said}");
    }

    #[tokio::test]
    async fn an_extension_we_did_not_offer_fails_the_connection() {
        let url = answering(
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-accept: {accept}\r\nsec-websocket-extensions: x-webkit-deflate-frame\r\n\r\n",
        )
        .await;
        assert!(matches!(
            connect_to(&url).await,
            Err(ConnectError::Extension(_))
        ));
        let agreed = answering(
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-accept: {accept}\r\nsec-websocket-extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n\r\n",
        )
        .await;
        assert!(connect_to(&agreed).await.is_ok(), "a right answer connects");
    }

    #[tokio::test]
    async fn refused_ports_and_other_schemes_are_named() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let closed = Url::parse(&format!("ws://127.0.0.1:{port}/")).unwrap();
        assert!(matches!(
            connect_to(&closed).await,
            Err(ConnectError::Refused)
        ));
        let url_error = async |url: &str| {
            let request = "ws://127.0.0.1/".into_client_request().unwrap();
            match connect(
                &Url::parse(url).unwrap(),
                request,
                &ConnectOptions::default(),
            )
            .await
            {
                Err(ConnectError::Url(e)) => e,
                other => panic!("{url}: expected a URL error, got {:?}", other.err()),
            }
        };
        assert!(url_error("data:text/plain,hi").await.contains("no host"));
        assert!(url_error("ftp://127.0.0.1/").await.contains("\"ftp\""));
    }

    /// `wss://` to a server that speaks plain HTTP: the TLS handshake fails, said as
    /// a TLS failure, not as a broken connection.
    #[tokio::test]
    async fn tls_to_a_plain_server_fails_as_tls() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            // Whatever came (a ClientHello), the answer of a plain HTTP server.
            let mut hello = [0u8; 512];
            let _ = tcp.read(&mut hello).await;
            let answer = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
            let _ = tcp.write_all(answer).await;
        });
        let secure = Url::parse(&format!("wss://{addr}/ws/live/1")).unwrap();
        match connect_to(&secure).await {
            Err(ConnectError::Tls { reason, .. }) => assert!(!reason.is_empty()),
            Err(other) => panic!("expected a TLS failure, got {other:?}"),
            Ok(_) => panic!("a plain server passed for TLS"),
        }
    }
}
