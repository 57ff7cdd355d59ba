//! Connecting to a WebSocket server, timed, with failures sorted by kind.

use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why a connection could not be made. [`ConnectError::kind`] is the short name used
/// in reports (`refused`, `handshake_503`, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    #[error("connection refused")]
    Refused,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot resolve the host: {0}")]
    Dns(String),
    #[error("TLS failed: {0}")]
    Tls(String),
    #[error("the server answered the upgrade with HTTP {0}")]
    Handshake(u16),
    #[error("bad URL: {0}")]
    Url(String),
    #[error("{0}")]
    Io(String),
}

impl ConnectError {
    pub fn kind(&self) -> String {
        match self {
            ConnectError::Refused => "refused".into(),
            ConnectError::Timeout(_) => "connect_timeout".into(),
            ConnectError::Dns(_) => "dns".into(),
            ConnectError::Tls(_) => "tls".into(),
            ConnectError::Handshake(status) => format!("handshake_{status}"),
            ConnectError::Url(_) => "bad_url".into(),
            ConnectError::Io(_) => "io".into(),
        }
    }
}

fn classify(e: tokio_tungstenite::tungstenite::Error) -> ConnectError {
    use tokio_tungstenite::tungstenite::Error;
    match e {
        Error::Http(response) => ConnectError::Handshake(response.status().as_u16()),
        Error::Tls(e) => ConnectError::Tls(e.to_string()),
        Error::Url(e) => ConnectError::Url(e.to_string()),
        Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => ConnectError::Refused,
        Error::Io(e) if e.to_string().contains("lookup") || e.to_string().contains("resolve") => {
            ConnectError::Dns(e.to_string())
        }
        other => ConnectError::Io(other.to_string()),
    }
}

/// A connected socket and how long TCP + TLS + the WebSocket handshake took.
pub struct Connected {
    pub socket: Socket,
    pub connect_time: Duration,
}

/// Connects with a small read buffer: tungstenite's 128 KiB default would dominate the
/// memory of a many-connection client.
pub async fn connect(
    url: &str,
    timeout: Duration,
    read_buffer: usize,
) -> Result<Connected, ConnectError> {
    connect_with(
        url,
        timeout,
        WebSocketConfig::default().read_buffer_size(read_buffer),
    )
    .await
}

/// Like [`connect`], refusing frames over `max_frame` bytes (the connection fails).
pub async fn connect_limited(
    url: &str,
    timeout: Duration,
    read_buffer: usize,
    max_frame: usize,
) -> Result<Connected, ConnectError> {
    let config = WebSocketConfig::default()
        .read_buffer_size(read_buffer)
        .max_message_size(Some(max_frame))
        .max_frame_size(Some(max_frame));
    connect_with(url, timeout, config).await
}

async fn connect_with(
    url: &str,
    timeout: Duration,
    config: WebSocketConfig,
) -> Result<Connected, ConnectError> {
    let config = config.write_buffer_size(0);
    let started = Instant::now();
    let attempt = tokio_tungstenite::connect_async_with_config(url, Some(config), true);
    match tokio::time::timeout(timeout, attempt).await {
        Err(_) => Err(ConnectError::Timeout(timeout)),
        Ok(Err(e)) => Err(classify(e)),
        Ok(Ok((socket, _))) => Ok(Connected {
            socket,
            connect_time: started.elapsed(),
        }),
    }
}

/// The stream to record or check: a full stream URL as given, or for a bare
/// `ws://host:port`, the first live game the server lists.
pub async fn stream_url(url: &str) -> Result<String, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "ws" | "wss") {
        return Err(format!("{url:?}: use a ws:// or wss:// URL"));
    }
    if parsed.path() != "/" && !parsed.path().is_empty() {
        return Ok(url.to_owned());
    }
    let base = http_base(url).ok_or_else(|| format!("{url:?}: cannot derive the HTTP address"))?;
    let games = super::discover::games(&base, Duration::from_secs(10))
        .await
        .map_err(|e| e.to_string())?;
    let (id, _) = games
        .into_iter()
        .next()
        .ok_or_else(|| format!("{base}/api/live/games lists no games"))?;
    Ok(format!("{}/ws/live/{id}", url.trim_end_matches('/')))
}

/// Fills `{game_id}` in a URL template.
pub fn fill(template: &str, game_id: &str) -> String {
    template.replace("{game_id}", game_id)
}

/// Adds or replaces `since=SEQ` in a URL's query.
pub fn with_since(url: &str, since: u64) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("since="))
        .collect();
    let mut out = format!("{base}?");
    for p in kept {
        out.push_str(p);
        out.push('&');
    }
    out.push_str(&format!("since={since}"));
    out
}

/// `ws://host:port/...` → `http://host:port`, `wss://` → `https://`.
pub fn http_base(ws_url: &str) -> Option<String> {
    let (scheme, rest) = ws_url.split_once("://")?;
    let http = match scheme {
        "ws" | "http" => "http",
        "wss" | "https" => "https",
        _ => return None,
    };
    let host = rest.split(['/', '?']).next()?;
    Some(format!("{http}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_templated_and_resumed() {
        assert_eq!(fill("ws://h/ws/live/{game_id}", "g1"), "ws://h/ws/live/g1");
        assert_eq!(with_since("ws://h/x", 5), "ws://h/x?since=5");
        assert_eq!(
            with_since("ws://h/x?a=1&since=2", 9),
            "ws://h/x?a=1&since=9"
        );
        assert_eq!(
            http_base("wss://h:9/ws/live/g?x=1").as_deref(),
            Some("https://h:9")
        );
        assert_eq!(http_base("ftp://h"), None);
    }
}
