//! Where a command points, and how it connects there.
//!
//! A [`Target`] is the URL a user gives `load`, `smoke` or `contract record`, in any of
//! http, https, ws or wss. It names either a server in our layout (a bare host), a
//! stream template with `{game_id}`, or one stream; the REST base and the stream URLs
//! are derived from it with the `url` crate, never by string surgery.
//! [`ConnectOptions`] is everything an outbound connection is opened with.

use std::sync::Arc;
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

/// The placeholder a stream template holds where the game id goes.
pub const GAME_ID: &str = "{game_id}";
/// `{game_id}` as it reads in a parsed URL's path (braces are percent-encoded there).
const GAME_ID_IN_PATH: &str = "%7Bgame_id%7D";
/// Our stream path: `/ws/live/{game_id}`.
const STREAM_PATH: [&str; 2] = ["ws", "live"];
/// Where our server offers each game's stream as Server-Sent Events.
const EVENT_STREAM_PATH: [&str; 2] = ["sse", "live"];
/// RFC 3986's unreserved characters stay as they are; everything else in a game id
/// is percent-encoded, so an id can never add a path segment or a query.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("{text:?} is not a URL: {reason}")]
    NotAUrl { text: String, reason: String },
    #[error("{text:?}: unsupported scheme {scheme:?}; use http, https, ws or wss")]
    Scheme { text: String, scheme: String },
    #[error("{0:?} has no host")]
    NoHost(String),
}

/// What a target URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A bare host (`ws://host:port`): a server in our layout, games from
    /// `/api/live/games`, streams at `/ws/live/{game_id}`.
    Server,
    /// A URL with `{game_id}` in its path or query, filled per game.
    Template,
    /// One stream, used as it is.
    Stream,
}

/// The server (or stream) a command tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    url: Url,
}

