//! Values at a few JSON pointers, found in one pass over a frame without building
//! its document: how `load` reads the fields of a server whose frames are not laid out
//! as our contract's (`--ts-field`, `--seq-field`, `--pong-match`).

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A JSON pointer `load` cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a JSON pointer to a field (it must start with '/', e.g. /seq or /data/n)")]
pub struct PointerError(pub String);

/// A value found at a pointer.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Missing,
    Int(i64),
    Float(f64),
    Str(String),
    /// An object, array, bool or null.
    Other,
}

impl Field {
    pub(super) fn as_i64(&self) -> Option<i64> {
        match self {
            Field::Int(i) => Some(*i),
            Field::Float(f) if f.is_finite() => Some(*f as i64),
            _ => None,
        }
    }

    /// A whole number, also when a server writes it as a string (`"42"`).
    pub(super) fn as_u64(&self) -> Option<u64> {
        match self {
            Field::Str(s) => s.parse().ok(),
            other => other.as_i64().and_then(|i| u64::try_from(i).ok()),
        }
    }
}

pub(super) struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_u64<E>(self, v: u64) -> Result<Field, E> {
        Ok(i64::try_from(v).map_or(Field::Other, Field::Int))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Field, E> {
        Ok(Field::Int(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Field, E> {
        Ok(Field::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Field, E> {
        Ok(Field::Str(v.to_owned()))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Field, E> {
        Ok(Field::Other)
    }
    fn visit_unit<E>(self) -> Result<Field, E> {
        Ok(Field::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Field, A::Error> {
        while a.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Field::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Field, A::Error> {
        while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Field::Other)
    }
}

/// The values at a few JSON pointers, found in one pass over a frame without building
/// it: only the branches on the way to a pointer are entered; everything else is
/// skipped by the parser.
#[derive(Debug, Clone)]
pub struct Extractor {
    /// Each pointer's segments, unescaped (`~1` is `/`, `~0` is `~`).
    paths: Vec<Vec<String>>,
}

/// At most this many pointers: the walk keeps its paths in a bit mask.
const MAX_POINTERS: usize = 32;

impl Extractor {
    pub fn new(pointers: &[&str]) -> Result<Extractor, PointerError> {
        assert!(pointers.len() <= MAX_POINTERS, "a few pointers at most");
        let paths = pointers
            .iter()
            .map(|p| {
                let rest = p
                    .strip_prefix('/')
                    .ok_or_else(|| PointerError((*p).to_owned()))?;
                Ok(rest
                    .split('/')
                    .map(|s| s.replace("~1", "/").replace("~0", "~"))
                    .collect())
            })
            .collect::<Result<_, _>>()?;
        Ok(Extractor { paths })
    }

    /// Fills `out[i]` with the value at pointer `i` (or `Missing`).
    pub fn extract(&self, text: &str, out: &mut [Field]) -> Result<(), serde_json::Error> {
        let all = (1u32 << self.paths.len()) - 1;
        let walk = Walk {
            extractor: self,
            mask: all,
            depth: 0,
            out,
        };
        let mut de = serde_json::Deserializer::from_str(text);
        walk.deserialize(&mut de)?;
        de.end()
    }

    /// The paths of `mask` whose segment at `depth` is `key`.
    fn matching(&self, mask: u32, depth: usize, key: &str) -> u32 {
        let mut found = 0;
        for (i, path) in self.paths.iter().enumerate() {
            if mask & (1 << i) != 0 && path.get(depth).is_some_and(|s| s == key) {
                found |= 1 << i;
            }
        }
        found
    }
}

/// One value of the walk: `mask` holds the paths that lead here.
struct Walk<'e, 'o> {
    extractor: &'e Extractor,
    mask: u32,
    depth: usize,
    out: &'o mut [Field],
}

impl<'de> DeserializeSeed<'de> for Walk<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Walk<'_, '_> {
    /// The paths that end at this value.
    fn ending(&self) -> u32 {
        let mut ending = 0;
        for (i, path) in self.extractor.paths.iter().enumerate() {
            if self.mask & (1 << i) != 0 && path.len() == self.depth {
                ending |= 1 << i;
            }
        }
        ending
    }

    fn store(&mut self, field: Field) {
        let ending = self.ending();
        for (i, slot) in self.out.iter_mut().enumerate() {
            if ending & (1 << i) != 0 {
                *slot = field.clone();
            }
        }
    }

    fn child(&mut self, mask: u32) -> Walk<'_, '_> {
        Walk {
            extractor: self.extractor,
            mask,
            depth: self.depth + 1,
            out: self.out,
        }
    }
}

impl<'de> Visitor<'de> for Walk<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_u64<E>(mut self, v: u64) -> Result<(), E> {
        self.store(i64::try_from(v).map_or(Field::Other, Field::Int));
        Ok(())
    }
    fn visit_i64<E>(mut self, v: i64) -> Result<(), E> {
        self.store(Field::Int(v));
        Ok(())
    }
    fn visit_f64<E>(mut self, v: f64) -> Result<(), E> {
        self.store(Field::Float(v));
        Ok(())
    }
    fn visit_str<E>(mut self, v: &str) -> Result<(), E> {
        if self.ending() != 0 {
            self.store(Field::Str(v.to_owned()));
        }
        Ok(())
    }
    fn visit_bool<E>(mut self, _: bool) -> Result<(), E> {
        self.store(Field::Other);
        Ok(())
    }
    fn visit_unit<E>(mut self) -> Result<(), E> {
        self.store(Field::Other);
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.store(Field::Other);
        while let Some(mask) = map.next_key_seed(KeyMatch {
            extractor: self.extractor,
            mask: self.mask,
            depth: self.depth,
        })? {
            if mask == 0 {
                map.next_value::<IgnoredAny>()?;
            } else {
                map.next_value_seed(self.child(mask))?;
            }
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.store(Field::Other);
        let mut index = 0usize;
        loop {
            let mask = self
                .extractor
                .matching(self.mask, self.depth, &index.to_string());
            let more = if mask == 0 {
                seq.next_element::<IgnoredAny>()?.is_some()
            } else {
                seq.next_element_seed(self.child(mask))?.is_some()
            };
            if !more {
                return Ok(());
            }
            index += 1;
        }
    }
}

/// A map key, compared with the paths' segments where it is read (no allocation).
struct KeyMatch<'e> {
    extractor: &'e Extractor,
    mask: u32,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for KeyMatch<'_> {
    type Value = u32;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u32, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyMatch<'_> {
    type Value = u32;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E>(self, key: &str) -> Result<u32, E> {
        Ok(self.extractor.matching(self.mask, self.depth, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_reach_into_objects_and_arrays_and_skip_the_rest() {
        let e = Extractor::new(&["/a/b", "/list/1/n", "/x~1y", "/missing"]).unwrap();
        let mut out = vec![Field::Missing; 4];
        e.extract(
            r#"{"skip":{"b":[1,{"deep":true}]},"a":{"b":"s"},"list":[{"n":1},{"n":2}],"x/y":3.5}"#,
            &mut out,
        )
        .unwrap();
        assert_eq!(
            out,
            [
                Field::Str("s".into()),
                Field::Int(2),
                Field::Float(3.5),
                Field::Missing
            ]
        );
        assert!(e.extract("{not json", &mut out).is_err());
        assert!(Extractor::new(&["seq"]).is_err());
    }
}
