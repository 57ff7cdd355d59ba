//! The game map: which ESPN event and which Kalshi market belong to which game.
//!
//! ESPN event ids, NBA game ids and Kalshi tickers share no arithmetic, so a real
//! deployment keeps such a map (built from date + teams); `mock-feeds/games.json` is
//! ours and `serve --games-map FILE` takes another.

use serde::Deserialize;

use crate::contract::{GameId, GameInfo, League, Team};

/// One game the server streams, and its ids upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogEntry {
    pub info: GameInfo,
    pub espn_event_id: String,
    /// The Kalshi market whose YES side is the home team winning; None: no market
    /// matched the game (it is served with ESPN's data alone).
    pub kalshi_home_market: Option<String>,
}

#[derive(Deserialize)]
struct GamesMap {
    games: Vec<MapEntry>,
}

#[derive(Deserialize)]
struct MapEntry {
    league: League,
    scheduled_at: String,
    nba_game_id: String,
    espn_event_id: String,
    kalshi_home_market: String,
    home: MapTeam,
    away: MapTeam,
}

#[derive(Deserialize)]
struct MapTeam {
    nba: String,
    name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("the games map is not valid: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the games map has an invalid game id {id:?}: {reason}")]
    GameId {
        id: String,
        reason: crate::contract::GameIdError,
    },
    #[error("the games map lists game {0} twice")]
    Duplicate(String),
}

pub fn parse(json: &str) -> Result<Vec<CatalogEntry>, CatalogError> {
    let map: GamesMap = serde_json::from_str(json)?;
    let mut out: Vec<CatalogEntry> = Vec::with_capacity(map.games.len());
    for g in map.games {
        let id = GameId::parse(&g.nba_game_id).map_err(|reason| CatalogError::GameId {
            id: g.nba_game_id.clone(),
            reason,
        })?;
        if out.iter().any(|e| e.info.id == id) {
            return Err(CatalogError::Duplicate(g.nba_game_id));
        }
        out.push(CatalogEntry {
            info: GameInfo {
                id,
                league: g.league,
                home: Team {
                    abbreviation: g.home.nba,
                    name: g.home.name,
                },
                away: Team {
                    abbreviation: g.away.nba,
                    name: g.away.name,
                },
                scheduled_at: g.scheduled_at,
            },
            espn_event_id: g.espn_event_id,
            kalshi_home_market: Some(g.kalshi_home_market),
        });
    }
    Ok(out)
}
