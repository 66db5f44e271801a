//! Middleware: code around every handler of a [`Handlers`](crate::Handlers) set
//! ([`Handlers::wrap`](crate::Handlers::wrap)) and around every single-result call a
//! connection makes ([`Config::wrap_calls`](crate::Config::wrap_calls)), for what every
//! production service needs in one place: authentication, logging, timing, metrics,
//! rate limits.
//!
//! A middleware is a function of what is about to run and the rest of the chain:
//!
//! ```
//! use std::time::Instant;
//! use gotalk::{middleware::{Incoming, Next}, Handlers, Reply};
//!
//! let mut handlers = Handlers::new();
//! handlers.handle("greet", |name: String| async move {
//!     Ok::<_, gotalk::Error>(format!("Hello {name}"))
//! });
//! handlers.wrap(|incoming: Incoming, next: Next| async move {
//!     if incoming.size > 1024 {
//!         return Reply::Error("too large".into()); // refused: the handler never runs
//!     }
//!     let started = Instant::now();
//!     let reply = next.run().await;
//!     tracing::info!(op = %incoming.op, peer = incoming.sock.peer(), took = ?started.elapsed());
//!     reply
//! });
//! ```
//!
//! Middleware is applied when handlers are registered, so a set without any costs
//! nothing per request; with some, each request costs a boxed future per middleware and
//! one more for the handler (BENCHMARKS.md measures it).
//!
//! # Why not tower's `Service`
//!
//! Our own shape is a plain async function, because tower's `Service` takes `&mut self`
//! and `poll_ready`: a handler set is shared by every connection and every request, so
//! each request would clone the service stack and drive a readiness check it rarely
//! needs. Where tower's model fits (a concurrency limit shared by all connections, a
//! timeout, load shedding), bring its layers with `middleware::tower::layer`
//! (feature `tower`): each request then pays that clone, and only then.

use std::{fmt, future::Future, sync::Arc, time::Duration};

use bytes::Bytes;

use crate::{
    conn::{BoxFuture, HandlerBox, Reply},
    wire::{Name, RequestId},
    Error, Sock,
};

#[cfg(feature = "tower")]
pub mod tower;

/// A request (or notification) about to be handled, as middleware sees it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Incoming {
    /// The connection it came on: its peer, its state (`sock.state::<T>()`), and a way
    /// to call back.
    pub sock: Sock,
    /// The operation or notification name, as the peer sent it.
    pub op: Name,
    /// The name of the handler that runs it: `op`, or `""` for the set's fallback (label
    /// metrics by this, not by `op`: the peer chooses `op`).
    pub handler: Arc<str>,
    /// What kind of message it is.
    pub kind: Kind,
    /// The request's ID on the wire (none for a notification).
    pub id: Option<RequestId>,
    /// The payload's size in bytes (0 for a stream request: its chunks come after).
    pub size: usize,
    /// When the caller stops waiting, if it said (see
    /// [`Request::deadline`](crate::Request::deadline)).
    pub deadline: Option<std::time::Instant>,
}

/// The kinds of message a handler handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A single request.
    Request,
    /// A stream request: its chunks go on to the handler.
    StreamRequest,
    /// A notification: its reply is dropped (middleware may still refuse it, by not
    /// running it).
    Notification,
}

/// The rest of the chain: inner middleware, then the handler. Run it to handle the
/// request; drop it to refuse (the handler never runs).
#[must_use = "the handler runs only when `run` is awaited"]
pub struct Next(HandlerBox);

impl Next {
    pub(crate) fn new(handler: impl Future<Output = Reply> + Send + 'static) -> Self {
        Self(HandlerBox::new(handler))
    }

    /// The handler's future as the registry made it (no second box).
    pub(crate) fn boxed(handler: HandlerBox) -> Self {
        Self(handler)
    }

    /// Runs the rest of the chain and gives its reply.
    pub async fn run(self) -> Reply {
        self.0.await
    }
}

impl fmt::Debug for Next {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Next(..)")
    }
}

/// A middleware around handlers, as a [`Handlers`](crate::Handlers) set keeps it.
pub(crate) type Around = Arc<dyn Fn(Incoming, Next) -> BoxFuture<Reply> + Send + Sync>;

pub(crate) fn around<F, Fut>(f: F) -> Around
where
    F: Fn(Incoming, Next) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    Arc::new(move |incoming, next| Box::pin(f(incoming, next)))
}

/// A single-result call about to go out, as middleware on calls sees it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Outgoing {
    /// The connection it goes out on.
    pub sock: Sock,
    /// The operation called.
    pub op: Arc<str>,
    /// The request payload's size in bytes.
    pub size: usize,
    /// How long the caller waits, if it set a timeout (or the connection's call timeout).
    pub timeout: Option<Duration>,
    /// How many times a RetryResult is retried.
    pub retries: u32,
}

/// The rest of an outgoing call: inner middleware, then the call itself (with its
/// timeout and retries). Run it to call; return without running it to refuse.
#[must_use = "the call goes out only when `run` is awaited"]
pub struct NextCall(BoxFuture<Result<Bytes, Error>>);

impl NextCall {
    pub(crate) fn new(call: impl Future<Output = Result<Bytes, Error>> + Send + 'static) -> Self {
        Self(Box::pin(call))
    }

    /// Makes the call and gives its result.
    pub async fn run(self) -> Result<Bytes, Error> {
        self.0.await
    }
}

impl fmt::Debug for NextCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NextCall(..)")
    }
}

/// A middleware around calls, as a connection keeps it.
pub(crate) type AroundCall =
    Arc<dyn Fn(Outgoing, NextCall) -> BoxFuture<Result<Bytes, Error>> + Send + Sync>;
