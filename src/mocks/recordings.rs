//! The recorded upstream data in `mock-feeds/`, built into the binary (or read from
//! `--mock-feeds DIR`), parsed once at start.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::redate;
use crate::feeds::espn::parse_time;

/// Files of `mock-feeds/` built into the binary, by path relative to that folder.
/// `tests` check that every recording in the folder is listed here.
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "games.json",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/mock-feeds/games.json"
        )),
    ),
    (
        "apisports/nfl.json",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/mock-feeds/apisports/nfl.json"
        )),
    ),
    (
        "apisports/nhl.json",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/mock-feeds/apisports/nhl.json"
        )),
    ),
    (
        "espn/nfl-nhl.json",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/mock-feeds/espn/nfl-nhl.json"
        )),
    ),
    (
        "espn/nba/401704823.summary.json",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/mock-feeds/espn/nba/401704823.summary.json"
        )),
    ),
    (
        "espn/nba/401704828.summary.json",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/mock-feeds/espn/nba/401704828.summary.json"
        )),
    ),
    (
        "espn/nba/401704831.summary.json",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/mock-feeds/espn/nba/401704831.summary.json"
        )),
    ),
    (
        "espn/nba/401704837.summary.json",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/mock-feeds/espn/nba/401704837.summary.json"
        )),
    ),
    (
        "espn/nba/401704842.summary.json",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/mock-feeds/espn/nba/401704842.summary.json"
        )),
    ),
    (
        "espn/nba/401704849.summary.json",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/mock-feeds/espn/nba/401704849.summary.json"
        )),
    ),
    (
        "kalshi/KXNBAGAME-24NOV16MILBOS.json",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/mock-feeds/kalshi/KXNBAGAME-24NOV16MILBOS.json"
        )),
    ),
    (
        "kalshi/KXNBAGAME-24NOV17GSWLAL.json",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/mock-feeds/kalshi/KXNBAGAME-24NOV17GSWLAL.json"
        )),
    ),
    (
        "kalshi/KXNBAGAME-24NOV17MINDEN.json",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/mock-feeds/kalshi/KXNBAGAME-24NOV17MINDEN.json"
        )),
    ),
    (
        "kalshi/KXNBAGAME-24NOV18PHINYK.json",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/mock-feeds/kalshi/KXNBAGAME-24NOV18PHINYK.json"
        )),
    ),
    (
        "kalshi/KXNBAGAME-24NOV19SASOKC.json",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/mock-feeds/kalshi/KXNBAGAME-24NOV19SASOKC.json"
        )),
    ),
    (
        "kalshi/KXNBAGAME-24NOV20ORLCLE.json",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/mock-feeds/kalshi/KXNBAGAME-24NOV20ORLCLE.json"
        )),
    ),
];

/// One recorded NBA game: ESPN summary plus its Kalshi event.
#[derive(Debug)]
pub struct NbaRecording {
    pub nba_game_id: String,
    pub espn_event_id: String,
    /// The ESPN summary as recorded (final state).
    pub summary: Value,
    /// Seconds after tip-off of each play in `summary.plays`, in play order.
    pub play_offsets: Vec<f64>,
    /// Wall duration of the game, tip-off to the last play.
    pub duration_s: f64,
    pub kalshi_event: Value,
    /// Market objects as recorded (without live prices); the first is the home market.
    pub kalshi_markets: Vec<Value>,
    /// `[seconds since tip, yes_bid, yes_ask, last]` of the home market.
    pub home_price_history: Vec<[f64; 4]>,
}

/// One league's recorded API-SPORTS games.
#[derive(Debug)]
pub struct ApiSportsRecording {
    pub league_id: u32,
    pub season: Value,
    pub duration_s: f64,
    pub games: Vec<Value>,
    /// Each game as ESPN knows it, in the order of `games`.
    pub espn: Vec<EspnSide>,
}

/// An API-SPORTS game's ESPN event id and teams (`espn/nfl-nhl.json`).
#[derive(Debug, Clone, Deserialize)]
pub struct EspnSide {
    pub espn_event_id: String,
    /// ESPN's abbreviation of the home team, e.g. `CHI`.
    pub home: String,
    pub away: String,
}

#[derive(Deserialize)]
struct EspnSides {
    nfl: HashMap<String, EspnSide>,
    nhl: HashMap<String, EspnSide>,
}

