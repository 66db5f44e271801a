//! serde_json helpers with the operation (or notification) name in every error: the one
//! place where payloads become values and back, for the typed API, the generated code
//! and `Reply`.

use bytes::{BufMut, Bytes, BytesMut};
use serde::{de::DeserializeOwned, Serialize};

use crate::Error;

/// Serializes `value` as the JSON payload of `op`.
pub(crate) fn encode<T: Serialize + ?Sized>(op: &str, value: &T) -> Result<Bytes, Error> {
    let mut writer = BytesMut::with_capacity(64).writer();
    serde_json::to_writer(&mut writer, value).map_err(|e| Error::Encode {
        op: op.to_owned(),
        message: e.to_string(),
    })?;
    Ok(writer.into_inner().freeze())
}

/// Deserializes the JSON payload of `op`. An empty payload reads as `null`, so `()` and
/// `Option` inputs and outputs work with peers that send nothing.
pub(crate) fn decode<T: DeserializeOwned>(op: &str, payload: &[u8]) -> Result<T, Error> {
    let json: &[u8] = if payload.is_empty() { b"null" } else { payload };
    serde_json::from_slice(json).map_err(|e| Error::Decode {
        op: op.to_owned(),
        message: e.to_string(),
    })
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
}