impl Target {
    pub fn parse(text: &str) -> Result<Target, TargetError> {
        let url = Url::parse(text).map_err(|e| TargetError::NotAUrl {
            text: text.to_owned(),
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https" | "ws" | "wss") {
            return Err(TargetError::Scheme {
                text: text.to_owned(),
                scheme: url.scheme().to_owned(),
            });
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(TargetError::NoHost(text.to_owned()));
        }
        Ok(Target { url })
    }

    /// The URL as given (normalized by the parser).
    pub fn url(&self) -> &Url {
        &self.url
    }

    pub fn is_secure(&self) -> bool {
        matches!(self.url.scheme(), "https" | "wss")
    }

    pub fn shape(&self) -> Shape {
        let templated = self.url.path().contains(GAME_ID_IN_PATH)
            || self.url.query().is_some_and(|q| q.contains(GAME_ID));
        if templated {
            Shape::Template
        } else if matches!(self.url.path(), "" | "/") {
            Shape::Server
        } else {
            Shape::Stream
        }
    }

    /// `http(s)://host[:port]`, no trailing slash: how reports name the server.
    pub fn origin(&self) -> String {
        self.http_base().origin().ascii_serialization()
    }

    /// The server's REST root: `http(s)://host[:port]/`.
    pub fn http_base(&self) -> Url {
        let secure = self.is_secure();
        self.root(if secure { "https" } else { "http" })
    }

    /// The URL as given, with a ws(s) scheme.
    pub fn ws_url(&self) -> Url {
        self.with_ws_scheme()
    }

    /// The server's WebSocket root: `ws(s)://host[:port]/`.
    pub fn ws_base(&self) -> Url {
        let secure = self.is_secure();
        self.root(if secure { "wss" } else { "ws" })
    }

    fn root(&self, scheme: &str) -> Url {
        let mut url = self.url.clone();
        // Switching between the four special schemes cannot fail.
        let _ = url.set_scheme(scheme);
        url.set_path("/");
        url.set_query(None);
        url.set_fragment(None);
        url
    }

    /// A REST URL on this server: `path` (with an optional `?query`) under the root.
    pub fn api(&self, path: &str) -> Url {
        let mut url = self.http_base();
        match path.split_once('?') {
            Some((p, q)) => {
                url.set_path(p);
                url.set_query(Some(q));
            }
            None => url.set_path(path),
        }
        url
    }

    /// The stream of `game`: `/ws/live/{game}` on a bare server, the template filled
    /// in, or the stream URL itself; always with a ws(s) scheme.
    pub fn stream(&self, game: &str) -> Url {
        match self.shape() {
            Shape::Server => {
                let mut url = self.ws_base();
                if let Ok(mut segments) = url.path_segments_mut() {
                    segments.clear().extend(STREAM_PATH).push(game);
                }
                url
            }
            Shape::Template => self.fill(game),
            Shape::Stream => self.with_ws_scheme(),
        }
    }

    /// The one stream a [`Shape::Stream`] target names; None for the other shapes,
    /// which need a game.
    pub fn fixed_stream(&self) -> Option<Url> {
        (self.shape() == Shape::Stream).then(|| self.with_ws_scheme())
    }

    /// The Server-Sent Events stream of `game`: `/sse/live/{game}` on a bare server,
    /// the template filled in, or the URL itself; always with an http(s) scheme.
    pub fn event_stream(&self, game: &str) -> Url {
        let mut url = match self.shape() {
            Shape::Server => {
                let mut url = self.http_base();
                if let Ok(mut segments) = url.path_segments_mut() {
                    segments.clear().extend(EVENT_STREAM_PATH).push(game);
                }
                return url;
            }
            Shape::Template => self.fill(game),
            Shape::Stream => self.url.clone(),
        };
        let http = if self.is_secure() { "https" } else { "http" };
        // Switching between the four special schemes cannot fail.
        let _ = url.set_scheme(http);
        url
    }

    /// [`Target::fixed_stream`] for Server-Sent Events.
    pub fn fixed_event_stream(&self) -> Option<Url> {
        (self.shape() == Shape::Stream).then(|| self.event_stream(""))
    }

    fn with_ws_scheme(&self) -> Url {
        let mut url = self.url.clone();
        let ws = if self.is_secure() { "wss" } else { "ws" };
        // Switching between the four special schemes cannot fail.
        let _ = url.set_scheme(ws);
        url
    }

    fn fill(&self, game: &str) -> Url {
        let mut url = self.with_ws_scheme();
        let path = url.path().replace(GAME_ID_IN_PATH, &encode_segment(game));
        url.set_path(&path);
        if url.query().is_some_and(|q| q.contains(GAME_ID)) {
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.replace(GAME_ID, game)))
                .collect();
            url.query_pairs_mut().clear().extend_pairs(pairs);
        }
        url
    }

    /// Whether the target is this machine (one clock for client and server).
    pub fn is_loopback(&self) -> bool {
        is_loopback(&self.url)
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.url.as_str())
    }
}

/// Whether a game id can be one segment of a URL path. "." and ".." cannot: URLs
/// remove dot segments (percent-encoded ones too), so such an id would address
/// another path on the server, and an empty one the directory itself.
pub fn addressable(game: &str) -> bool {
    !matches!(game, "" | "." | "..")
}

/// `text` as one path segment: everything but RFC 3986's unreserved characters is
/// percent-encoded, so a game id can never add a segment or a query.
pub fn encode_segment(text: &str) -> String {
    utf8_percent_encode(text, SEGMENT).to_string()
}

/// Whether a URL's host is this machine.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The URL with `since=SEQ` added to (or replaced in) its query: a lossless resume.
pub fn with_since(url: &Url, since: u64, epoch: Option<&str>) -> Url {
    let mut resumed = url.clone();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "since" && k != "epoch")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut query = resumed.query_pairs_mut();
    query
        .clear()
        .extend_pairs(kept)
        .append_pair("since", &since.to_string());
    if let Some(epoch) = epoch {
        // The run of the server `since` belongs to (contract 1.1.0).
        query.append_pair("epoch", epoch);
    }
    drop(query);
    resumed
}

