//! The typed API: serde_json adapters over the raw core (which never imports serde), for
//! calls, streams, replies and handlers.

use std::{fmt, future::Future, sync::Arc};

use futures_core::Stream;
use serde::{de::DeserializeOwned, Serialize};

use crate::{
    json, CallOptions, Error, Handlers, Notification, Reply, Request, RequestChunks, ResultStream,
    Sock, StreamWriter,
};

impl Sock {
    /// Sends a single request with `input` as JSON and decodes the JSON result.
    pub async fn request<I, O>(&self, op: &str, input: &I) -> Result<O, Error>
    where
        I: Serialize + ?Sized,
        O: DeserializeOwned,
    {
        let payload = json::encode(op, input)?;
        let result = self.request_within(op, payload, None).await?;
        json::decode(op, &result)
    }

    /// [`request`](Self::request) with a timeout and automatic retries.
    pub async fn request_with<I, O>(
        &self,
        op: &str,
        input: &I,
        options: CallOptions,
    ) -> Result<O, Error>
    where
        I: Serialize + ?Sized,
        O: DeserializeOwned,
    {
        let payload = json::encode(op, input)?;
        let result = self.request_raw_with(op, payload, options).await?;
        json::decode(op, &result)
    }

    /// Sends a notification with `value` as JSON.
    pub async fn notify<T: Serialize + ?Sized>(&self, name: &str, value: &T) -> Result<(), Error> {
        self.notify_raw(name, json::encode(name, value)?).await
    }
}

impl RequestChunks {
    /// The next chunk decoded from JSON, or `None` at the end of the request stream.
    pub async fn next_json<T: DeserializeOwned>(&mut self) -> Option<Result<T, Error>> {
        let chunk = self.next_chunk().await?;
        Some(chunk.and_then(|bytes| json::decode(self.op(), &bytes)))
    }

    /// The chunks decoded from JSON, as a `Stream` of `T`.
    pub fn json<T: DeserializeOwned>(
        self,
    ) -> impl Stream<Item = Result<T, Error>> + Send + 'static {
        let op = self.op().clone();
        futures_util::StreamExt::map(self, move |chunk| {
            chunk.and_then(|bytes| json::decode(&op, &bytes))
        })
    }
}

impl ResultStream {
    /// The next result chunk decoded from JSON, or `None` after the last.
    pub async fn next_json<T: DeserializeOwned>(&mut self) -> Option<Result<T, Error>> {
        let chunk = self.next_chunk().await?;
        Some(chunk.and_then(|bytes| json::decode(self.op(), &bytes)))
    }
}

impl StreamWriter {
    /// Sends `value` as one JSON chunk.
    pub async fn send_json<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let chunk = json::encode(self.op(), value)?;
        self.send(chunk).await
    }
}

impl Reply {
    /// A SingleResult carrying `value` as JSON (an ErrorResult if it cannot be encoded).
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Self {
        Self::json_for("result", value)
    }

    /// An ErrorResult carrying `error` the way a service method's typed error travels:
    /// its JSON (a string as its text). What middleware answers to refuse a call with the
    /// application's own error type: the generated client of every operation that
    /// declares that type gets it as [`CallError::Remote`](crate::CallError::Remote), to
    /// match like any error of the handler's; a client of an operation with another error
    /// type gets [`Error::Remote`] with the text.
    ///
    /// ```
    /// use gotalk::{middleware::{Incoming, Next}, Handlers, Reply};
    ///
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// enum AppError { SignInFirst, NotFound { id: u64 } }
    ///
    /// struct User;
    /// let handlers = Handlers::new()
    ///     .wrap(|incoming: Incoming, next: Next| async move {
    ///         if incoming.op.as_str() != "login" && incoming.sock.state::<User>().is_none() {
    ///             return Reply::json_error(&AppError::SignInFirst);
    ///         }
    ///         next.run().await
    ///     });
    /// ```
    pub fn json_error<E: Serialize + ?Sized>(error: &E) -> Self {
        Self::Error(json::error_text("middleware", error))
    }

    /// [`json`](Self::json) for operation `op`, which an encoding error names.
    pub(crate) fn json_for<T: Serialize + ?Sized>(op: &str, value: &T) -> Self {
        match json::encode(op, value) {
            Ok(payload) => Self::Result(payload),
            Err(e) => Self::Error(e.to_string()),
        }
    }

    /// A stream result of JSON values: one StreamResult part per item. An `Err` item
    /// ends the stream with an ErrorResult carrying its text.
    pub fn json_stream<S, T, E>(stream: S) -> Self
    where
        S: Stream<Item = Result<T, E>> + Send + 'static,
        T: Serialize,
        E: fmt::Display,
    {
        Self::json_stream_for("stream result", stream, |e: &E| e.to_string())
    }

    /// [`json_stream`](Self::json_stream) for operation `op`, which encoding errors name;
    /// an `Err` item ends the stream with the ErrorResult text `error_text` gives.
    pub(crate) fn json_stream_for<S, T, E>(
        op: &str,
        stream: S,
        error_text: impl Fn(&E) -> String + Send + 'static,
    ) -> Self
    where
        S: Stream<Item = Result<T, E>> + Send + 'static,
        T: Serialize,
    {
        let op: Box<str> = op.into();
        Self::stream(futures_util::StreamExt::map(
            stream,
            move |item| match item {
                Ok(value) => json::encode(&op, &value),
                Err(e) => Err(Error::message(error_text(&e))),
            },
        ))
    }

    /// The reply for a typed handler's outcome.
    pub(crate) fn from_result<O: Serialize, E: fmt::Display + 'static>(
        op: &str,
        result: Result<O, E>,
    ) -> Self {
        match result {
            Ok(out) => Self::json_for(op, &out),
            Err(e) => Self::from_error(e),
        }
    }
}

impl Handlers {
    /// Registers a typed request handler: the payload is decoded from JSON into `I`, the
    /// handler's `Ok` is sent as JSON, its `Err` as an ErrorResult with the error's text
    /// ([`Error::Retry`] as a RetryResult). Input that does not decode is answered with an
    /// ErrorResult that says why.
    pub fn handle<I, O, E, F, Fut>(self, op: &str, handler: F) -> Self
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
    pub fn handle_with_sock<I, O, E, F, Fut>(self, op: &str, handler: F) -> Self
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
        E: fmt::Display + 'static,
        F: Fn(Sock, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.handle_reply(op, move |req: Request| {
            let input = json::decode_input::<I>(&req.op, &req.payload);
            let handler = handler.clone();
            async move {
                match input {
                    Ok(input) => Reply::from_result(&req.op, handler(req.sock, input).await),
                    Err(text) => Reply::Error(text),
                }
            }
        })
    }

    /// Registers a typed notification handler. A payload that does not decode is logged
    /// and dropped (notifications are never answered).
    pub fn handle_notification<T, F, Fut>(self, name: &str, handler: F) -> Self
    where
        T: DeserializeOwned + Send + 'static,
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.handle_notification_with_sock(name, move |_sock: Sock, value: T| handler(value))
    }

    /// Like [`handle_notification`](Self::handle_notification), with the connection.
    pub fn handle_notification_with_sock<T, F, Fut>(self, name: &str, handler: F) -> Self
    where
        T: DeserializeOwned + Send + 'static,
        F: Fn(Sock, T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.handle_notification_raw(name, move |n: Notification| {
            let value = json::decode::<T>(&n.name, &n.payload);
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
