//! Support for typed services, as `#[gotalk::service]` and `#[gotalk::notification]`
//! generate them (and as anyone may write by hand): [`Service`] registration with
//! conflict detection, and the typed stream types.

use std::{
    fmt,
    marker::PhantomData,
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use bytes::Bytes;
use futures_core::Stream;
use serde::{de::DeserializeOwned, Serialize};

use crate::{json, Error, Handlers, RegistrationError, RequestChunks, ResultStream, StreamWriter};

/// A set of handlers registered in one go, e.g. everything one `#[gotalk::service]` trait
/// offers. Register with [`Handlers::with`] or [`Handlers::try_with`].
pub trait Service {
    /// The service's name in registration errors (the trait's name).
    const NAME: &'static str;

    /// `handlers` with this service's handlers added.
    fn register(self, handlers: Handlers) -> Handlers;
}

impl Handlers {
    /// Adds every handler of `service`, refusing names this set already handles.
    pub fn try_with<S: Service>(mut self, service: S) -> Result<Self, RegistrationError> {
        let added = service.register(Handlers::new());
        self.merge(added, S::NAME)?;
        Ok(self)
    }

    /// Adds every handler of `service`: `Handlers::new().with(GreetService::new(greeter))`.
    ///
    /// # Panics
    ///
    /// If `service` claims a name this set already handles (a programming error found at
    /// start-up, like a duplicate route); the message names both. Use
    /// [`try_with`](Self::try_with) to get the error instead.
    pub fn with<S: Service>(self, service: S) -> Self {
        match self.try_with(service) {
            Ok(handlers) => handlers,
            Err(e) => panic!("{e}"),
        }
    }
}

/// The chunks of a stream request decoded from JSON: what a service method with a
/// `StreamIn<T>` parameter reads. A `Stream` of `Result<T, Error>` that ends when the
/// caller ends the request stream.
pub struct StreamIn<T> {
    chunks: RequestChunks,
    op: crate::wire::Name,
    _values: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for StreamIn<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamIn").field("op", &self.op).finish()
    }
}

impl<T: DeserializeOwned> StreamIn<T> {
    /// Typed chunks over raw ones.
    pub fn new(op: crate::wire::Name, chunks: RequestChunks) -> Self {
        Self {
            chunks,
            op,
            _values: PhantomData,
        }
    }

    /// The next value, or `None` at the end of the request stream.
    pub async fn next_value(&mut self) -> Option<Result<T, Error>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl<T: DeserializeOwned> Stream for StreamIn<T> {
    type Item = Result<T, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let chunk = std::task::ready!(Pin::new(&mut self.chunks).poll_next(cx));
        Poll::Ready(chunk.map(|c| c.and_then(|bytes| json::decode(&self.op, &bytes))))
    }
}

/// The values a service method streams back as its result: one StreamResult part each.
/// An `Err` ends the stream with an ErrorResult.
///
/// `E` is the items' error type. With the default, [`Error`], an `Err` travels as its
/// text. A method that names its own, `StreamOut<T, E>` (or `Result<StreamOut<T, E>,
/// E>`), answers an `Err` the way it answers a single result's typed error: as the JSON
/// of an `E: Serialize`, which the generated client decodes into
/// [`CallError::Remote`](crate::CallError::Remote) for the caller to match.
pub struct StreamOut<T, E = Error> {
    values: crate::BoxStream<Result<T, E>>,
}

impl<T, E> fmt::Debug for StreamOut<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StreamOut(..)")
    }
}

impl<T: Send + 'static, E: Send + 'static> StreamOut<T, E> {
    /// From any stream of results.
    pub fn new<S>(stream: S) -> Self
    where
        S: Stream<Item = Result<T, E>> + Send + 'static,
    {
        Self {
            values: Box::pin(stream),
        }
    }

    /// From any stream of values.
    pub fn values<S>(stream: S) -> Self
    where
        S: Stream<Item = T> + Send + 'static,
    {
        use futures_util::StreamExt;
        Self::new(stream.map(Ok))
    }

    /// From an iterator of values.
    pub fn iter<I>(values: I) -> Self
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
    {
        Self::values(futures_util::stream::iter(values))
    }

    /// A channel: what is sent on the returned sender streams out, until it is dropped.
    /// (To end with an error, make a stream of results from a channel of results and
    /// give it to [`new`](Self::new).)
    pub fn channel(capacity: usize) -> (tokio::sync::mpsc::Sender<T>, Self) {
        let (tx, mut rx) = tokio::sync::mpsc::channel(capacity.max(1));
        let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        (tx, Self::values(stream))
    }
}

impl<T: Serialize + Send + 'static, E: fmt::Display + Send + 'static> StreamOut<T, E> {
    /// The reply of operation `op` that streams these values as JSON; an `Err` item ends
    /// it with the text `json` gives, else the error's `Display` text.
    pub(crate) fn into_reply(
        self,
        op: &str,
        json: impl Fn(&E) -> Option<String> + Send + 'static,
    ) -> crate::Reply {
        crate::Reply::json_stream_for(op, self.values, move |e: &E| {
            json(e).unwrap_or_else(|| e.to_string())
        })
    }
}

/// The sending half of a typed stream request: each [`send`](Self::send) is one JSON
/// chunk; [`finish`](Self::finish) ends the request stream.
pub struct JsonSender<T> {
    writer: StreamWriter,
    _values: PhantomData<fn(T)>,
}

impl<T> fmt::Debug for JsonSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("JsonSender").field(&self.writer).finish()
    }
}

