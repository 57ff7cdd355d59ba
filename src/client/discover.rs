//! Finding the games to test: `GET /api/live/games` of the target.

use serde::Deserialize;

use super::http::{self, Answer};
use super::target::{ConnectOptions, Target};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoverError {
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} did not answer a games list: {reason}")]
    Invalid { url: String, reason: String },
}

#[derive(Deserialize)]
struct List {
    games: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    id: String,
    latest: Option<Latest>,
}

#[derive(Deserialize)]
struct Latest {
    state: Option<String>,
}

/// A game the server lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub id: String,
    pub live: bool,
}

/// The games the server lists, live ones first.
pub async fn games(
    target: &Target,
    options: &ConnectOptions,
) -> Result<Vec<Listed>, DiscoverError> {
    let url = target.api("/api/live/games");
    let shown = url.to_string();
    let client = http::client(options).map_err(|e| DiscoverError::Unreachable {
        url: shown.clone(),
        reason: e.to_string(),
    })?;
    let body = match http::get(&client, url, options.connect_timeout).await {
        Answer::Reply { status: 200, body } => body,
        Answer::Reply { status, .. } => return Err(DiscoverError::Status { url: shown, status }),
        Answer::Unreachable(reason) => {
            return Err(DiscoverError::Unreachable { url: shown, reason });
        }
    };
    let list: List = serde_json::from_slice(&body).map_err(|e| DiscoverError::Invalid {
        url: shown.clone(),
        reason: e.to_string(),
    })?;
    let mut games: Vec<Listed> = list
        .games
        .into_iter()
        .filter(|g| {
            let keep = super::target::addressable(&g.id);
            if !keep {
                tracing::warn!(url = %shown, id = ?g.id, "skipping a listed game whose id no URL path can hold");
            }
            keep
        })
        .map(|g| Listed {
            live: g.latest.and_then(|l| l.state).is_some_and(|s| s == "live"),
            id: g.id,
        })
        .collect();
    games.sort_by_key(|g| !g.live);
    Ok(games)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server whose every answer is `body` as JSON.
    async fn listing(body: &'static str) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let mut head = Vec::new();
                let mut chunk = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&chunk[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tcp.write_all(answer.as_bytes()).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn ids_that_would_address_another_path_are_skipped_and_the_rest_kept() {
        let addr = listing(
            r#"{"games":[{"id":"."},{"id":".."},{"id":""},{"id":"%2e%2e"},{"id":"g 1"},{"id":"g2","latest":{"state":"live"}}]}"#,
        )
        .await;
        let target = Target::parse(&format!("http://{addr}")).unwrap();
        let listed = games(&target, &ConnectOptions::default()).await.unwrap();
        let ids: Vec<&str> = listed.iter().map(|g| g.id.as_str()).collect();
        // Live first; "%2e%2e" and "g 1" are encoded into one segment, so they stay.
        assert_eq!(ids, ["g2", "%2e%2e", "g 1"]);
    }
}
