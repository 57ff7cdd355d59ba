//! The few fields `load` reads of each frame (`type`, `seq`, `ts`, `id`,
//! `data.observed_at`), decoded without building the frame: everything else is
//! skipped, not allocated. Servers with their own layout name their timestamp with a
//! [`TsSpec`].

use std::borrow::Cow;

use serde::Deserialize;

/// Where a frame's send time is and in what unit (for servers other than ours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsSpec {
    /// JSON pointer, e.g. `/ts` or `/data/time`.
    pub pointer: String,
    pub unit: TsUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TsUnit {
    Us,
    Ms,
    S,
    Rfc3339,
}

impl TsSpec {
    pub fn is_contract_default(&self) -> bool {
        self.pointer == "/ts" && self.unit == TsUnit::Us
    }
}

impl Default for TsSpec {
    /// Our contract: `ts` in Unix microseconds.
    fn default() -> Self {
        Self {
            pointer: "/ts".into(),
            unit: TsUnit::Us,
        }
    }
}

/// The fields of a frame the load generator reads; the rest is skipped, not built.
#[derive(Deserialize)]
pub(crate) struct Head<'a> {
    #[serde(rename = "type", borrow, default)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(default)]
    pub seq: Number,
    #[serde(default)]
    pub ts: Number,
    #[serde(default)]
    pub id: Number,
    #[serde(default)]
    pub data: Option<DataHead>,
}

#[derive(Deserialize)]
pub(crate) struct DataHead {
    #[serde(default)]
    pub observed_at: Number,
}

/// A field that counts only when it is a number: a foreign server's `"id":"abc"` or
/// `"ts":"2024-..."` must not make the whole frame unreadable.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Number(pub Option<i64>);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Number;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_u64<E>(self, v: u64) -> Result<Number, E> {
                Ok(Number(i64::try_from(v).ok()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Number, E> {
                Ok(Number(Some(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Number, E> {
                Ok(Number(v.is_finite().then_some(v as i64)))
            }
            fn visit_str<E>(self, _: &str) -> Result<Number, E> {
                Ok(Number(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Number, E> {
                Ok(Number(None))
            }
            fn visit_unit<E>(self) -> Result<Number, E> {
                Ok(Number(None))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Number, A::Error> {
                while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Number(None))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Number, A::Error> {
                while a
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Number(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// The send time of a frame from a server with its own layout, in Unix µs.
pub(crate) fn foreign_ts(text: &str, spec: &TsSpec) -> Option<i64> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let field = value.pointer(&spec.pointer)?;
    match spec.unit {
        TsUnit::Us => field.as_i64(),
        TsUnit::Ms => field.as_f64().map(|v| (v * 1_000.0) as i64),
        TsUnit::S => field.as_f64().map(|v| (v * 1_000_000.0) as i64),
        TsUnit::Rfc3339 => {
            let t = humantime::parse_rfc3339_weak(field.as_str()?).ok()?;
            Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_micros() as i64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_timestamps_in_every_unit() {
        let spec = |p: &str, unit| TsSpec {
            pointer: p.into(),
            unit,
        };
        assert_eq!(
            foreign_ts(r#"{"t":1700000000123}"#, &spec("/t", TsUnit::Ms)),
            Some(1_700_000_000_123_000)
        );
        assert_eq!(
            foreign_ts(r#"{"m":{"t":1700000000.5}}"#, &spec("/m/t", TsUnit::S)),
            Some(1_700_000_000_500_000)
        );
        assert_eq!(
            foreign_ts(
                r#"{"t":"1970-01-01T00:00:01Z"}"#,
                &spec("/t", TsUnit::Rfc3339)
            ),
            Some(1_000_000)
        );
        assert_eq!(foreign_ts(r#"{"x":1}"#, &spec("/t", TsUnit::Us)), None);
    }

    #[test]
    fn the_head_of_a_contract_frame_is_read_without_a_dom() {
        let h: Head = serde_json::from_str(r#"{"type":"update","game_id":"g","seq":4,"ts":10,"data":{"observed_at":7,"market":{"x":[1,2]}}}"#).unwrap();
        assert_eq!(
            (
                h.kind.as_deref(),
                h.seq.0,
                h.ts.0,
                h.data.and_then(|d| d.observed_at.0)
            ),
            (Some("update"), Some(4), Some(10), Some(7))
        );
        let foreign: Head =
            serde_json::from_str(r#"{"id":"abc","ts":"2024-01-01T00:00:00Z","seq":[1]}"#).unwrap();
        assert_eq!(
            (foreign.id.0, foreign.ts.0, foreign.seq.0),
            (None, None, None)
        );
    }
}
