//! Middleware around the single-result calls a connection makes, as its call path runs
//! it: what it sees of a call about to go out ([`Outgoing`]) and the rest of the chain
//! ([`NextCall`]). Public as `gotalk::middleware`.

use std::{fmt, future::Future, sync::Arc, time::Duration};

use bytes::Bytes;

use super::{BoxFuture, Sock};
use crate::error::Error;

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
    pub(super) fn new(call: impl Future<Output = Result<Bytes, Error>> + Send + 'static) -> Self {
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
pub(super) type AroundCall =
    Arc<dyn Fn(Outgoing, NextCall) -> BoxFuture<Result<Bytes, Error>> + Send + Sync>;
