//! What a handler receives and answers: the vocabulary shared by the connection, which
//! hands requests to handlers, and the registry ([`Handlers`](crate::Handlers)), which
//! stores them. (The typed conveniences, `Reply::json` and friends, are in `typed.rs`.)

use std::{
    any::Any,
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use futures_core::Stream;

use super::{RequestChunks, Sock};
use crate::{
    error::Error,
    wire::{Name, RequestId},
};

/// A boxed, sendable future: what every handler is turned into.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A boxed, sendable stream of result chunks.
pub type BoxStream<T> = Pin<Box<dyn Stream<Item = T> + Send + 'static>>;

/// A single-request handler's future, in memory its connection reuses: a handler that
/// answers at once leaves it to the connection, and the next request's handler future
/// is put in the same memory (if it fits) instead of a fresh allocation.
pub(super) type HandlerBox = tokio_util::sync::ReusableBoxFuture<'static, Reply>;

/// A registered single-request handler: it puts its future for the request in the
/// memory it is given, if any.
pub(super) type RequestFn = Arc<dyn Fn(Request, Option<HandlerBox>) -> HandlerBox + Send + Sync>;
/// A registered stream-request handler.
pub(super) type StreamFn = Arc<dyn Fn(StreamRequest) -> BoxFuture<Reply> + Send + Sync>;
/// A registered notification handler.
pub(super) type NotificationFn = Arc<dyn Fn(Notification) -> BoxFuture<()> + Send + Sync>;

/// A single request as a raw handler receives it.
#[derive(Debug)]
pub struct Request {
    /// The connection it came on: answer, call back, or notify the peer through it.
    pub sock: Sock,
    /// The operation name.
    pub op: Name,
    /// The request's ID on the wire (the peer's: for logs and traces).
    pub id: RequestId,
    /// The raw payload.
    pub payload: Bytes,
    /// When the caller stops waiting for the result, if the peer sent its call's timeout
    /// (our extension): past it the handler is dropped and nothing is answered.
    pub deadline: Option<Instant>,
}

/// A stream request as a stream handler receives it.
#[derive(Debug)]
pub struct StreamRequest {
    /// The connection it came on.
    pub sock: Sock,
    /// The operation name.
    pub op: Name,
    /// The request's ID on the wire (the peer's).
    pub id: RequestId,
    /// The request's chunks in order, ending when the peer ends the stream.
    pub chunks: RequestChunks,
    /// When the caller stops waiting, if the peer sent it (see [`Request::deadline`]).
    pub deadline: Option<Instant>,
}

/// A notification as a raw notification handler receives it.
#[derive(Debug)]
pub struct Notification {
    /// The connection it came on.
    pub sock: Sock,
    /// The notification name.
    pub name: Name,
    /// The raw payload.
    pub payload: Bytes,
}

/// How a handler answers a request: each variant is one of the protocol's result forms.
pub enum Reply {
    /// A SingleResult (`R`) with this payload.
    Result(Bytes),
    /// An ErrorResult (`E`) with this text.
    Error(String),
    /// A RetryResult (`e`): the caller may retry after `wait`.
    Retry {
        /// How long the caller should wait before retrying.
        wait: Duration,
        /// Why, in a few words (e.g. `request rate limit`).
        reason: String,
    },
    /// A StreamResult: one `S` per non-empty chunk, then the empty `S` that ends it. An
    /// `Err` item ends the stream with an ErrorResult instead.
    Stream(BoxStream<Result<Bytes, Error>>),
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Result(b) => f.debug_tuple("Result").field(b).finish(),
            Self::Error(e) => f.debug_tuple("Error").field(e).finish(),
            Self::Retry { wait, reason } => f
                .debug_struct("Retry")
                .field("wait", wait)
                .field("reason", reason)
                .finish(),
            Self::Stream(_) => f.write_str("Stream(..)"),
        }
    }
}

impl Reply {
    /// The reply for a handler's error: a RetryResult for [`Error::Retry`], otherwise an
    /// ErrorResult with the error's text.
    pub fn from_error<E: fmt::Display + 'static>(error: E) -> Self {
        Self::for_error(&error)
    }

    /// [`from_error`](Self::from_error) for a borrowed error.
    pub(crate) fn for_error<E: fmt::Display + 'static>(error: &E) -> Self {
        if let Some(Error::Retry { wait, reason }) = (error as &dyn Any).downcast_ref::<Error>() {
            return Self::Retry {
                wait: *wait,
                reason: reason.clone(),
            };
        }
        Self::Error(error.to_string())
    }

    /// A stream result from any stream of chunks.
    pub fn stream<S>(stream: S) -> Self
    where
        S: Stream<Item = Result<Bytes, Error>> + Send + 'static,
    {
        Self::Stream(Box::pin(stream))
    }
}