#[derive(Debug)]
pub struct Recordings {
    /// `games.json` as text, the map the aggregator joins ids with.
    pub games_map: String,
    pub nba: Vec<NbaRecording>,
    pub nfl: ApiSportsRecording,
    pub nhl: ApiSportsRecording,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {detail}")]
    Invalid { path: String, detail: String },
}

#[derive(Deserialize)]
struct MapFile {
    games: Vec<MapGame>,
}

#[derive(Deserialize)]
struct MapGame {
    nba_game_id: String,
    espn_event_id: String,
    kalshi_event_ticker: String,
}

#[derive(Deserialize)]
struct KalshiFile {
    event: Value,
    markets: Vec<Value>,
    home_price_history: Vec<(f64, String, String, String)>,
}

#[derive(Deserialize)]
struct ApiSportsFile {
    league: u32,
    season: Value,
    duration_s: f64,
    games: Vec<Value>,
}

impl Recordings {
    /// The recordings built into the binary.
    pub fn embedded() -> Result<Self, RecordingError> {
        Self::load(|path| {
            EMBEDDED
                .iter()
                .find(|(p, _)| *p == path)
                .map(|(_, text)| (*text).to_owned())
                .ok_or_else(|| RecordingError::Read {
                    path: path.to_owned(),
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, "not embedded"),
                })
        })
    }

    /// Recordings read from a folder laid out like `mock-feeds/`.
    pub fn from_dir(dir: &Path) -> Result<Self, RecordingError> {
        Self::load(|path| {
            let full = dir.join(path);
            std::fs::read_to_string(&full).map_err(|source| RecordingError::Read {
                path: full.display().to_string(),
                source,
            })
        })
    }

    fn load(read: impl Fn(&str) -> Result<String, RecordingError>) -> Result<Self, RecordingError> {
        let games_map = read("games.json")?;
        let map: MapFile = parse("games.json", &games_map)?;
        let mut nba = Vec::new();
        for g in map.games {
            let summary_path = format!("espn/nba/{}.summary.json", g.espn_event_id);
            let summary: Value = parse(&summary_path, &read(&summary_path)?)?;
            let kalshi_path = format!("kalshi/{}.json", g.kalshi_event_ticker);
            let kalshi: KalshiFile = parse(&kalshi_path, &read(&kalshi_path)?)?;
            nba.push(nba_recording(g, summary, kalshi, &summary_path)?);
        }
        let nfl: ApiSportsFile = parse("apisports/nfl.json", &read("apisports/nfl.json")?)?;
        let nhl: ApiSportsFile = parse("apisports/nhl.json", &read("apisports/nhl.json")?)?;
        let sides: EspnSides = parse("espn/nfl-nhl.json", &read("espn/nfl-nhl.json")?)?;
        Ok(Recordings {
            games_map,
            nba,
            nfl: api_sports(nfl, &sides.nfl, "apisports/nfl.json")?,
            nhl: api_sports(nhl, &sides.nhl, "apisports/nhl.json")?,
        })
    }
}

impl Recordings {
    /// The recordings moved to the day of `now_unix_s` (US Eastern): each game keeps
    /// its time of day, and every date of it (ESPN's, Kalshi's tickers and times,
    /// API-SPORTS') moves with it, so the mocks show today's games as the real
    /// upstreams would. Each game's shift in days is returned by ESPN event id.
    pub fn served_on(&mut self, now_unix_s: i64) -> HashMap<String, i64> {
        let mut shifts = HashMap::new();
        for game in &mut self.nba {
            let tip = game.summary["header"]["competitions"][0]["date"]
                .as_str()
                .and_then(parse_time)
                .unwrap_or(now_unix_s);
            let days = redate::days_between(tip, now_unix_s);
            redate::shift_value(&mut game.summary, days);
            redate::shift_value(&mut game.kalshi_event, days);
            game.kalshi_markets
                .iter_mut()
                .for_each(|m| redate::shift_value(m, days));
            shifts.insert(game.espn_event_id.clone(), days);
        }
        self.games_map =
            redated_map(&self.games_map, &shifts).unwrap_or_else(|| self.games_map.clone());
        for league in [&mut self.nfl, &mut self.nhl] {
            for game in &mut league.games {
                let start = game["timestamp"]
                    .as_i64()
                    .or_else(|| game["game"]["date"]["timestamp"].as_i64())
                    .unwrap_or(now_unix_s);
                redate::shift_value(game, redate::days_between(start, now_unix_s));
            }
        }
        shifts
    }
}

