//! Middleware around handlers, as the registry applies it: what it sees of a request
//! about to be handled ([`Incoming`]) and the rest of the chain ([`Next`]). Public as
//! `gotalk::middleware`, whose docs say how to write one.

use std::{fmt, future::Future, sync::Arc};

use super::{handler::HandlerBox, BoxFuture, Reply, Sock};
use crate::wire::{Name, RequestId};

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
    pub(super) fn new(handler: impl Future<Output = Reply> + Send + 'static) -> Self {
        Self(HandlerBox::new(handler))
    }

    /// The handler's future as the registry made it (no second box).
    pub(super) fn boxed(handler: HandlerBox) -> Self {
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
pub(super) type Around = Arc<dyn Fn(Incoming, Next) -> BoxFuture<Reply> + Send + Sync>;

pub(super) fn around<F, Fut>(f: F) -> Around
where
    F: Fn(Incoming, Next) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    Arc::new(move |incoming, next| Box::pin(f(incoming, next)))
}
