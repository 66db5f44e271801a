//! tower layers around handlers (feature `tower`), where tower's model fits: a
//! concurrency limit, a timeout or load shedding shared by every connection of a set.
//!
//! ```
//! use std::time::Duration;
//! use gotalk::{middleware, Handlers};
//! use tower::ServiceBuilder;
//!
//! let handlers = Handlers::new()
//!     .handle("work", |n: u64| async move { Ok::<_, gotalk::Error>(n * 2) })
//!     .wrap(middleware::tower::layer(
//!         ServiceBuilder::new()
//!             .load_shed() // over the limit: answered with a RetryResult
//!             .concurrency_limit(64) // handlers running at once, all connections together
//!             .timeout(Duration::from_secs(10)), // then answered with an error
//!     ));
//! ```
//!
//! Each request clones the layered service (tower's `call` takes `&mut self`, and one
//! set serves every connection at once) and drives its `poll_ready`: clones share their
//! state (the limit's semaphore), so the limit holds across connections.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tower::{Layer, Service, ServiceExt};

use super::{Incoming, Next};
use crate::{conn::BoxFuture, Reply};

/// A request on its way through tower layers: what middleware sees, and the rest of the
/// chain.
#[derive(Debug)]
pub struct Handling {
    /// The request about to be handled.
    pub incoming: Incoming,
    /// The handler (and inner middleware).
    pub next: Next,
}

/// The innermost service of a layer stack: runs the handler.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunHandler;

impl Service<Handling> for RunHandler {
    type Response = Reply;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Reply, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, handling: Handling) -> Self::Future {
        Box::pin(async move { Ok(handling.next.run().await) })
    }
}

/// How long a caller refused by load shedding is asked to wait before retrying.
pub const OVERLOADED_RETRY: Duration = Duration::from_millis(100);

/// Middleware for [`Handlers::wrap`](crate::Handlers::wrap) from a tower layer (or a
/// `ServiceBuilder`) over [`RunHandler`]. A layer's error answers an ErrorResult with
/// its text, except tower's `Overloaded` (from `load_shed`), which answers a RetryResult
/// after [`OVERLOADED_RETRY`].
pub fn layer<L>(layer: L) -> impl Fn(Incoming, Next) -> BoxFuture<Reply> + Send + Sync + 'static
where
    L: Layer<RunHandler>,
    L::Service: Service<Handling, Response = Reply> + Clone + Send + Sync + 'static,
    <L::Service as Service<Handling>>::Future: Send + 'static,
    <L::Service as Service<Handling>>::Error: Into<tower::BoxError>,
{
    let service = layer.layer(RunHandler);
    move |incoming, next| {
        let service = service.clone();
        Box::pin(async move {
            match service.oneshot(Handling { incoming, next }).await {
                Ok(reply) => reply,
                Err(e) => refused(e.into()),
            }
        })
    }
}

fn refused(e: tower::BoxError) -> Reply {
    if e.is::<tower::load_shed::error::Overloaded>() {
        return Reply::Retry {
            wait: OVERLOADED_RETRY,
            reason: "overloaded".into(),
        };
    }
    if e.is::<tower::timeout::error::Elapsed>() {
        return Reply::Error("handler timed out".into());
    }
    Reply::Error(e.to_string())
}
