//! The typed API: serde_json adapters over the raw core, for calls and for handlers.

use std::{fmt, future::Future, sync::Arc};

use bytes::{BufMut, Bytes, BytesMut};
use serde::{de::DeserializeOwned, Serialize};

use crate::{
    handlers::{Handlers, Notification, Reply, Request},
    Error, Sock,
};

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

/// The reply for a typed handler's outcome.
fn reply<O: Serialize, E: fmt::Display + 'static>(op: &str, result: Result<O, E>) -> Reply {
    match result {
        Ok(out) => match encode(op, &out) {
            Ok(payload) => Reply::Result(payload),
            Err(e) => Reply::Error(e.to_string()),
        },
        Err(e) => Reply::from_error(e),
    }
}

/// The ErrorResult text for input that does not decode.
fn bad_input(op: &str, e: Error) -> Reply {
    let detail = match e {
        Error::Decode { message, .. } => message,
        other => other.to_string(),
    };
    Reply::Error(format!("invalid input for {op:?}: {detail}"))
}

impl Handlers {
    /// Registers a typed request handler: the payload is decoded from JSON into `I`, the
    /// handler's `Ok` is sent as JSON, its `Err` as an ErrorResult with the error's text
    /// ([`Error::Retry`] as a RetryResult). Input that does not decode is answered with an
    /// ErrorResult that says why.
    pub fn handle<I, O, E, F, Fut>(&mut self, op: &str, handler: F) -> &mut Self
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
        E: fmt::Display + 'static,
        F: Fn(I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
    {
        self.handle_with_sock(op, move |_sock: Sock, input: I| handler(input))
    }

    /// Like [`handle`](Self::handle), and the handler also gets the connection, to call
    /// back or notify the peer that made the request, or read its state.
    pub fn handle_with_sock<I, O, E, F, Fut>(&mut self, op: &str, handler: F) -> &mut Self
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
        E: fmt::Display + 'static,
        F: Fn(Sock, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.handle_reply(op, move |req: Request| {
            let input = decode::<I>(&req.op, &req.payload);
            let handler = handler.clone();
            async move {
                match input {
                    Ok(input) => reply(&req.op, handler(req.sock, input).await),
                    Err(e) => bad_input(&req.op, e),
                }
            }
        })
    }

    /// Registers a typed notification handler. A payload that does not decode is logged
    /// and dropped (notifications are never answered).
    pub fn handle_notification<T, F, Fut>(&mut self, name: &str, handler: F) -> &mut Self
    where
        T: DeserializeOwned + Send + 'static,
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.handle_notification_with_sock(name, move |_sock: Sock, value: T| handler(value))
    }

    /// Like [`handle_notification`](Self::handle_notification), with the connection.
    pub fn handle_notification_with_sock<T, F, Fut>(&mut self, name: &str, handler: F) -> &mut Self
    where
        T: DeserializeOwned + Send + 'static,
        F: Fn(Sock, T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.handle_notification_raw(name, move |n: Notification| {
            let value = decode::<T>(&n.name, &n.payload);
            let handler = handler.clone();
            async move {
                match value {
                    Ok(value) => handler(n.sock, value).await,
                    Err(e) => tracing::warn!(conn = n.sock.id(), "dropping notification: {e}"),
                }
            }
        })
    }
}
