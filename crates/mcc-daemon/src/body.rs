//! Request bodies as the API reads them: JSON, each field given or left
//! out. Not JSON → 400; JSON of the wrong shape, or a field that is
//! `null`, → 422 naming the field. `null` is never a value here: a client
//! that sends `"nodes": null` means something, and taking it for "left
//! out" (a cluster of a front-end alone) would be a guess.

use std::borrow::Cow;
use std::fmt;

use axum::body::Bytes;
use axum::http::StatusCode;
use mcc_api::ErrorDetail;
use serde::de::{DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::app::{ApiError, ApiResult};

/// Parses a JSON body. An empty body is `{}`.
pub(crate) fn body<T: DeserializeOwned>(bytes: &Bytes) -> ApiResult<T> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    let not_json = |e: serde_json::Error| {
        ApiError(
            StatusCode::BAD_REQUEST,
            ErrorDetail::new(
                "bad_request",
                format!("the request body is not valid JSON: {e}"),
            ),
        )
    };
    match first_null(bytes) {
        Err(e) => return Err(not_json(e)),
        Ok(Some(path)) if path.is_empty() => {
            return Err(ApiError::invalid("the body is null; send a JSON object"))
        }
        Ok(Some(path)) => {
            return Err(ApiError::invalid(format!(
                "{path}: null is not a value; leave the field out, or give one"
            )))
        }
        Ok(None) => {}
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                not_json(inner)
            }
            _ if path == "." || path.is_empty() => ApiError::invalid(inner.to_string()),
            _ => ApiError::invalid(format!("{path}: {inner}")),
        }
    })
}

/// The path (`spec.nodes`, `volumes[2]`; empty for the whole body) of the
/// first `null` in a JSON text, walked without building it.
fn first_null(bytes: &[u8]) -> Result<Option<String>, serde_json::Error> {
    let mut path = Vec::new();
    let mut found = None;
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    Walk {
        path: &mut path,
        found: &mut found,
    }
    .deserialize(&mut *de)?;
    de.end()?;
    Ok(found)
}

struct Walk<'a> {
    path: &'a mut Vec<String>,
    found: &'a mut Option<String>,
}

impl Walk<'_> {
    fn null(self) {
        if self.found.is_none() {
            let mut p = String::new();
            for part in self.path.iter() {
                if !part.starts_with('[') && !p.is_empty() {
                    p.push('.');
                }
                p.push_str(part);
            }
            *self.found = Some(p);
        }
    }

    fn inner(&mut self) -> Walk<'_> {
        Walk {
            path: self.path,
            found: self.found,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.null();
        Ok(())
    }

    fn visit_none<E>(self) -> Result<(), E> {
        self.null();
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            self.path.push(key.into_owned());
            map.next_value_seed(self.inner())?;
            self.path.pop();
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        loop {
            self.path.push(format!("[{i}]"));
            let more = seq.next_element_seed(self.inner())?.is_some();
            self.path.pop();
            if !more {
                return Ok(());
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_null_is_named_by_its_path() {
        let f = |s: &str| first_null(s.as_bytes()).unwrap();
        assert_eq!(f(r#"{"nodes": 2, "image": "x"}"#), None);
        assert_eq!(f(r#"{"nodes": null}"#).as_deref(), Some("nodes"));
        assert_eq!(
            f(r#"{"a": {"b": [1, {"c": null}]}, "d": null}"#).as_deref(),
            Some("a.b[1].c")
        );
        assert_eq!(
            f(r#"{"volumes": ["x", null]}"#).as_deref(),
            Some("volumes[1]")
        );
        assert_eq!(f("null").as_deref(), Some(""));
        assert_eq!(f(r#"{"s": "with \"escapes\" and null"}"#), None);
        assert!(first_null(b"{\"a\": ").is_err());
        assert!(first_null(b"{} x").is_err());
    }

    #[test]
    fn a_null_field_is_refused_naming_it() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct R {
            nodes: Option<u32>,
        }
        let ApiError(status, detail) = body::<R>(&Bytes::from(r#"{"nodes": null}"#)).unwrap_err();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            detail.message.starts_with("nodes: null"),
            "{}",
            detail.message
        );
        assert_eq!(
            body::<R>(&Bytes::from(r#"{"nodes": 3}"#)).unwrap().nodes,
            Some(3)
        );
        assert_eq!(body::<R>(&Bytes::from("  ")).unwrap().nodes, None);
        let ApiError(status, _) = body::<R>(&Bytes::from("{nodes")).unwrap_err();
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}
