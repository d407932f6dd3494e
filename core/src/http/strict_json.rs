//! JSON bodies read one way only: an object that names a key twice is refused.
//!
//! serde_json keeps the last of duplicate keys, so `{"role":"user","role":"admin"}` would be
//! stored as admin while a proxy or WAF in front, reading the first, saw a user. Refusing the
//! body is the only reading both sides agree on. The check walks the document once with a
//! visitor that keeps nothing but each object's key set; serde_json's recursion limit bounds
//! its depth.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;
use std::fmt;

/// Checks that no object in `body` repeats a key.
///
/// # Errors
///
/// The parser's message, naming the duplicate key, or any syntax error.
pub fn check_unique_keys(body: &[u8]) -> Result<(), serde_json::Error> {
    serde_json::from_slice::<Unique>(body).map(drop)
}

/// A JSON value whose objects have unique keys; holds nothing.
struct Unique;

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueVisitor)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Unique;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_str<E>(self, _: &str) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_unit<E>(self) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Unique, A::Error> {
        while seq.next_element::<Unique>()?.is_some() {}
        Ok(Unique)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Unique, A::Error> {
        let mut keys = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !keys.insert(key.clone()) {
                return Err(de::Error::custom(format!("duplicate key `{key}`")));
            }
            map.next_value::<Unique>()?;
        }
        Ok(Unique)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_is_refused_at_any_depth() {
        for body in [
            r#"{"role":"user","role":"admin"}"#,
            r#"{"user_id":"victim","user_id":"m"}"#,
            r#"{"user_id":"a","metadata":{"role":"user","role":"admin"}}"#,
            r#"{"metadata":{"list":[{"a":1,"a":2}]}}"#,
            r#"{"a":1,"\u0061":2}"#,
        ] {
            let err = check_unique_keys(body.as_bytes()).expect_err(body);
            assert!(err.to_string().contains("duplicate key"), "{body}: {err}");
        }
    }

    #[test]
    fn distinct_keys_and_every_json_type_pass() {
        let body = r#"{"a":1,"b":-2,"c":1.5,"d":"x","e":true,"f":null,"g":[1,{"a":1}],
                       "h":{"a":{"a":{}}},"A":0}"#;
        check_unique_keys(body.as_bytes()).unwrap();
        // The same key in sibling objects is not a duplicate.
        check_unique_keys(br#"[{"a":1},{"a":2}]"#).unwrap();
    }
}
