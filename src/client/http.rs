//! HTTP requests to the target with a capped body: a hostile or broken server cannot
//! make a command read more than [`MAX_BODY_BYTES`], and every failure is one line.

use std::time::Duration;

use super::target::ConnectOptions;

/// Bodies larger than this are refused rather than read into memory.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// The HTTP client could not be built (its TLS backend refused the configuration).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client: {0}")]
pub struct ClientError(#[from] reqwest::Error);

/// The HTTP client of a command: its options (headers, TLS trust, timeouts), no
/// redirects (a check must see what the server answered, not where it pointed).
pub fn client(options: &ConnectOptions) -> Result<reqwest::Client, ClientError> {
    Ok(builder(options).build()?)
}

/// [`client`]'s builder, for tools that build their own clients (goose).
pub fn builder(options: &ConnectOptions) -> reqwest::ClientBuilder {
    stream_builder(options).timeout(options.connect_timeout)
}

/// A client for long-lived streams (Server-Sent Events): no limit on a response's
/// whole life, only on connecting (the reader watches for silence itself).
pub fn stream_client(options: &ConnectOptions) -> Result<reqwest::Client, ClientError> {
    Ok(stream_builder(options).build()?)
}

fn stream_builder(options: &ConnectOptions) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder()
        .connect_timeout(options.connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(super::ws::AGENT)
        .default_headers(options.headers.clone());
    match &options.tls {
        Some(tls) => builder.tls_backend_preconfigured(rustls::ClientConfig::clone(tls)),
        None => builder,
    }
}

/// What a request came back with.
#[derive(Debug)]
pub enum Answer {
    Reply {
        status: u16,
        body: Vec<u8>,
    },
    /// No HTTP answer at all: refused, DNS, TLS, timeout, a body over the cap; the
    /// reason in one line.
    Unreachable(String),
}

/// `GET url`.
pub async fn get(client: &reqwest::Client, url: url::Url, timeout: Duration) -> Answer {
    send(client.get(url), timeout).await
}

/// Sends a request and reads at most [`MAX_BODY_BYTES`] of its body.
pub async fn send(request: reqwest::RequestBuilder, timeout: Duration) -> Answer {
    let mut response = match request.send().await {
        Ok(r) => r,
        Err(e) => return Answer::Unreachable(reason(&e, timeout)),
    };
    let status = response.status().as_u16();
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Answer::Unreachable(format!(
                        "HTTP {status} with a body over {} MiB",
                        MAX_BODY_BYTES >> 20
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Answer::Reply { status, body },
            Err(e) => return Answer::Unreachable(reason(&e, timeout)),
        }
    }
}

/// One line saying why a request got no answer, from the error and its causes.
pub fn reason(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {}", humantime::format_duration(timeout));
    }
    if let Some((_, why)) = super::tls::failure(e) {
        return format!("TLS failed: {why}");
    }
    let mut parts: Vec<String> = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = source {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = err.source();
    }
    let all = parts.join(": ");
    let innermost = parts.last().cloned().unwrap_or_default();
    let lower = all.to_lowercase();
    if lower.contains("connection refused") {
        "connection refused".into()
    } else if lower.contains("dns") || lower.contains("lookup") || lower.contains("resolve") {
        format!("cannot resolve the host: {innermost}")
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        format!("TLS failed: {innermost}")
    } else {
        all
    }
}
