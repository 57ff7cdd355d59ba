//! Connecting to a WebSocket server, timed: tungstenite's handshake, or ours (`upgrade`) when permessage-deflate is offered.

use std::time::Instant;

use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::{SEC_WEBSOCKET_PROTOCOL, USER_AGENT};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use url::Url;

use super::socket::what_the_refusal_said;
pub use super::socket::{AGENT, ConnectError, Connected, Socket};
use super::target::ConnectOptions;
use crate::wire::Offer;

fn classify(
    e: tokio_tungstenite::tungstenite::Error,
    offered: &[String],
    url: &Url,
) -> ConnectError {
    use tokio_tungstenite::tungstenite::Error;
    use tokio_tungstenite::tungstenite::error::{ProtocolError, SubProtocolError};
    if let Some((kind, reason)) = super::tls::failure(&e) {
        return ConnectError::Tls { kind, reason };
    }
    match e {
        Error::Http(response) => {
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok());
            let said = what_the_refusal_said(status, content_type, response.body().as_deref(), url);
            ConnectError::Handshake { status, said }
        }
        Error::Protocol(ProtocolError::SecWebSocketSubProtocolError(sub)) => {
            ConnectError::Subprotocol(match sub {
                SubProtocolError::NoSubProtocol => format!(
                    "the server picked none of the offered {}",
                    offered.join(", ")
                ),
                SubProtocolError::InvalidSubProtocol => format!(
                    "the server picked one that was not offered (offered {})",
                    offered.join(", ")
                ),
                other => other.to_string(),
            })
        }
        Error::Tls(e) => ConnectError::Tls {
            kind: "handshake",
            reason: e.to_string(),
        },
        Error::Url(e) => ConnectError::Url(e.to_string()),
        Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => ConnectError::Refused,
        Error::Io(e) if e.to_string().contains("lookup") || e.to_string().contains("resolve") => {
            ConnectError::Dns(e.to_string())
        }
        other => ConnectError::Io(other.to_string()),
    }
}

/// Opens a WebSocket to `url` with `options`: its headers, subprotocols, TLS trust,
/// read buffer and message cap, and no write buffering (each send goes out at once).
pub async fn connect(url: &Url, options: &ConnectOptions) -> Result<Connected, ConnectError> {
    let request = handshake(url, options)?;
    if options.compress != Offer::Off {
        let attempt = super::upgrade::connect(url, request, options);
        return tokio::time::timeout(options.connect_timeout, attempt)
            .await
            .unwrap_or(Err(ConnectError::Timeout(options.connect_timeout)));
    }
    let mut config = WebSocketConfig::default()
        .read_buffer_size(options.read_buffer)
        .write_buffer_size(0);
    if let Some(max) = options.max_message {
        config = config.max_message_size(Some(max)).max_frame_size(Some(max));
    }
    let connector = options.tls.clone().map(Connector::Rustls);
    let started = Instant::now();
    let attempt =
        tokio_tungstenite::connect_async_tls_with_config(request, Some(config), true, connector);
    match tokio::time::timeout(options.connect_timeout, attempt).await {
        Err(_) => Err(ConnectError::Timeout(options.connect_timeout)),
        Ok(Err(e)) => Err(classify(e, &options.subprotocols, url)),
        Ok(Ok((socket, response))) => Ok(Connected {
            socket: Socket::Plain(socket),
            connect_time: started.elapsed(),
            subprotocol: response
                .headers()
                .get(SEC_WEBSOCKET_PROTOCOL)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        }),
    }
}

/// The upgrade request: the URL's, plus our headers and offered subprotocols.
fn handshake(url: &Url, options: &ConnectOptions) -> Result<Request, ConnectError> {
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| ConnectError::Url(e.to_string()))?;
    let headers = request.headers_mut();
    for (name, value) in &options.headers {
        headers.append(name, value.clone());
    }
    // Servers and proxies log who called; `-H 'User-Agent: ...'` says otherwise.
    if !headers.contains_key(USER_AGENT) {
        headers.insert(USER_AGENT, HeaderValue::from_static(AGENT));
    }
    if !options.subprotocols.is_empty() {
        let offered = HeaderValue::from_str(&options.subprotocols.join(", "))
            .map_err(|e| ConnectError::Subprotocol(e.to_string()))?;
        headers.insert(SEC_WEBSOCKET_PROTOCOL, offered);
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::Error;
    use tokio_tungstenite::tungstenite::error::{ProtocolError, SubProtocolError, UrlError};

    fn classified(e: Error) -> ConnectError {
        let offered = ["feed.v2".to_owned(), "feed.v1".to_owned()];
        classify(e, &offered, &Url::parse("ws://127.0.0.1:9/ws").unwrap())
    }

    #[test]
    fn each_failure_is_said_as_what_it_is() {
        let none = Error::Protocol(ProtocolError::SecWebSocketSubProtocolError(
            SubProtocolError::NoSubProtocol,
        ));
        assert!(matches!(classified(none),
            ConnectError::Subprotocol(s) if s == "the server picked none of the offered feed.v2, feed.v1"));
        let other = Error::Protocol(ProtocolError::SecWebSocketSubProtocolError(
            SubProtocolError::InvalidSubProtocol,
        ));
        assert!(matches!(classified(other),
            ConnectError::Subprotocol(s) if s.contains("one that was not offered (offered feed.v2, feed.v1)")));
        let unasked = Error::Protocol(ProtocolError::SecWebSocketSubProtocolError(
            SubProtocolError::ServerSentSubProtocolNoneRequested,
        ));
        assert!(matches!(classified(unasked), ConnectError::Subprotocol(_)));
        assert!(matches!(
            classified(Error::Url(UrlError::NoHostName)),
            ConnectError::Url(_)
        ));
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(matches!(
            classified(Error::Io(refused)),
            ConnectError::Refused
        ));
        let lookup = std::io::Error::other("failed to lookup address information");
        assert!(matches!(
            classified(Error::Io(lookup)),
            ConnectError::Dns(_)
        ));
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(matches!(classified(Error::Io(reset)), ConnectError::Io(_)));
        assert!(matches!(
            classified(Error::ConnectionClosed),
            ConnectError::Io(_)
        ));
    }

    #[test]
    fn a_bad_url_or_subprotocol_is_refused_before_connecting() {
        let options = ConnectOptions {
            subprotocols: vec!["bad\nname".into()],
            ..ConnectOptions::default()
        };
        let url = Url::parse("ws://127.0.0.1:9/ws").unwrap();
        assert!(matches!(
            handshake(&url, &options),
            Err(ConnectError::Subprotocol(_))
        ));
        let plain = ConnectOptions::default();
        let request = handshake(&url, &plain).unwrap();
        assert_eq!(request.headers()[USER_AGENT], AGENT);
    }
}
