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

    /// Forgets every entry; returns how many there were.
    pub fn clear(&mut self) -> usize {
        let n = self.entries.len();
        self.entries.clear();
        n
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
}
