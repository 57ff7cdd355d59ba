//! The few fields `load` reads of each frame: its type, sequence number, send time,
//! reply id and observation time. Two readers give the same [`FrameFacts`]: our
//! contract's layout through a derived struct (the fast path), and any other layout
//! ([`FrameShape`]: JSON pointers from the command line) through [`Extractor`], which
//! walks the frame once and keeps only the values at those pointers. Neither builds
//! the document.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::head_scan::{self, HeadFields};
use super::pointers::{Extractor, Field, FieldVisitor, PointerError};
use crate::contract::FrameType;

/// How frames are decoded before their fields are read (`--decode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decode {
    /// JSON text (binary frames holding UTF-8 JSON too).
    #[default]
    Json,
    /// Binary frames in MessagePack, read into the same pointers as JSON.
    Msgpack,
    /// Binary frames in CBOR, read into the same pointers as JSON.
    Cbor,
    /// Text frames count by their arrival alone (no fields read); binary ones are
    /// unreadable.
    Text,
    /// Every frame counts by its arrival alone: nothing is read.
    Bytes,
    /// STOMP 1.2 frames (text or binary) read as JSON: `/command`, `/headers/NAME`,
    /// `/body` (parsed when it is JSON); heart-beats keep the link alive.
    Stomp,
}

/// Where a frame's send time is and in what unit (for servers other than ours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsSpec {
    /// JSON pointer, e.g. `/ts` or `/data/time`.
    pub pointer: String,
    pub unit: TsUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TsUnit {
    Us,
    Ms,
    S,
    Rfc3339,
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

/// Where a server puts what `load` reads. The defaults are our contract's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameShape {
    pub ts: TsSpec,
    /// JSON pointer of the sequence number; None: loss and order are not checked (and
    /// reported as not measured).
    pub seq: Option<String>,
    /// JSON pointer of the id a reply echoes (`--pong-match`): any frame with a pending
    /// message's number there is its reply. None: our contract (`/id` of `pong` frames).
    pub reply_id: Option<String>,
}

impl Default for FrameShape {
    fn default() -> Self {
        Self {
            ts: TsSpec::default(),
            seq: Some(CONTRACT_SEQ.into()),
            reply_id: None,
        }
    }
}

const CONTRACT_SEQ: &str = "/seq";
const TYPE: &str = "/type";
const OBSERVED_AT: &str = "/data/observed_at";
const CONTRACT_ID: &str = "/id";
const CODE: &str = "/code";
const EPOCH: &str = "/epoch";

impl FrameShape {
    fn is_contract(&self) -> bool {
        self.ts == TsSpec::default()
            && self.seq.as_deref() == Some(CONTRACT_SEQ)
            && self.reply_id.is_none()
    }
}

/// What one frame says, as far as `load` reads it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FrameFacts {
    pub kind: Option<FrameType>,
    pub seq: Option<u64>,
    /// Send time, Unix µs.
    pub ts: Option<i64>,
    /// The number of the message this frame answers.
    pub reply_id: Option<u64>,
    /// When the server observed the upstream change, Unix µs.
    pub observed_at: Option<i64>,
    /// An `error` frame refusing a resume (`resume_ahead`, `resume_gap`): the frames
    /// after the asked-for seq cannot be replayed; its code.
    pub resume_refused: Option<&'static str>,
    /// A snapshot's `epoch` (contract 1.1.0): allocated once per snapshot, never for
    /// the frames in between.
    pub epoch: Option<Box<str>>,
}

/// The contract's error codes that refuse a resume.
fn resume_refusal(code: &str) -> Option<&'static str> {
    match code {
        "resume_ahead" => Some("resume_ahead"),
        "resume_gap" => Some("resume_gap"),
        "epoch_changed" => Some("epoch_changed"),
        _ => None,
    }
}

/// Reads frames of one shape.
#[derive(Debug, Clone)]
pub enum FrameReader {
    /// Our contract: one derived struct, no pointers.
    Contract,
    Shaped(Box<Shaped>),
}

#[derive(Debug, Clone)]
pub struct Shaped {
    extractor: Extractor,
    unit: TsUnit,
    has_seq: bool,
    /// Replies are any frame with the id at `--pong-match` (else `pong` frames' `/id`).
    any_frame_replies: bool,
}

