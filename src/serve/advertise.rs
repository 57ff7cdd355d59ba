//! The base URLs `serve` advertises in `ws_url` and `timeline_url`.
//!
//! The Host header is the client's claim, and reflecting it lets anyone who can put a
//! response in a shared cache point other clients at their own host. So the base is,
//! in order: `--public-url` when given; the `Forwarded` / `X-Forwarded-*` headers of
//! a proxy when `--trust-proxy` says one is in front; else the address the client's
//! connection actually reached.

use std::net::SocketAddr;

use axum::http::{HeaderMap, header};
use url::Url;

/// How to build advertised URLs; fixed at start.
#[derive(Debug, Clone, Default)]
pub struct Advertise {
    /// `--public-url`: http(s)://host[:port][/prefix].
    pub public_url: Option<Url>,
    /// `--trust-proxy`: believe the proxy's forwarded scheme and host.
    pub trust_proxy: bool,
}

/// Base URLs without a trailing slash: `http://host:port/prefix`, `ws://...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bases {
    pub http: String,
    pub ws: String,
}

impl Advertise {
    /// The bases for one request that reached us at `reached` (the connection's
    /// local address).
    pub fn bases(&self, headers: &HeaderMap, reached: SocketAddr) -> Bases {
        if let Some(url) = &self.public_url {
            let secure = url.scheme() == "https";
            let rest = url.as_str()[url.scheme().len()..].trim_end_matches('/');
            return Bases::new(secure, rest.trim_start_matches("://"));
        }
        if self.trust_proxy {
            let forwarded = Forwarded::from_headers(headers);
            let host = forwarded.host.or_else(|| header_host(headers));
            if let Some(host) = host {
                let secure = forwarded.secure.unwrap_or(false);
                return Bases::new(secure, &with_forwarded_port(host, headers, secure));
            }
        }
        Bases::new(false, &reached.to_string())
    }
}

impl Bases {
    fn new(secure: bool, authority_and_prefix: &str) -> Self {
        let (http, ws) = if secure {
            ("https", "wss")
        } else {
            ("http", "ws")
        };
        Bases {
            http: format!("{http}://{authority_and_prefix}"),
            ws: format!("{ws}://{authority_and_prefix}"),
        }
    }
}

/// What a proxy says about the original request.
#[derive(Debug, Default, PartialEq)]
struct Forwarded {
    secure: Option<bool>,
    host: Option<String>,
}

impl Forwarded {
    /// RFC 7239 `Forwarded` (its first element: the proxy nearest the client) first,
    /// then the de-facto `X-Forwarded-Proto` / `X-Forwarded-Host`.
    fn from_headers(headers: &HeaderMap) -> Self {
        let mut found = Forwarded::default();
        if let Some(first) = first_value(headers, "forwarded") {
            for pair in first.split(';') {
                let Some((key, value)) = pair.split_once('=') else {
                    continue;
                };
                let value = value.trim().trim_matches('"');
                match key.trim().to_ascii_lowercase().as_str() {
                    "proto" => found.secure = scheme_is_secure(value),
                    "host" => found.host = valid_host(value),
                    _ => {}
                }
            }
        }
        if found.secure.is_none() {
            found.secure =
                first_value(headers, "x-forwarded-proto").and_then(|p| scheme_is_secure(&p));
        }
        if found.host.is_none() {
            found.host = first_value(headers, "x-forwarded-host").and_then(|h| valid_host(&h));
        }
        found
    }
}

/// `host` with the proxy's `X-Forwarded-Port` when it names none itself (nginx's
/// usual `Host $host` drops the port; the scheme's default port is left out).
fn with_forwarded_port(host: String, headers: &HeaderMap, secure: bool) -> String {
    let has_port = Url::parse(&format!("http://{host}/")).is_ok_and(|u| u.port().is_some())
        || host.rsplit_once(':').is_some_and(|(_, p)| p == "80");
    if has_port {
        return host;
    }
    let port = first_value(headers, "x-forwarded-port").and_then(|p| p.parse::<u16>().ok());
    match port {
        Some(port) if port != if secure { 443 } else { 80 } => format!("{host}:{port}"),
        _ => host,
    }
}

/// The first comma-separated element of the first such header.
fn first_value(headers: &HeaderMap, name: &str) -> Option<String> {
    let value = headers.get(name)?.to_str().ok()?;
    Some(value.split(',').next()?.trim().to_owned())
}

fn scheme_is_secure(scheme: &str) -> Option<bool> {
    match scheme.to_ascii_lowercase().as_str() {
        "https" | "wss" => Some(true),
        "http" | "ws" => Some(false),
        _ => None,
    }
}

fn header_host(headers: &HeaderMap) -> Option<String> {
    valid_host(headers.get(header::HOST)?.to_str().ok()?)
}

