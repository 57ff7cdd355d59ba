//! serve's own `/metrics`, read back: a snapshot of every `livegames_*` series at one
//! instant, with the sums, window increases and histogram quantiles the ops page
//! and its alerts need, computed the way Prometheus computes them.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

/// A series' name and labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    name: String,
    labels: Vec<(String, String)>,
}

/// One series: its key (shared by every snapshot of a ring that holds it) and value.
#[derive(Debug, Clone, PartialEq)]
struct Series {
    key: Arc<Key>,
    value: f64,
}

/// The keys a ring of snapshots has seen, so its snapshots share one copy of each
/// (a compacted snapshot is then its values and pointers, about a kilobyte).
pub type Keys = HashSet<Arc<Key>>;

/// Every `livegames_*` series at one instant.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Unix ms, for the charts' time axis.
    pub at_ms: i64,
    pub at: Instant,
    series: Vec<Series>,
}

impl Snapshot {
    /// Reads an exposition (Prometheus text or OpenMetrics); comments, other
    /// families and unreadable lines are passed over.
    pub fn parse(text: &str, at_ms: i64, at: Instant) -> Snapshot {
        let series = text
            .lines()
            .filter(|l| l.starts_with("livegames_"))
            .filter_map(parse_line)
            .collect();
        Snapshot { at_ms, at, series }
    }

    /// Only the series named in `keep`, each with only the labels listed beside its
    /// name; series that become the same are added together (a histogram's buckets
    /// over every route, say). What a ring of snapshots keeps.
    pub fn compact(&self, keep: &[(&str, &[&str])], keys: &mut Keys) -> Snapshot {
        let mut series: Vec<Series> = Vec::new();
        for s in &self.series {
            let Some((_, kept)) = keep.iter().find(|(name, _)| *name == s.key.name) else {
                continue;
            };
            let key = Key {
                name: s.key.name.clone(),
                labels: s
                    .key
                    .labels
                    .iter()
                    .filter(|(k, _)| kept.contains(&k.as_str()))
                    .cloned()
                    .collect(),
            };
            match series.iter_mut().find(|o| *o.key == key) {
                Some(same) => same.value += s.value,
                None => {
                    let key = match keys.get(&key) {
                        Some(shared) => shared.clone(),
                        None => {
                            let shared = Arc::new(key);
                            keys.insert(shared.clone());
                            shared
                        }
                    };
                    series.push(Series {
                        key,
                        value: s.value,
                    });
                }
            }
        }
        series.shrink_to_fit();
        Snapshot {
            at_ms: self.at_ms,
            at: self.at,
            series,
        }
    }

    /// How many series it holds.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Series> + 'a {
        self.series.iter().filter(move |s| {
            s.key.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.key.labels.iter().any(|(sk, sv)| sk == k && sv == v))
        })
    }

    /// The sum of the series named `name` that carry all of `labels`; None when there
    /// is no such series (not measured, never 0).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.matching(name, labels)
            .map(|s| s.value)
            .fold(None, |acc, v| Some(acc.unwrap_or(0.0) + v))
    }

    /// The largest of those series.
    pub fn max(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.matching(name, labels)
            .map(|s| s.value)
            .fold(None, |acc: Option<f64>, v| {
                Some(acc.map_or(v, |a| a.max(v)))
            })
    }

    /// Each value of label `key` among the series named `name`, with its value.
    pub fn by_label(&self, name: &str, key: &str) -> Vec<(String, f64)> {
        self.series
            .iter()
            .filter(|s| s.key.name == name)
            .filter_map(|s| {
                let (_, v) = s.key.labels.iter().find(|(k, _)| k == key)?;
                Some((v.clone(), s.value))
            })
            .collect()
    }

    /// A histogram's cumulative buckets (upper bound, count), summed over its other
    /// labels, in order of the bound.
    pub fn buckets(&self, histogram: &str, labels: &[(&str, &str)]) -> Vec<(f64, f64)> {
        let name = format!("{histogram}_bucket");
        let mut buckets: Vec<(f64, f64)> = Vec::new();
        for s in self.matching(&name, labels) {
            let Some(bound) = s
                .key
                .labels
                .iter()
                .find(|(k, _)| k == "le")
                .and_then(|(_, v)| parse_number(v))
            else {
                continue;
            };
            match buckets.iter_mut().find(|(b, _)| *b == bound) {
                Some(bucket) => bucket.1 += s.value,
                None => buckets.push((bound, s.value)),
            }
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        buckets
    }
}

/// How much a counter grew from `before` to `now` (a restart's reset counts as the
/// new value, as Prometheus does).
pub fn increase(now: Option<f64>, before: Option<f64>) -> Option<f64> {
    let now = now?;
    let before = before.unwrap_or(0.0);
    Some(if now >= before { now - before } else { now })
}

/// The `q` quantile of the observations between two snapshots of a histogram's
/// buckets, interpolated inside its bucket (Prometheus's `histogram_quantile`);
/// None with no observations.
pub fn quantile(q: f64, now: &[(f64, f64)], before: &[(f64, f64)]) -> Option<f64> {
    let counts: Vec<(f64, f64)> = now
        .iter()
        .map(|(bound, n)| {
            let old = before
                .iter()
                .find(|(b, _)| b == bound)
                .map_or(0.0, |(_, c)| *c);
            (*bound, (n - old).max(0.0))
        })
        .collect();
    let total = counts.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for (bound, cumulative) in counts {
        if cumulative >= rank {
            if bound.is_infinite() {
                return Some(lower.0);
            }
            let inside = cumulative - lower.1;
            let fraction = if inside > 0.0 {
                (rank - lower.1) / inside
            } else {
                1.0
            };
            return Some(lower.0 + (bound - lower.0) * fraction);
        }
        lower = (bound, cumulative);
    }
    Some(lower.0)
}

