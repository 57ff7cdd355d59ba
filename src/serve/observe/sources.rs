//! The health of each upstream source, as its feed last reported it: what `/health`
//! shows, with how long ago each last answered well.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Instant;

use crate::contract::{Source, SourceHealth};
use crate::feeds::Link;
use crate::feeds::discovery::Discovered;
use crate::feeds::health::Liveness;

/// The health of each upstream source, as the feeds last reported it.
#[derive(Default)]
pub struct SourceBoard {
    entries: RwLock<HashMap<Source, SourceEntry>>,
    /// Each watched source's last success, as its feed publishes it (every success,
    /// not only changes of state).
    liveness: RwLock<HashMap<Source, Liveness>>,
    /// How each streaming source is reached, with why, as its feed last said.
    links: RwLock<HashMap<Source, (Link, Option<String>)>>,
    /// What the last discovery found, when games are discovered (no games map).
    discovery: RwLock<Option<DiscoveryView>>,
}

/// What the last discovery found, as `/health` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoveryView {
    pub games: usize,
    /// The games without a Kalshi market, as people name them.
    pub unmatched: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct SourceEntry {
    pub state: SourceHealth,
    pub detail: Option<String>,
    pub last_ok: Option<Instant>,
}

impl SourceBoard {
    pub fn new(sources: &[Source]) -> Self {
        let entries = sources
            .iter()
            .map(|s| {
                (
                    *s,
                    SourceEntry {
                        state: SourceHealth::Stale,
                        detail: Some("no answer yet".into()),
                        last_ok: None,
                    },
                )
            })
            .collect();
        Self {
            entries: RwLock::new(entries),
            liveness: RwLock::default(),
            links: RwLock::default(),
            discovery: RwLock::default(),
        }
    }

    /// Reads `source`'s last success from `liveness` from now on.
    pub fn watch(&self, source: Source, liveness: Liveness) {
        self.liveness
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(source, liveness);
    }

    pub fn set(&self, source: Source, state: SourceHealth, detail: Option<String>) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        let entry = entries.entry(source).or_insert(SourceEntry {
            state,
            detail: None,
            last_ok: None,
        });
        entry.state = state;
        entry.detail = detail;
        if state == SourceHealth::Ok {
            entry.last_ok = Some(Instant::now());
        }
    }

    pub fn set_discovery(&self, found: &Discovered) {
        let view = DiscoveryView {
            games: found.games.len(),
            unmatched: found.unmatched.clone(),
        };
        *self.discovery.write().unwrap_or_else(|e| e.into_inner()) = Some(view);
    }

    pub fn discovery(&self) -> Option<DiscoveryView> {
        self.discovery
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_link(&self, source: Source, link: Link, detail: Option<String>) {
        self.links
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(source, (link, detail));
    }

    /// How `source` is reached, when its feed has said (streaming sources only).
    pub fn link(&self, source: Source) -> Option<(Link, Option<String>)> {
        self.links
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&source)
            .cloned()
    }

    pub fn get(&self, source: Source) -> Option<SourceEntry> {
        self.entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&source)
            .cloned()
    }

    pub fn all(&self) -> Vec<(Source, SourceEntry)> {
        let mut all: Vec<_> = self
            .entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(s, e)| (*s, e.clone()))
            .collect();
        let liveness = self.liveness.read().unwrap_or_else(|e| e.into_inner());
        for (source, entry) in &mut all {
            if let Some(last) = liveness.get(source).and_then(Liveness::last) {
                entry.last_ok = Some(last);
            }
        }
        all.sort_by_key(|(s, _)| s.as_str());
        all
    }
}
