//! The responder side: running an admitted request's handler and sending its reply as
//! the protocol's result messages, keeping a handler's panic from taking anything down;
//! and running notification handlers in order.

use std::{
    future::Future,
    panic::AssertUnwindSafe,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use tokio::{sync::mpsc, time::Instant};

use super::{
    admission::Running,
    charge::{Keep, Kept},
    extension,
    handler::{BoxStream, Notification, NotificationFn, Reply},
    limits::{NOTIFICATION_QUEUE, PARKED_REQUEST},
    Sock,
};
use crate::{
    error::Error,
    wire::{Header, RequestId},
};

/// Runs a request's handler and sends its reply. The handler is first polled right here,
/// in the connection's task as it reads, and a single reply that is ready is queued at
/// once (the task writes it after reading): most
/// handlers answer without waiting, and then cost no task, no wake-up and no channel.
/// Only a handler that must wait (or a reply that must) is moved to a task of its own.
///
/// That first poll uses a no-op waker: a handler that is not ready is spawned, and the
/// new task polls it again at once with its own waker, which is the one it must wake.
/// A spawned handler keeps its request's memory charged (`keep`, see `charge.rs`), and
/// its task's (`PARKED_REQUEST`), until it is done; one that answers at once keeps
/// nothing (its request is gone before the next read).
///
/// A handler that must wait runs on until its `deadline`, if the peer sent one, and is
/// aborted if the peer cancels the request (see `extension.rs`).
///
/// A handler that answered at once is handed back, for its memory to be reused.
pub(super) fn dispatch<H>(
    sock: &Sock,
    id: RequestId,
    mut running: Running,
    mut handler: H,
    keep: Keep<'_>,
    deadline: Option<Instant>,
) -> Option<H>
where
    H: Future<Output = Reply> + Send + Unpin + 'static,
{
    let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
    let reply =
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(&mut handler).poll(&mut cx))) {
            Ok(Poll::Ready(reply)) => reply,
            Err(panic) => panicked(&panic),
            Ok(Poll::Pending) => {
                running.hold(PARKED_REQUEST);
                let kept = keep.into_owned();
                let task_sock = sock.clone();
                extension::spawn(sock.extension(), id, deadline, async move {
                    let reply = catch_panic(handler).await;
                    // Until its reply is queued: the reply may be a slice of the request.
                    send_reply(&task_sock, id, reply).await;
                    drop((kept, running));
                });
                return None;
            }
        };
    match Answer::new(id, reply) {
        Answer::Single(header, payload) => match sock.try_send(header, &payload) {
            Some(Ok(())) => {}
            Some(Err(e)) => tracing::debug!(conn = sock.id(), "result not sent: {e}"),
            None => {
                // Counted before the reader reads on, not once the task runs: the reply
                // and the task that waits with it.
                running.hold(payload.len() + PARKED_REQUEST);
                let sock = sock.clone();
                tokio::spawn(async move {
                    if let Err(e) = sock.send_counted(header, &payload).await {
                        tracing::debug!(conn = sock.id(), "result not sent: {e}");
                    }
                    drop(running);
                });
            }
        },
        Answer::Stream(parts) => {
            let task_sock = sock.clone();
            let mut task = Box::pin(async move {
                send_stream(&task_sock, id, parts).await;
                drop(running);
            });
            if task.as_mut().poll(&mut cx).is_pending() {
                extension::spawn(sock.extension(), id, deadline, task);
            }
        }
    }
    Some(handler)
}

/// Runs a handler; a panic becomes an ErrorResult instead of taking anything down.
async fn catch_panic(handler: impl Future<Output = Reply>) -> Reply {
    match AssertUnwindSafe(handler).catch_unwind().await {
        Ok(reply) => reply,
        Err(panic) => panicked(&panic),
    }
}