/// A host[:port] that can go into a URL as it is: a name, an IPv4 address or a
/// bracketed IPv6 address, nothing else.
fn valid_host(host: &str) -> Option<String> {
    let ok = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b));
    (ok && Url::parse(&format!("http://{host}/")).is_ok()).then(|| host.to_owned())
}

/// Parses `--public-url`: an absolute http(s) URL with no query or fragment.
pub fn parse_public_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "{s:?}: must be http:// or https:// (ws_url follows it with ws:// or wss://)"
        ));
    }
    if url.host().is_none() || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{s:?}: must be scheme://host[:port][/prefix], without a query or fragment"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{s:?}: must not hold credentials"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    fn trusting() -> Advertise {
        Advertise {
            public_url: None,
            trust_proxy: true,
        }
    }

    fn reached() -> SocketAddr {
        "10.0.0.5:8000".parse().unwrap()
    }

    fn bases(advertise: &Advertise, pairs: &[(&'static str, &str)]) -> (String, String) {
        let b = advertise.bases(&headers(pairs), reached());
        (b.http, b.ws)
    }

    #[test]
    fn by_default_the_host_header_is_ignored_for_the_reached_address() {
        let plain = Advertise::default();
        let claimed = [
            ("host", "evil.example"),
            ("x-forwarded-host", "evil.example"),
        ];
        assert_eq!(
            bases(&plain, &claimed),
            ("http://10.0.0.5:8000".into(), "ws://10.0.0.5:8000".into())
        );
    }

    #[test]
    fn public_url_wins_and_keeps_its_prefix() {
        let advertise = Advertise {
            public_url: Some(parse_public_url("https://live.example.com/games/").unwrap()),
            trust_proxy: true,
        };
        assert_eq!(
            bases(&advertise, &[("x-forwarded-host", "other.example")]),
            (
                "https://live.example.com/games".into(),
                "wss://live.example.com/games".into()
            )
        );
    }

    #[test]
    fn a_trusted_proxy_sets_scheme_and_host() {
        let trusting = trusting();
        let xf = [
            ("host", "backend:8000"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "live.example.com, inner"),
        ];
        assert_eq!(bases(&trusting, &xf).1, "wss://live.example.com");
        let rfc = [(
            "forwarded",
            "for=1.2.3.4;Proto=https;host=\"live.example.com:8443\", for=5.6.7.8",
        )];
        assert_eq!(bases(&trusting, &rfc).0, "https://live.example.com:8443");
        // Only the scheme forwarded: the Host the proxy passed on.
        let proto_only = [("host", "live.example.com"), ("x-forwarded-proto", "https")];
        assert_eq!(bases(&trusting, &proto_only).1, "wss://live.example.com");
    }

    #[test]
    fn a_forwarded_port_is_added_to_a_host_that_names_none() {
        let trusting = trusting();
        // nginx: `proxy_set_header Host $host; ... X-Forwarded-Port $server_port`.
        let nginx = [("host", "live.example.com"), ("x-forwarded-port", "8080")];
        assert_eq!(bases(&trusting, &nginx).1, "ws://live.example.com:8080");
        let default_port = [
            ("host", "live.example.com"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-port", "443"),
        ];
        assert_eq!(bases(&trusting, &default_port).1, "wss://live.example.com");
        // A host with its own port keeps it.
        let own = [
            ("host", "live.example.com:9000"),
            ("x-forwarded-port", "8080"),
        ];
        assert_eq!(bases(&trusting, &own).1, "ws://live.example.com:9000");
        let junk = [("host", "live.example.com"), ("x-forwarded-port", "99999")];
        assert_eq!(bases(&trusting, &junk).1, "ws://live.example.com");
        // Without --trust-proxy the headers change nothing.
        assert_eq!(bases(&Advertise::default(), &nginx).1, "ws://10.0.0.5:8000");
    }

    #[test]
    fn junk_in_forwarded_headers_falls_back() {
        let trusting = trusting();
        let junk = [
            ("x-forwarded-host", "evil.example/path?x=\"<script>"),
            ("x-forwarded-proto", "gopher"),
        ];
        assert_eq!(bases(&trusting, &junk).1, "ws://10.0.0.5:8000");
        assert_eq!(valid_host("[::1]:8000").as_deref(), Some("[::1]:8000"));
        assert_eq!(valid_host("a b"), None);
    }

    #[test]
    fn public_url_must_be_a_plain_http_base() {
        assert!(parse_public_url("https://x.example/live").is_ok());
        for bad in [
            "ws://x.example",
            "x.example",
            "https://x.example/?a=1",
            "https://u:p@x.example",
        ] {
            assert!(parse_public_url(bad).is_err(), "{bad}");
        }
    }
}
