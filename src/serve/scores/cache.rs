//! The scores cache: entries expire a fixed time after they were put. Pure: the
//! current time is a parameter.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// A map whose entries expire `ttl` after they were put.
#[derive(Debug)]
pub struct TtlCache<K, V> {
    ttl: Duration,
    entries: HashMap<K, (Instant, V)>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: HashMap::new(),
        }
    }

    pub fn get(&self, key: &K, now: Instant) -> Option<V> {
        self.entries
            .get(key)
            .filter(|(at, _)| now.duration_since(*at) < self.ttl)
            .map(|(_, v)| v.clone())
    }

    /// The entry with how long ago it was put.
    pub fn get_aged(&self, key: &K, now: Instant) -> Option<(V, Duration)> {
        self.entries
            .get(key)
            .map(|(at, v)| (now.duration_since(*at), v))
            .filter(|(age, _)| *age < self.ttl)
            .map(|(age, v)| (v.clone(), age))
    }

    pub fn put(&mut self, key: K, value: V, now: Instant) {
        self.entries.insert(key, (now, value));
    }

    /// Removes the entry for `key` if it has expired; true if it did.
    pub fn remove_expired(&mut self, key: &K, now: Instant) -> bool {
        let expired = self
            .entries
            .get(key)
            .is_some_and(|(at, _)| now.duration_since(*at) >= self.ttl);
        if expired {
            self.entries.remove(key);
        }
        expired
    }

    /// Forgets every entry; returns their keys.
    pub fn clear(&mut self) -> Vec<K> {
        self.entries.drain().map(|(key, _)| key).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn ttl_cache_expires() {
        let t0 = Instant::now();
        let mut c = TtlCache::new(S);
        c.put("nfl", 1, t0);
        assert_eq!(c.get(&"nfl", t0 + S / 2), Some(1));
        assert_eq!(c.get(&"nfl", t0 + S), None);
    }

    #[test]
    fn an_expired_entry_is_removed_once() {
        let t0 = Instant::now();
        let mut c = TtlCache::new(S);
        c.put("nfl", 1, t0);
        assert!(!c.remove_expired(&"nfl", t0 + S / 2));
        assert!(c.remove_expired(&"nfl", t0 + S));
        assert!(!c.remove_expired(&"nfl", t0 + S));
        c.put("nhl", 2, t0);
        assert_eq!(c.clear(), vec!["nhl"]);
    }
}