/// The games map with each game moved as its recordings were.
fn redated_map(text: &str, shifts: &HashMap<String, i64>) -> Option<String> {
    let mut map: Value = serde_json::from_str(text).ok()?;
    for game in map["games"].as_array_mut()? {
        let days = game["espn_event_id"]
            .as_str()
            .and_then(|id| shifts.get(id))
            .copied()
            .unwrap_or(0);
        redate::shift_value(game, days);
    }
    Some(map.to_string())
}

/// A league's API-SPORTS games, each with its ESPN side.
fn api_sports(
    f: ApiSportsFile,
    sides: &HashMap<String, EspnSide>,
    path: &str,
) -> Result<ApiSportsRecording, RecordingError> {
    let espn = f
        .games
        .iter()
        .map(|game| {
            let id = game["game"]["id"].as_u64().or_else(|| game["id"].as_u64());
            id.and_then(|id| sides.get(&id.to_string()).cloned())
                .ok_or_else(|| RecordingError::Invalid {
                    path: path.to_owned(),
                    detail: format!("game {id:?} has no ESPN side in espn/nfl-nhl.json"),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ApiSportsRecording {
        league_id: f.league,
        season: f.season,
        duration_s: f.duration_s,
        games: f.games,
        espn,
    })
}

fn parse<T: serde::de::DeserializeOwned>(path: &str, text: &str) -> Result<T, RecordingError> {
    serde_json::from_str(text).map_err(|e| RecordingError::Invalid {
        path: path.to_owned(),
        detail: e.to_string(),
    })
}

fn nba_recording(
    g: MapGame,
    summary: Value,
    kalshi: KalshiFile,
    path: &str,
) -> Result<NbaRecording, RecordingError> {
    let invalid = |detail: &str| RecordingError::Invalid {
        path: path.to_owned(),
        detail: detail.to_owned(),
    };
    let tip = summary["header"]["competitions"][0]["date"]
        .as_str()
        .and_then(parse_time)
        .ok_or_else(|| invalid("header.competitions[0].date is not an ESPN time"))?;
    let plays = summary["plays"]
        .as_array()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| invalid("no plays"))?;
    let play_offsets = plays
        .iter()
        .map(|p| {
            p["wallclock"]
                .as_str()
                .and_then(parse_time)
                .map(|t| (t - tip) as f64)
                .ok_or_else(|| invalid("a play has no valid wallclock"))
        })
        .collect::<Result<Vec<f64>, _>>()?;
    let duration_s = play_offsets.last().copied().unwrap_or(0.0).max(1.0);
    let home_price_history = kalshi
        .home_price_history
        .iter()
        .map(|(t, bid, ask, last)| {
            let p = |s: &str| s.parse::<f64>().map_err(|_| invalid("bad kalshi price"));
            Ok([*t, p(bid)?, p(ask)?, p(last)?])
        })
        .collect::<Result<Vec<_>, RecordingError>>()?;
    Ok(NbaRecording {
        nba_game_id: g.nba_game_id,
        espn_event_id: g.espn_event_id,
        summary,
        play_offsets,
        duration_s,
        kalshi_event: kalshi.event,
        kalshi_markets: kalshi.markets,
        home_price_history,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_recordings_load_and_include_game_0022400196() {
        let r = Recordings::embedded().unwrap();
        assert!(r.nba.len() >= 6);
        assert!(r.nba.iter().any(|g| g.nba_game_id == "0022400196"));
        for g in &r.nba {
            assert!(
                g.play_offsets.windows(2).all(|w| w[0] <= w[1]),
                "plays in time order"
            );
            assert!(g.duration_s > 3600.0, "an NBA game takes over an hour");
        }
        assert!(!r.nfl.games.is_empty() && !r.nhl.games.is_empty());
    }

    #[test]
    fn every_recording_in_the_folder_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("mock-feeds");
        let mut on_disk = Vec::new();
        for sub in ["", "apisports", "espn", "espn/nba", "kalshi"] {
            for entry in std::fs::read_dir(root.join(sub)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "json") {
                    on_disk.push(path.strip_prefix(&root).unwrap().display().to_string());
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<_> = EMBEDDED.iter().map(|(p, _)| p.to_string()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
    }
}
