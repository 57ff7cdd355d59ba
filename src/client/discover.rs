//! Finding the games to test: `GET /api/live/games` of the target.

use std::time::Duration;

use serde::Deserialize;

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

/// Ids of the games the server lists, live ones first.
pub async fn games(
    http_base: &str,
    timeout: Duration,
) -> Result<Vec<(String, bool)>, DiscoverError> {
    let url = format!("{}/api/live/games", http_base.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| DiscoverError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        })?;
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|e| DiscoverError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        })?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(DiscoverError::Status { url, status });
    }
    let list: List = response.json().await.map_err(|e| DiscoverError::Invalid {
        url: url.clone(),
        reason: e.to_string(),
    })?;
    let mut games: Vec<(String, bool)> = list
        .games
        .into_iter()
        .map(|g| {
            let live = g.latest.and_then(|l| l.state).is_some_and(|s| s == "live");
            (g.id, live)
        })
        .collect();
    games.sort_by_key(|(_, live)| !live);
    Ok(games)
}
