//! Reading support for the models' `Deserialize` impls (the `deserialize` feature): a
//! report's `status`, read with errors that name it.
//!
//! # Why a value of its own
//! An error raised inside a field's value comes out of the JSON reader with its line and
//! column already attached, and the reader attaches them again to whatever wraps it. So
//! the `status` object is first read whole into a [`Raw`] value, then deserialized from
//! that (whose errors carry no position), and the error is prefixed with `status: `: the
//! reader adds the position once. `serde_json::Value` would do, but this crate does not
//! depend on `serde_json` (see the crate docs).

use crate::report::CheckStatus;
use serde::de::value::{Error, MapDeserializer, SeqDeserializer};
use serde::de::{self, Deserialize, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// Reads a report's `status`, with errors that name it ("status: unknown variant ...").
pub(crate) fn status_named<'de, D: Deserializer<'de>>(d: D) -> Result<CheckStatus, D::Error> {
    let raw = Raw::deserialize(d)?;
    CheckStatus::deserialize(raw).map_err(|e| de::Error::custom(format_args!("status: {e}")))
}

/// Any JSON value, read whole.
#[derive(Debug, Clone, PartialEq)]
enum Raw {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    Str(String),
    Seq(Vec<Raw>),
    Map(Vec<(String, Raw)>),
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Raw, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw::U64(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::I64(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::F64(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Str(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        Raw::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Raw::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Raw::Map(entries))
    }
}

impl<'de> Deserializer<'de> for Raw {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self {
            Raw::Null => v.visit_unit(),
            Raw::Bool(b) => v.visit_bool(b),
            Raw::U64(n) => v.visit_u64(n),
            Raw::I64(n) => v.visit_i64(n),
            Raw::F64(n) => v.visit_f64(n),
            Raw::Str(s) => v.visit_string(s),
            Raw::Seq(items) => v.visit_seq(SeqDeserializer::new(items.into_iter())),
            Raw::Map(entries) => v.visit_map(MapDeserializer::new(entries.into_iter())),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self {
            Raw::Null => v.visit_none(),
            other => v.visit_some(other),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        match self {
            Raw::Str(s) => v.visit_enum(s.into_deserializer()),
            other => other.deserialize_any(v),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct newtype_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

impl<'de> IntoDeserializer<'de, Error> for Raw {
    type Deserializer = Raw;

    fn into_deserializer(self) -> Raw {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{CheckFailure, FailureKind};

    fn raw(json: &str) -> Raw {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn reads_any_value_whole() {
        let v = raw(r#"{"a": [1, -2, 1.5, "s", null, true], "b": {}}"#);
        let list = vec![Raw::U64(1), Raw::I64(-2), Raw::F64(1.5), Raw::Str("s".into()), Raw::Null, Raw::Bool(true)];
        assert_eq!(v, Raw::Map(vec![("a".into(), Raw::Seq(list)), ("b".into(), Raw::Map(vec![]))]));
    }

    #[test]
    fn a_status_reads_back_from_the_value_with_serdes_own_messages() {
        let failed = r#"{"state": "failed", "kind": "out_of_memory", "message": "m", "hint": "h"}"#;
        let want =
            CheckStatus::Failed(CheckFailure { kind: FailureKind::OutOfMemory, message: "m".into(), hint: "h".into() });
        assert_eq!(CheckStatus::deserialize(raw(failed)), Ok(want));
        assert_eq!(CheckStatus::deserialize(raw(r#"{"state": "ok", "extra": [1]}"#)), Ok(CheckStatus::Ok));
        let e = CheckStatus::deserialize(raw(r#"{"state": "partial"}"#)).unwrap_err().to_string();
        assert_eq!(e, "unknown variant `partial`, expected `ok` or `failed`");
        let e = CheckStatus::deserialize(raw(r#""ok""#)).unwrap_err().to_string();
        assert_eq!(e, "invalid type: string \"ok\", expected internally tagged enum CheckStatus");
        // The same messages as through serde_json's own value.
        for json in [r#"{"state": "partial"}"#, r#""ok""#, r#"{"state": "failed", "kind": "x"}"#, "3"] {
            let ours = CheckStatus::deserialize(raw(json)).unwrap_err().to_string();
            let value: serde_json::Value = serde_json::from_str(json).unwrap();
            assert_eq!(ours, CheckStatus::deserialize(value).unwrap_err().to_string(), "{json}");
        }
    }
}