impl<T: Serialize> JsonSender<T> {
    /// Typed sends over a raw stream writer.
    pub fn new(writer: StreamWriter) -> Self {
        Self {
            writer,
            _values: PhantomData,
        }
    }

    /// Sends one value.
    pub async fn send(&mut self, value: &T) -> Result<(), Error> {
        self.writer.send_json(value).await
    }

    /// Ends the request stream.
    pub async fn finish(self) -> Result<(), Error> {
        self.writer.finish().await
    }
}

/// The results of a typed request, read as a `Stream` of `Result<T, E>` (one item per
/// StreamResult part, or one for a single result).
///
/// `E` is what a failure becomes: [`Error`], or for a method that declares an error type
/// of its own, [`CallError`](crate::CallError)`<E>`, so that an error the handler streams
/// back is matched like a single result's.
pub struct JsonResults<T, E = Error> {
    results: ResultStream,
    op: Box<str>,
    error: fn(Error) -> E,
    _values: PhantomData<fn() -> T>,
}

impl<T, E> fmt::Debug for JsonResults<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("JsonResults").field(&self.results).finish()
    }
}

impl<T: DeserializeOwned> JsonResults<T> {
    /// Typed results over raw ones.
    pub fn new(results: ResultStream, op: &str) -> Self {
        Self::with_errors(results, op, std::convert::identity)
    }
}

impl<T: DeserializeOwned, E> JsonResults<T, E> {
    /// Typed results over raw ones, each failure made into an `E` by `error`.
    pub fn with_errors(results: ResultStream, op: &str, error: fn(Error) -> E) -> Self {
        Self {
            results,
            op: op.into(),
            error,
            _values: PhantomData,
        }
    }

    /// The next value, or `None` after the last.
    pub async fn next_value(&mut self) -> Option<Result<T, E>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// The one result of a request that streams its input but answers once.
    pub async fn result(mut self) -> Result<T, E> {
        match self.next_value().await {
            Some(result) => result,
            None => Err((self.error)(Error::Decode {
                op: self.op.to_string(),
                message: "the peer ended its results without a value".into(),
            })),
        }
    }
}

impl<T: DeserializeOwned, E> Stream for JsonResults<T, E> {
    type Item = Result<T, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let chunk = std::task::ready!(Pin::new(&mut self.results).poll_next(cx));
        Poll::Ready(chunk.map(|c| {
            c.and_then(|bytes: Bytes| json::decode(&self.op, &bytes))
                .map_err(self.error)
        }))
    }
}

/// A context a service method takes instead of the connection itself: mark the
/// parameter `#[gotalk(context)]` (right after `&self`) and it is made from the caller's
/// connection for every call. A context that cannot be made (say, the caller has not
/// signed in) answers the request with an error result, and drops a notification.
///
/// ```
/// use gotalk::{Error, FromSock, Sock};
///
/// /// The signed-in user, kept in the connection's state by a `sign-in` operation.
/// #[derive(Clone)]
/// pub struct User(pub String);
///
/// impl FromSock for User {
///     fn from_sock(sock: &Sock) -> Result<Self, Error> {
///         match sock.state::<User>() {
///             Some(user) => Ok((*user).clone()),
///             None => Err(Error::message("sign in first")),
///         }
///     }
/// }
///
/// #[gotalk::service]
/// pub trait Account {
///     async fn whoami(&self, #[gotalk(context)] user: User) -> String;
/// }
/// ```
pub trait FromSock: Sized {
    /// The context for a call that came on `sock`.
    fn from_sock(sock: &crate::Sock) -> Result<Self, crate::Error>;

    /// The context for `call`, which came on `sock`: what the generated services call.
    /// By default [`from_sock`](Self::from_sock); a context that needs the call itself
    /// (its deadline: see [`Deadline`]) overrides this.
    fn from_call(sock: &crate::Sock, call: &CallInfo) -> Result<Self, crate::Error> {
        let _ = call;
        Self::from_sock(sock)
    }
}

/// What a context learns about the call it is made for ([`FromSock::from_call`]).
#[derive(Clone, Debug, Default)]
pub struct CallInfo {
    deadline: Option<Instant>,
}

impl CallInfo {
    /// A call whose caller waits until `deadline` (if it said).
    pub fn new(deadline: Option<Instant>) -> Self {
        Self { deadline }
    }

    /// When the caller stops waiting, if it sent its timeout (our protocol extension,
    /// `EXTENSIONS.md`).
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

/// The call's deadline, as a service method's context: past it the caller no longer
/// waits, and the handler is dropped (`EXTENSIONS.md`). `None` when the caller sent none.
///
/// ```
/// use gotalk::Deadline;
///
/// #[gotalk::service]
/// pub trait Reports {
///     async fn build(&self, #[gotalk(context)] deadline: Deadline) -> String;
/// }
///
/// struct Builder;
/// impl Reports for Builder {
///     async fn build(&self, deadline: Deadline) -> String {
///         match deadline.0 {
///             Some(at) => format!("{} ms to go", at.saturating_duration_since(std::time::Instant::now()).as_millis()),
///             None => "no hurry".into(),
///         }
///     }
/// }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deadline(pub Option<Instant>);

impl FromSock for Deadline {
    fn from_sock(_: &crate::Sock) -> Result<Self, crate::Error> {
        Ok(Self(None))
    }

    fn from_call(_: &crate::Sock, call: &CallInfo) -> Result<Self, crate::Error> {
        Ok(Self(call.deadline))
    }
}

impl FromSock for crate::Sock {
    fn from_sock(sock: &crate::Sock) -> Result<Self, crate::Error> {
        Ok(sock.clone())
    }
}