/// How every outbound connection of a command is opened. One value, built once from
/// the command's flags (or a scenario file), used by the WebSocket connects, the REST
/// requests, discovery and goose alike.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Give up a connection attempt (TCP + TLS + handshake, or a whole HTTP request)
    /// after this long.
    pub connect_timeout: Duration,
    /// tungstenite's read buffer per connection: its 128 KiB default would dominate
    /// the memory of a many-connection client.
    pub read_buffer: usize,
    /// The largest WebSocket message (and frame) accepted; larger ones end the
    /// connection. None: no limit of ours (tungstenite's 64 MiB).
    pub max_message: Option<usize>,
    /// Sent with every WebSocket handshake and HTTP request (`-H 'Name: value'`).
    pub headers: HeaderMap,
    /// Offered on every WebSocket handshake (`--subprotocol`); when any is offered,
    /// the server must pick one of them.
    pub subprotocols: Vec<String>,
    /// Our TLS trust (`--cacert`, `--insecure`); None: the platform's roots.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Certificates are not verified (`--insecure`): commands say so on the terminal
    /// and in their reports.
    pub insecure: bool,
    /// permessage-deflate offered on every WebSocket handshake (`--compress`).
    pub compress: crate::wire::Offer,
}

/// The read chunk: two or three frames of our contract's size. Larger messages are
/// still read whole (in several chunks). tungstenite zero-fills the chunk on every
/// read and keeps it per connection, so 4 KiB cost 3 KiB more per connection and a
/// memset a profile of 10,000 connections x 1 frame/s showed at 2.8 % of the client's
/// CPU.
pub const DEFAULT_READ_BUFFER: usize = 1024;
/// The largest WebSocket message a client accepts unless told otherwise: far above the
/// contract's frames, far below what would let a hostile server exhaust memory.
pub const DEFAULT_MAX_MESSAGE: usize = 1024 * 1024;

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            read_buffer: DEFAULT_READ_BUFFER,
            max_message: Some(DEFAULT_MAX_MESSAGE),
            headers: HeaderMap::new(),
            subprotocols: Vec::new(),
            tls: None,
            insecure: false,
            compress: crate::wire::Offer::Off,
        }
    }
}

