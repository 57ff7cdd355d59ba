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