fn parse_number(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    }
}

/// `name{k="v",...} value [timestamp]`.
fn parse_line(line: &str) -> Option<Series> {
    let (head, rest) = match line.find('{') {
        Some(open) => {
            let close = line[open..].find('}')? + open;
            (&line[..=close], &line[close + 1..])
        }
        None => line.split_at(line.find(' ')?),
    };
    let value = parse_number(rest.split_whitespace().next()?)?;
    let (name, labels) = match head.split_once('{') {
        Some((name, labels)) => (name, parse_labels(labels.strip_suffix('}')?)?),
        None => (head, Vec::new()),
    };
    Some(Series {
        key: Arc::new(Key {
            name: name.to_owned(),
            labels,
        }),
        value,
    })
}

/// `k="v",k2="v2"` (values with `\"`, `\\` and `\n` escapes).
fn parse_labels(mut text: &str) -> Option<Vec<(String, String)>> {
    let mut labels = Vec::new();
    while !text.is_empty() {
        let (key, rest) = text.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, c) => value.push(c),
            }
        };
        labels.push((key.trim_start_matches(',').trim().to_owned(), value));
        text = rest[end + 1..].trim_start_matches(',');
    }
    Some(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP livegames_http_requests HTTP requests answered.
# TYPE livegames_http_requests counter
livegames_http_requests_total{route="/health",status="200"} 7
livegames_http_requests_total{route="/api/nfl/scores",status="503"} 3
livegames_circuit_state{league="nfl"} 2
livegames_circuit_state{league="nhl"} 0
livegames_uptime_seconds 12.5
livegames_x_bucket{route="a",le="0.1"} 2
livegames_x_bucket{route="a",le="0.2"} 6
livegames_x_bucket{route="a",le="+Inf"} 10
livegames_x_bucket{route="b",le="0.1"} 0
livegames_x_bucket{route="b",le="0.2"} 0
livegames_x_bucket{route="b",le="+Inf"} 0
livegames_odd{v="a \"quoted\", \\ value"} 1
other_family_total 99
# EOF
"#;

    fn snapshot() -> Snapshot {
        Snapshot::parse(TEXT, 0, Instant::now())
    }

    #[test]
    fn sums_filter_by_labels_and_absent_is_not_zero() {
        let s = snapshot();
        assert_eq!(s.sum("livegames_http_requests_total", &[]), Some(10.0));
        assert_eq!(
            s.sum("livegames_http_requests_total", &[("status", "503")]),
            Some(3.0)
        );
        assert_eq!(
            s.sum("livegames_http_requests_total", &[("status", "500")]),
            None
        );
        assert_eq!(s.sum("other_family_total", &[]), None);
        assert_eq!(s.max("livegames_circuit_state", &[]), Some(2.0));
        assert_eq!(s.sum("livegames_uptime_seconds", &[]), Some(12.5));
        assert_eq!(
            s.sum("livegames_odd", &[("v", "a \"quoted\", \\ value")]),
            Some(1.0)
        );
        assert_eq!(
            s.by_label("livegames_circuit_state", "league"),
            vec![("nfl".into(), 2.0), ("nhl".into(), 0.0)]
        );
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket_like_prometheus() {
        let now = snapshot().buckets("livegames_x", &[]);
        assert_eq!(now, vec![(0.1, 2.0), (0.2, 6.0), (f64::INFINITY, 10.0)]);
        // rank 5 of 10: 3 of the 4 observations between 0.1 and 0.2.
        assert!((quantile(0.5, &now, &[]).unwrap() - 0.175).abs() < 1e-9);
        // Beyond the last finite bound: that bound, as Prometheus answers.
        assert_eq!(quantile(0.99, &now, &[]), Some(0.2));
        assert_eq!(quantile(0.5, &now, &now), None, "nothing observed between");
    }

    #[test]
    fn a_compact_snapshot_keeps_what_is_asked_and_adds_what_collapses() {
        let mut keys = Keys::default();
        let keep: &[(&str, &[&str])] = &[
            ("livegames_x_bucket", &["le"]),
            ("livegames_http_requests_total", &["status"]),
        ];
        let s = snapshot().compact(keep, &mut keys);
        let again = snapshot().compact(keep, &mut keys);
        assert_eq!(
            keys.len(),
            5,
            "one key per kept series, shared by both snapshots"
        );
        assert!(Arc::ptr_eq(&s.series[0].key, &again.series[0].key));
        assert_eq!(s.len(), 5, "3 buckets over both routes, 2 statuses");
        assert_eq!(
            s.buckets("livegames_x", &[]),
            snapshot().buckets("livegames_x", &[])
        );
        assert_eq!(
            s.sum("livegames_http_requests_total", &[("status", "503")]),
            Some(3.0)
        );
        assert_eq!(s.sum("livegames_uptime_seconds", &[]), None);
    }

    #[test]
    fn increases_survive_a_reset() {
        assert_eq!(increase(Some(10.0), Some(4.0)), Some(6.0));
        assert_eq!(increase(Some(3.0), Some(4.0)), Some(3.0));
        assert_eq!(increase(None, Some(4.0)), None);
    }
}