/// `Name: value`, as curl's `-H` takes it.
pub fn parse_header(s: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?}: expected 'Name: value'"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("{:?} is not a header name", name.trim()))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| format!("the value of {name} has characters a header cannot hold"))?;
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> Target {
        Target::parse(text).unwrap()
    }

    #[test]
    fn a_bare_server_has_our_layout() {
        let server = t("ws://127.0.0.1:8000");
        assert_eq!(server.shape(), Shape::Server);
        assert_eq!(
            server.stream("nba-1").as_str(),
            "ws://127.0.0.1:8000/ws/live/nba-1"
        );
        assert_eq!(server.origin(), "http://127.0.0.1:8000");
        assert_eq!(
            server.api("/api/live/games").as_str(),
            "http://127.0.0.1:8000/api/live/games"
        );
        let secure = t("https://h.example/");
        assert_eq!(secure.stream("g").as_str(), "wss://h.example/ws/live/g");
        assert_eq!(
            secure.event_stream("g").as_str(),
            "https://h.example/sse/live/g"
        );
        assert_eq!(secure.origin(), "https://h.example");
        assert_eq!(
            t("wss://h/feed/{game_id}").event_stream("g 1").as_str(),
            "https://h/feed/g%201"
        );
        assert_eq!(
            t("ws://h/events?x=1")
                .fixed_event_stream()
                .unwrap()
                .as_str(),
            "http://h/events?x=1"
        );
        assert_eq!(
            t("http://[::1]:9").api("/x?since=4").as_str(),
            "http://[::1]:9/x?since=4"
        );
    }

    #[test]
    fn templates_are_filled_and_game_ids_cannot_escape_their_segment() {
        let template = t("wss://h/feed/{game_id}/live?token=abc");
        assert_eq!(template.shape(), Shape::Template);
        assert_eq!(
            template.stream("g1").as_str(),
            "wss://h/feed/g1/live?token=abc"
        );
        assert_eq!(
            template.stream("a/b?c").as_str(),
            "wss://h/feed/a%2Fb%3Fc/live?token=abc"
        );
        let in_query = t("ws://h/stream?game={game_id}");
        assert_eq!(in_query.shape(), Shape::Template);
        assert_eq!(in_query.stream("g 2").as_str(), "ws://h/stream?game=g+2");
        assert_eq!(
            t("ws://h/ws/live/a b").stream("x").as_str(),
            "ws://h/ws/live/a%20b"
        );
        assert_eq!(t("ws://h/one").shape(), Shape::Stream);
    }

    #[test]
    fn resumes_replace_since_and_keep_the_rest() {
        let url = Url::parse("ws://h/x").unwrap();
        assert_eq!(with_since(&url, 5, None).as_str(), "ws://h/x?since=5");
        let url = Url::parse("ws://h/x?a=1&since=2&epoch=old").unwrap();
        assert_eq!(with_since(&url, 9, None).as_str(), "ws://h/x?a=1&since=9");
        assert_eq!(
            with_since(&url, 9, Some("e 1")).as_str(),
            "ws://h/x?a=1&since=9&epoch=e+1"
        );
    }

    #[test]
    fn headers_parse_as_people_write_them() {
        let (name, value) = parse_header("Authorization: Bearer a:b").unwrap();
        assert_eq!(
            (name.as_str(), value.to_str().unwrap()),
            ("authorization", "Bearer a:b")
        );
        assert!(
            parse_header("no colon")
                .unwrap_err()
                .contains("Name: value")
        );
        assert!(parse_header("bad name: x").is_err());
    }

    #[test]
    fn bad_targets_say_why() {
        assert!(matches!(
            Target::parse("ftp://h"),
            Err(TargetError::Scheme { .. })
        ));
        assert!(matches!(
            Target::parse("not a url"),
            Err(TargetError::NotAUrl { .. })
        ));
        assert!(t("ws://localhost:1").is_loopback());
        assert!(t("ws://127.0.0.2").is_loopback());
        assert!(!t("wss://example.com").is_loopback());
    }

    #[test]
    fn dot_segments_and_the_empty_id_are_not_addressable() {
        for game in ["", ".", ".."] {
            assert!(!addressable(game), "{game:?}");
        }
        for game in ["...", ".a", "%2e", "nba-1"] {
            assert!(addressable(game), "{game:?}");
            let url = t("ws://h:1").stream(game);
            assert_eq!(url.path_segments().unwrap().count(), 3, "{url}");
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever game id discovery accepts ([`addressable`]), it fills exactly one path segment of the
            /// stream URL: it never adds a segment, a query or a fragment, and it
            /// reads back from the URL as it was.
            #[test]
            fn any_game_id_stays_one_segment(game in "\\PC{0,30}") {
                prop_assume!(addressable(&game));
                for base in ["ws://h:1", "ws://h:1/feed/{game_id}/live", "ws://h:1/feed?game={game_id}"] {
                    let url = t(base).stream(&game);
                    prop_assert!(url.fragment().is_none(), "{url}");
                    if base.contains('?') {
                        let pairs: Vec<_> = url.query_pairs().collect();
                        prop_assert_eq!(pairs.len(), 1, "{}", url);
                        prop_assert_eq!(&pairs[0].1, &game);
                    } else {
                        prop_assert!(url.query().is_none(), "{url}");
                        let segments: Vec<_> = url.path_segments().unwrap().collect();
                        prop_assert_eq!(segments.len(), 3, "{}", url);
                        // The id's place: /ws/live/ID on a bare server, /feed/ID/live.
                        let at = if base.ends_with("/live") { 1 } else { 2 };
                        let decoded = percent_encoding::percent_decode_str(segments[at])
                            .decode_utf8()
                            .unwrap();
                        prop_assert_eq!(decoded, game.as_str());
                    }
                }
            }
        }
    }
}