/// The reply for a handler that panicked.
fn panicked(panic: &Box<dyn std::any::Any + Send>) -> Reply {
    let text = panic_text(panic);
    tracing::error!("request handler panicked: {text}");
    Reply::Error(format!("handler panicked: {text}"))
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// A handler's reply as what goes on the wire.
enum Answer {
    /// One message: a result, an error or a retry.
    Single(Header<'static>, Bytes),
    /// Stream results, one per chunk, then the end.
    Stream(BoxStream<Result<Bytes, Error>>),
}

impl Answer {
    #[inline(always)]
    fn new(id: RequestId, reply: Reply) -> Self {
        match reply {
            Reply::Result(payload) => Self::Single(Header::SingleResult { id }, payload),
            Reply::Error(text) => {
                tracing::debug!("handler error: {text}");
                Self::Single(Header::ErrorResult { id }, Bytes::from(text))
            }
            Reply::Retry { wait, reason } => {
                let wait_ms = u32::try_from(wait.as_millis()).unwrap_or(u32::MAX);
                Self::Single(Header::RetryResult { id, wait_ms }, Bytes::from(reason))
            }
            Reply::Stream(parts) => Self::Stream(parts),
        }
    }
}

/// Sends a handler's reply as the protocol's result messages.
async fn send_reply(sock: &Sock, id: RequestId, reply: Reply) {
    match Answer::new(id, reply) {
        Answer::Single(header, payload) => {
            if let Err(e) = sock.send(header, &payload).await {
                tracing::debug!(conn = sock.id(), "result not sent: {e}");
            }
        }
        Answer::Stream(parts) => send_stream(sock, id, parts).await,
    }
}

/// Sends stream results as the handler's stream yields them, then the end (or an
/// ErrorResult if the stream fails or panics).
async fn send_stream(sock: &Sock, id: RequestId, mut parts: BoxStream<Result<Bytes, Error>>) {
    loop {
        let part = match AssertUnwindSafe(parts.next()).catch_unwind().await {
            Ok(part) => part,
            Err(panic) => {
                let text = format!("handler panicked: {}", panic_text(&panic));
                tracing::error!("stream handler {text}");
                let _ = sock
                    .send(Header::ErrorResult { id }, &Bytes::from(text))
                    .await;
                return;
            }
        };
        let sent = match part {
            Some(Ok(chunk)) if chunk.is_empty() => continue,
            Some(Ok(chunk)) => sock.send(Header::StreamResult { id }, &chunk).await,
            Some(Err(e)) => {
                let text = Bytes::from(e.to_string());
                let _ = sock.send(Header::ErrorResult { id }, &text).await;
                return;
            }
            None => break,
        };
        if sent.is_err() {
            return;
        }
    }
    if let Err(e) = sock.send(Header::StreamResult { id }, &Bytes::new()).await {
        tracing::debug!(conn = sock.id(), "stream end not sent: {e}");
    }
}

/// A notification for its handler, and what keeps its memory charged until the handler
/// is done.
type Queued = (NotificationFn, Notification, Kept);

/// The notifications of one connection, handled in order on a task of their own (so
/// that a handler may call the peer, whose answer the reader must be free to read). The
/// task starts with the first notification that has a handler.
#[derive(Default)]
pub(super) struct Notifications {
    queue: Option<mpsc::Sender<Queued>>,
}

/// The queue is full: [`wait`](Self::wait) for room.
pub(super) struct QueueFull {
    queue: mpsc::Sender<Queued>,
    item: Queued,
}

impl QueueFull {
    /// Queues the notification once there is room (or drops it if the task is gone).
    pub(super) async fn wait(self) {
        let _ = self.queue.send(self.item).await;
    }
}

impl Notifications {
    /// Queues a notification for `handler` if there is room now; `kept` keeps its
    /// memory charged until its handler is done.
    pub(super) fn try_push(
        &mut self,
        handler: NotificationFn,
        notification: Notification,
        kept: Kept,
    ) -> Result<(), QueueFull> {
        let queue = self.queue.get_or_insert_with(spawn_notification_task);
        match queue.try_send((handler, notification, kept)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => Ok(()),
            Err(mpsc::error::TrySendError::Full(item)) => Err(QueueFull {
                queue: queue.clone(),
                item,
            }),
        }
    }
}

fn spawn_notification_task() -> mpsc::Sender<Queued> {
    let (tx, mut rx) = mpsc::channel::<Queued>(NOTIFICATION_QUEUE);
    tokio::spawn(async move {
        while let Some((handler, notification, kept)) = rx.recv().await {
            let name = notification.name.clone();
            if let Err(panic) = AssertUnwindSafe(handler(notification)).catch_unwind().await {
                tracing::error!(
                    "notification handler {:?} panicked: {}",
                    name.as_str(),
                    panic_text(&panic)
                );
            }
            drop(kept);
        }
    });
    tx
}
