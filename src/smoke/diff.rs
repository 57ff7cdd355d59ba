//! Where two JSON values differ: in content ([`first_difference`]) or in shape
//! ([`shape_diff`]), located by JSON pointer.

use serde_json::Value;

use crate::contract::check::json_kind;
use crate::text::excerpt;

/// Where two values first differ (a JSON pointer), if they do.
pub fn first_difference(a: &Value, b: &Value, at: String) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys()) {
                let next = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                match (x.get(key), y.get(key)) {
                    (Some(p), Some(q)) => {
                        if let Some(found) = first_difference(p, q, next) {
                            return Some(found);
                        }
                    }
                    _ => return Some(next),
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Some(at);
            }
            x.iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (p, q))| first_difference(p, q, format!("{at}/{i}")))
        }
        (Value::Number(x), Value::Number(y)) => (x.as_f64() != y.as_f64()).then_some(at),
        _ => (a != b).then_some(at),
    }
}

/// Whether `actual` has the shape of `reference`: the same keys at every level and
/// the same kinds of values (`null` stands in for any kind: a source may be down).
pub fn shape_diff(reference: &Value, actual: &Value, at: &str) -> Option<(String, String, String)> {
    match (reference, actual) {
        (Value::Null, _) | (_, Value::Null) => None,
        (Value::Object(r), Value::Object(a)) => {
            if let Some(missing) = r.keys().find(|k| !a.contains_key(*k)) {
                return Some((
                    at.to_owned(),
                    format!("a field {missing:?}"),
                    "missing".into(),
                ));
            }
            if let Some(extra) = a.keys().find(|k| !r.contains_key(*k)) {
                return Some((
                    format!("{at}/{extra}"),
                    "no such field (live updates do not have it)".into(),
                    excerpt(&a[extra], 60),
                ));
            }
            r.iter()
                .find_map(|(k, v)| shape_diff(v, &a[k], &format!("{at}/{k}")))
        }
        (r, a) if json_kind(r) == json_kind(a) => None,
        (r, a) => Some((
            at.to_owned(),
            json_kind(r).to_owned(),
            format!("{}: {}", json_kind(a), excerpt(a, 60)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn differences_are_located() {
        let a = json!({"score": {"home": 3, "away": 1}, "clock": "1:00"});
        assert_eq!(first_difference(&a, &a.clone(), String::new()), None);
        let b = json!({"score": {"home": 3, "away": 2}, "clock": "1:00"});
        assert_eq!(
            first_difference(&a, &b, String::new()).as_deref(),
            Some("/score/away")
        );
        assert_eq!(
            first_difference(&json!(1), &json!(1.0), String::new()),
            None
        );
    }

    #[test]
    fn shapes_allow_nulls_and_name_the_field() {
        let live = json!({"score": {"home": 3, "away": 1}, "market": {"last_price": 0.5}});
        let down = json!({"score": null, "market": {"last_price": 0.4}});
        assert_eq!(shape_diff(&live, &down, ""), None);
        let renamed = json!({"score": {"home": 3, "visitors": 1}, "market": null});
        assert_eq!(shape_diff(&live, &renamed, "").unwrap().0, "/score");
        let stringly = json!({"score": {"home": "3", "away": 1}, "market": null});
        let (at, expected, _) = shape_diff(&live, &stringly, "").unwrap();
        assert_eq!(
            (at.as_str(), expected.as_str()),
            ("/score/home", "a number")
        );
    }
}