/// The extractor's slots, in the order its pointers are given.
const SLOT_TYPE: usize = 0;
const SLOT_TS: usize = 1;
const SLOT_REPLY: usize = 2;
const SLOT_OBSERVED: usize = 3;
const SLOT_CODE: usize = 4;
const SLOT_EPOCH: usize = 5;
const SLOT_SEQ: usize = 6;

impl FrameReader {
    pub fn new(shape: &FrameShape) -> Result<FrameReader, PointerError> {
        if shape.is_contract() {
            return Ok(FrameReader::Contract);
        }
        let reply = shape.reply_id.as_deref().unwrap_or(CONTRACT_ID);
        let mut pointers = vec![TYPE, &shape.ts.pointer, reply, OBSERVED_AT, CODE, EPOCH];
        pointers.extend(shape.seq.as_deref());
        Ok(FrameReader::Shaped(Box::new(Shaped {
            extractor: Extractor::new(&pointers)?,
            unit: shape.ts.unit,
            has_seq: shape.seq.is_some(),
            any_frame_replies: shape.reply_id.is_some(),
        })))
    }

    /// Whether frames' sequence numbers are read at all.
    pub fn reads_seq(&self) -> bool {
        match self {
            FrameReader::Contract => true,
            FrameReader::Shaped(s) => s.has_seq,
        }
    }

    /// The facts of one frame; an error when it is not JSON.
    pub fn read(&self, text: &str) -> Result<FrameFacts, serde_json::Error> {
        match self {
            // Our servers' frames, in one pass; what it does not take on, serde reads.
            FrameReader::Contract => match head_scan::scan(text) {
                Some(fields) => Ok(facts_of(fields)),
                None => self.read_with_serde(text),
            },
            FrameReader::Shaped(shaped) => shaped.read(text),
        }
    }

    /// [`FrameReader::read`] through serde_json alone (the contract's derived head).
    pub(super) fn read_with_serde(&self, text: &str) -> Result<FrameFacts, serde_json::Error> {
        match self {
            FrameReader::Contract => {
                let head: Head = serde_json::from_str(text)?;
                Ok(facts_of(HeadFields {
                    kind: head.kind.as_deref(),
                    seq: head.seq.0,
                    ts: head.ts.0,
                    id: head.id.0,
                    observed_at: head.data.observed_at.0,
                    code: head.code.as_deref(),
                    epoch: head.epoch.as_deref(),
                }))
            }
            FrameReader::Shaped(shaped) => shaped.read(text),
        }
    }
}

/// The facts of a contract frame's fields: a pong's id is its reply id, an error's
/// code may refuse a resume, a snapshot's epoch is kept.
pub(super) fn facts_of(head: HeadFields) -> FrameFacts {
    let kind = head.kind.and_then(FrameType::parse);
    FrameFacts {
        kind,
        seq: head.seq.and_then(|s| u64::try_from(s).ok()),
        ts: head.ts,
        reply_id: (kind == Some(FrameType::Pong))
            .then(|| head.id.and_then(|i| u64::try_from(i).ok()))
            .flatten(),
        observed_at: head.observed_at,
        resume_refused: (kind == Some(FrameType::Error))
            .then(|| head.code.and_then(resume_refusal))
            .flatten(),
        epoch: head
            .epoch
            .filter(|_| kind == Some(FrameType::Snapshot))
            .map(Box::from),
    }
}

impl Shaped {
    fn read(&self, text: &str) -> Result<FrameFacts, serde_json::Error> {
        let mut fields: [Field; 7] = std::array::from_fn(|_| Field::Missing);
        self.extractor.extract(text, &mut fields)?;
        let kind = match &fields[SLOT_TYPE] {
            Field::Str(s) => FrameType::parse(s),
            _ => None,
        };
        let reply_id = if self.any_frame_replies || kind == Some(FrameType::Pong) {
            fields[SLOT_REPLY].as_u64()
        } else {
            None
        };
        Ok(FrameFacts {
            kind,
            seq: if self.has_seq {
                fields[SLOT_SEQ].as_u64()
            } else {
                None
            },
            ts: micros(&fields[SLOT_TS], self.unit),
            reply_id,
            observed_at: fields[SLOT_OBSERVED].as_i64(),
            resume_refused: match (&fields[SLOT_CODE], kind) {
                (Field::Str(code), Some(FrameType::Error)) => resume_refusal(code),
                _ => None,
            },
            epoch: match (&fields[SLOT_EPOCH], kind) {
                (Field::Str(epoch), Some(FrameType::Snapshot)) => Some(epoch.as_str().into()),
                _ => None,
            },
        })
    }
}

