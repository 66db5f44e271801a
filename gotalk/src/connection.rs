//! What a generated client calls on: one connection ([`Sock`]) or a client that stays
//! connected ([`Reconnecting`](crate::Reconnecting)), through one trait, and the rule for
//! sending a call again when its connection closes under it.

use std::{borrow::Cow, future::Future, sync::Arc, time::Duration};

use bytes::Bytes;

use crate::{CallOptions, Error, Sock};

/// How many times an idempotent call is sent again, each on a new connection, before its
/// failure is returned: enough to ride out a server restart or two, few enough that a
/// call which itself brings the server down stops.
pub const RESENDS: u32 = 3;

/// Anything a generated client's request goes through: `GreetClient::greet(&target,
/// input)` takes a [`Sock`], a [`Reconnecting`](crate::Reconnecting), or a reference or
/// `Arc` of either. (Notifications go to anything that is [`Notify`](crate::Notify): a
/// connection, a reconnecting client, a topic's subscribers.)
///
/// What happens to a call in flight when its connection closes:
/// - By default it fails with [`Error::Closed`]: the peer may or may not have run it, and
///   only the application knows whether running it twice is harmless. A reconnecting
///   client's next call waits for the next connection (per its
///   [`WhileDisconnected`](crate::WhileDisconnected)).
/// - A call marked idempotent (the method's `#[gotalk(idempotent)]`, or
///   [`CallOptions::idempotent`]) made through a client that reconnects is sent again on
///   the next connection, up to [`RESENDS`] times, each attempt with the whole timeout;
///   the caller sees only the last attempt's outcome. On a plain [`Sock`] there is no next
///   connection, and it fails as any other call. Streams are never sent again.
///
/// ```no_run
/// # async fn run() -> Result<(), gotalk::Error> {
/// #[gotalk::service]
/// pub trait Tasks {
///     #[gotalk(idempotent)]
///     async fn status(&self, id: u64) -> String;
/// }
///
/// let client = gotalk::Reconnecting::tcp(["127.0.0.1:1234"], gotalk::Config::dialling()).start();
/// // Waits for a connection; if it closes before the answer, asks again on the next.
/// let status = TasksClient::status(&client, 7).await?;
/// # Ok(()) }
/// ```
pub trait Connection: Sync {
    /// The connection to call on now. A reconnecting client waits for one as its
    /// [`WhileDisconnected`](crate::WhileDisconnected) says.
    fn connection(&self) -> impl Future<Output = Result<Cow<'_, Sock>, Error>> + Send;

    /// Whether a closed connection is followed by another (so that an idempotent call is
    /// worth sending again). `false` unless the implementation reconnects.
    fn reconnects(&self) -> bool {
        false
    }
}

impl Connection for Sock {
    fn connection(&self) -> impl Future<Output = Result<Cow<'_, Sock>, Error>> + Send {
        std::future::ready(Ok(Cow::Borrowed(self)))
    }
}

impl<T: Connection + ?Sized> Connection for &T {
    fn connection(&self) -> impl Future<Output = Result<Cow<'_, Sock>, Error>> + Send {
        (**self).connection()
    }

    fn reconnects(&self) -> bool {
        (**self).reconnects()
    }
}

impl<T: Connection + Send + ?Sized> Connection for Arc<T> {
    fn connection(&self) -> impl Future<Output = Result<Cow<'_, Sock>, Error>> + Send {
        (**self).connection()
    }

    fn reconnects(&self) -> bool {
        (**self).reconnects()
    }
}

/// A single-result call on `target` with `options`, sent again on the next connection
/// when it is idempotent, `target` reconnects and the connection closed before the
/// answer (at most [`RESENDS`] times).
pub(crate) async fn call_resending<C: Connection + ?Sized>(
    target: &C,
    op: &str,
    payload: Bytes,
    options: CallOptions,
    timeout: Option<Duration>,
) -> Result<Bytes, Error> {
    let options = options.or_timeout(timeout);
    if !(options.is_idempotent() && target.reconnects()) {
        let sock = target.connection().await?;
        return sock.request_raw_with(op, payload, options).await;
    }
    let mut resends = 0;
    loop {
        // The connection a call failed on takes no more calls, so this is the next one
        // (`Reconnecting::sock` hands out none that does not).
        let sock = target.connection().await?;
        match sock.request_raw_with(op, payload.clone(), options).await {
            Err(Error::Closed(reason)) if resends < RESENDS => {
                resends += 1;
                tracing::debug!(
                    conn = sock.id(),
                    op,
                    "connection closed ({reason}) under an idempotent call: sending it again"
                );
            }
            result => return result,
        }
    }
}
