//! serde_json helpers with the operation (or notification) name in every error: the one
//! place where payloads become values and back, for the typed API, the generated code
//! and `Reply`.

use std::cell::RefCell;

use bytes::Bytes;
use serde::{de::DeserializeOwned, Serialize};

use crate::Error;

/// Payloads up to this size are serialized into a buffer kept per thread and copied out
/// at their exact size: one allocation per payload instead of two (a growing buffer, then
/// the shared header `Bytes` needs for a buffer with room to spare).
const COPY_OUT_LIMIT: usize = 4 * 1024;
/// The kept buffer is freed when a payload made it grow past this.
const KEEP_SCRATCH: usize = 64 * 1024;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Serializes `value` as the JSON payload of `op`.
pub(crate) fn encode<T: Serialize + ?Sized>(op: &str, value: &T) -> Result<Bytes, Error> {
    let failed = |e: serde_json::Error| Error::Encode {
        op: op.to_owned(),
        message: e.to_string(),
    };
    SCRATCH.with(|scratch| {
        // A `Serialize` that serializes a payload itself finds the buffer in use.
        let Ok(mut buf) = scratch.try_borrow_mut() else {
            return serde_json::to_vec(value).map(Bytes::from).map_err(failed);
        };
        buf.clear();
        let written = serde_json::to_writer(&mut *buf, value).map_err(failed);
        let payload = match buf.len() {
            n if n <= COPY_OUT_LIMIT => Bytes::copy_from_slice(&buf),
            _ => Bytes::from(std::mem::take(&mut *buf)),
        };
        if buf.capacity() > KEEP_SCRATCH {
            *buf = Vec::new();
        }
        written.map(|()| payload)
    })
}

/// Deserializes the JSON payload of `op`. An empty payload reads as `null`, so `()` and
/// `Option` inputs and outputs work with peers that send nothing.
pub(crate) fn decode<T: DeserializeOwned>(op: &str, payload: &[u8]) -> Result<T, Error> {
    let json: &[u8] = if payload.is_empty() { b"null" } else { payload };
    serde_json::from_slice(json).map_err(|e| Error::Decode {
        op: op.to_owned(),
        // An empty payload reads as `null`, which serde's message would name as if the
        // peer had sent it.
        message: if payload.is_empty() {
            format!(
                "the payload was empty, where {} was expected",
                short_type_name(std::any::type_name::<T>())
            )
        } else {
            e.to_string()
        },
    })
}

/// A type's name without its module paths: `alloc::vec::Vec<app::Task>` → `Vec<Task>`.
fn short_type_name(name: &str) -> String {
    let mut short = String::with_capacity(name.len());
    let mut word = String::new();
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            word.clear();
        } else if c.is_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            short.push_str(&word);
            word.clear();
            short.push(c);
        }
    }
    short + &word
}

/// Deserializes a request's input; the error is the ErrorResult text that tells the
/// caller why its input was refused.
pub(crate) fn decode_input<T: DeserializeOwned>(op: &str, payload: &[u8]) -> Result<T, String> {
    decode(op, payload).map_err(|e| {
        let detail = match e {
            Error::Decode { message, .. } => message,
            other => other.to_string(),
        };
        format!("invalid input for {op:?}: {detail}")
    })
}

/// The ErrorResult text for a handler's typed error: its JSON, or the text of the string
/// it serializes to (so `String`s and unit enum variants read as plain text).
pub(crate) fn error_text<E: Serialize + ?Sized>(op: &str, error: &E) -> String {
    let json = match serde_json::to_string(error) {
        Ok(json) => json,
        Err(e) => return format!("cannot encode the error of {op:?} as JSON: {e}"),
    };
    if json.starts_with('"') {
        if let Ok(text) = serde_json::from_str::<String>(&json) {
            return text;
        }
    }
    json
}

/// A handler's typed error from an ErrorResult's text, the inverse of [`error_text`]:
/// its JSON, or the text itself as a string. `None` for text that is neither (a peer's
/// own error, such as an unknown operation).
pub(crate) fn decode_error<E: DeserializeOwned>(text: &str) -> Option<E> {
    use serde::de::{value::Error as ValueError, IntoDeserializer};
    serde_json::from_str(text)
        .ok()
        .or_else(|| E::deserialize(IntoDeserializer::<ValueError>::into_deserializer(text)).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_names_the_operation() {
        let err = decode::<u32>("greet", b"\"x\"").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("cannot decode JSON for \"greet\""));
        let text = decode_input::<u32>("greet", b"{").unwrap_err();
        assert!(text.starts_with("invalid input for \"greet\": "), "{text}");
        let map = std::collections::HashMap::from([((1, 2), 3)]);
        let err = encode("greet", &map).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("cannot encode JSON for \"greet\""));
        assert_eq!(decode::<Option<u32>>("greet", b"").unwrap(), None);
    }

    #[test]
    fn an_empty_payload_is_named_as_such_with_what_was_expected() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Task {
            name: String,
        }
        let text = decode_input::<Task>("submit", b"").unwrap_err();
        assert_eq!(
            text,
            "invalid input for \"submit\": the payload was empty, where Task was expected"
        );
        let text = decode_input::<Vec<Task>>("submit", b"").unwrap_err();
        assert!(text.ends_with("where Vec<Task> was expected"), "{text}");
    }
}
