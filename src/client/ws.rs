//! Connecting to a WebSocket server, timed, with failures sorted by kind.

use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use url::Url;

use super::target::ConnectOptions;

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

/// Opens a WebSocket to `url` with `options`: its read buffer, its message cap, and
/// no write buffering (each send goes out at once).
pub async fn connect(url: &Url, options: &ConnectOptions) -> Result<Connected, ConnectError> {
    let mut config = WebSocketConfig::default()
        .read_buffer_size(options.read_buffer)
        .write_buffer_size(0);
    if let Some(max) = options.max_message {
        config = config.max_message_size(Some(max)).max_frame_size(Some(max));
    }
    let started = Instant::now();
    let attempt = tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true);
    match tokio::time::timeout(options.connect_timeout, attempt).await {
        Err(_) => Err(ConnectError::Timeout(options.connect_timeout)),
        Ok(Err(e)) => Err(classify(e)),
        Ok(Ok((socket, _))) => Ok(Connected {
            socket,
            connect_time: started.elapsed(),
        }),
    }
}