/// The fields of a contract frame the load generator reads; the rest is skipped.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Text<'a>>,
    #[serde(default)]
    seq: Number,
    #[serde(default)]
    ts: Number,
    #[serde(default)]
    id: Number,
    #[serde(default)]
    data: DataHead,
    /// An error frame's code.
    #[serde(borrow, default)]
    code: Option<Text<'a>>,
    /// A snapshot's epoch.
    #[serde(borrow, default)]
    epoch: Option<Text<'a>>,
}

/// A string field that borrows from the frame unless it has escapes. serde's own
/// `Cow<str>` borrows only as a bare field: inside an `Option` it allocates a `String`
/// every time, which was one allocation per frame for `type`.
struct Text<'a>(Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor).map(Text)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// `data`: its `observed_at` when it is an object. Any other value (null, or a
/// foreign server's string or array) has none and is no reason to call the frame
/// unreadable: it is valid JSON.
#[derive(Default)]
struct DataHead {
    observed_at: Number,
}

impl<'de> Deserialize<'de> for DataHead {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DataVisitor)
    }
}

struct DataVisitor;

impl<'de> Visitor<'de> for DataVisitor {
    type Value = DataHead;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DataHead, A::Error> {
        let mut observed_at = None;
        while let Some(key) = map.next_key::<Text<'de>>()? {
            if &*key != "observed_at" {
                map.next_value::<IgnoredAny>()?;
            } else if observed_at.is_some() {
                return Err(serde::de::Error::duplicate_field("observed_at"));
            } else {
                observed_at = Some(map.next_value::<Number>()?);
            }
        }
        Ok(DataHead {
            observed_at: observed_at.unwrap_or_default(),
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<DataHead, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(DataHead::default())
    }

    fn visit_bool<E>(self, _: bool) -> Result<DataHead, E> {
        Ok(DataHead::default())
    }

    fn visit_i64<E>(self, _: i64) -> Result<DataHead, E> {
        Ok(DataHead::default())
    }

    fn visit_u64<E>(self, _: u64) -> Result<DataHead, E> {
        Ok(DataHead::default())
    }

    fn visit_f64<E>(self, _: f64) -> Result<DataHead, E> {
        Ok(DataHead::default())
    }

    fn visit_str<E>(self, _: &str) -> Result<DataHead, E> {
        Ok(DataHead::default())
    }

    fn visit_unit<E>(self) -> Result<DataHead, E> {
        Ok(DataHead::default())
    }
}

/// A field that counts only when it is a number: a foreign server's `"id":"abc"` or
/// `"ts":"2024-..."` must not make the whole frame unreadable.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Number(Option<i64>);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match d.deserialize_any(FieldVisitor)? {
            Field::Int(i) => Number(Some(i)),
            Field::Float(f) if f.is_finite() => Number(Some(f as i64)),
            _ => Number(None),
        })
    }
}

/// A time in `unit`, as Unix µs.
fn micros(field: &Field, unit: TsUnit) -> Option<i64> {
    match (unit, field) {
        (TsUnit::Us, f) => f.as_i64(),
        (TsUnit::Ms, Field::Int(i)) => i.checked_mul(1_000),
        (TsUnit::Ms, Field::Float(f)) => Some((f * 1_000.0) as i64),
        (TsUnit::S, Field::Int(i)) => i.checked_mul(1_000_000),
        (TsUnit::S, Field::Float(f)) => Some((f * 1_000_000.0) as i64),
        (TsUnit::Rfc3339, Field::Str(s)) => {
            let t = humantime::parse_rfc3339_weak(s).ok()?;
            Some(crate::clock::micros_of(t))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contract_frame_s_strings_borrow_unless_escaped() {
        let head: Head = serde_json::from_str(r#"{"type":"update","code":"x"}"#).unwrap();
        assert!(matches!(
            head.kind.map(|t| t.0),
            Some(Cow::Borrowed("update"))
        ));
        let head: Head = serde_json::from_str(r#"{"type":"upd\u0061te"}"#).unwrap();
        assert!(matches!(head.kind.as_ref().map(|t| &t.0), Some(Cow::Owned(k)) if k == "update"));
        let facts = FrameReader::Contract
            .read(r#"{"type":"snaps\u0068ot","epoch":"e\"1","seq":3}"#)
            .unwrap();
        assert_eq!(facts.kind, Some(FrameType::Snapshot));
        assert_eq!(facts.epoch.as_deref(), Some("e\"1"));
        assert!(
            FrameReader::Contract.read(r#"{"type":5}"#).is_err(),
            "type must be a string"
        );
    }

    fn shaped(ts: &str, unit: TsUnit, seq: Option<&str>, reply: Option<&str>) -> FrameReader {
        FrameReader::new(&FrameShape {
            ts: TsSpec {
                pointer: ts.into(),
                unit,
            },
            seq: seq.map(str::to_owned),
            reply_id: reply.map(str::to_owned),
        })
        .unwrap()
    }

    #[test]
    fn foreign_timestamps_in_every_unit() {
        let read = |text: &str, p: &str, unit| shaped(p, unit, None, None).read(text).unwrap().ts;
        assert_eq!(
            read(r#"{"t":1700000000123}"#, "/t", TsUnit::Ms),
            Some(1_700_000_000_123_000)
        );
        assert_eq!(
            read(r#"{"m":{"t":1700000000.5}}"#, "/m/t", TsUnit::S),
            Some(1_700_000_000_500_000)
        );
        assert_eq!(
            read(r#"{"t":"1970-01-01T00:00:01Z"}"#, "/t", TsUnit::Rfc3339),
            Some(1_000_000)
        );
        assert_eq!(read(r#"{"x":1}"#, "/t", TsUnit::Us), None);
    }

    #[test]
    fn the_head_of_a_contract_frame_is_read_without_a_dom() {
        let facts = FrameReader::Contract
            .read(r#"{"type":"update","game_id":"g","seq":4,"ts":10,"data":{"observed_at":7,"market":{"x":[1,2]}}}"#)
            .unwrap();
        assert_eq!(
            (facts.kind, facts.seq, facts.ts, facts.observed_at),
            (Some(FrameType::Update), Some(4), Some(10), Some(7))
        );
        let pong = FrameReader::Contract
            .read(r#"{"type":"pong","id":9,"seq":4,"ts":1}"#)
            .unwrap();
        assert_eq!(pong.reply_id, Some(9));
        let foreign = FrameReader::Contract
            .read(r#"{"id":"abc","ts":"2024-01-01T00:00:00Z","seq":[1]}"#)
            .unwrap();
        assert_eq!(
            (foreign.reply_id, foreign.ts, foreign.seq),
            (None, None, None)
        );
        // A foreign `data` that is not an object is valid JSON with no observed_at.
        for data in [r#""text""#, "[7]", "3", "true", "null"] {
            let frame = format!(r#"{{"type":"update","seq":1,"ts":2,"data":{data}}}"#);
            let facts = FrameReader::Contract.read_with_serde(&frame).unwrap();
            assert_eq!((facts.seq, facts.observed_at), (Some(1), None), "{frame}");
        }
        assert!(
            FrameReader::Contract
                .read_with_serde(r#"{"data":{"observed_at":1,"observed_at":2}}"#)
                .is_err(),
            "a repeated field is an error, as in the rest of the head"
        );
    }

    #[test]
    fn a_foreign_shape_reads_its_own_seq_and_replies() {
        let reader = shaped("/t", TsUnit::Ms, Some("/n"), Some("/ref"));
        let f = reader
            .read(r#"{"op":"pong","ref":7,"n":"12","t":1700000000000}"#)
            .unwrap();
        assert_eq!(
            (f.reply_id, f.seq, f.ts),
            (Some(7), Some(12), Some(1_700_000_000_000_000))
        );
        let no_seq = shaped("/t", TsUnit::Ms, None, None);
        assert!(!no_seq.reads_seq());
        assert_eq!(no_seq.read(r#"{"n":3,"id":1}"#).unwrap().seq, None);
        // Without --pong-match, only pong frames are replies (an "id" elsewhere is not).
        assert_eq!(no_seq.read(r#"{"id":1}"#).unwrap().reply_id, None);
    }
}
