//! Admission: whether a request of the peer may run now, how many run, and draining for
//! a graceful shutdown. A request that is not admitted is answered at once by the
//! connection itself with a [`Refusal`]; one that is holds a [`Running`] until its
//! handler is done.

use std::{
    pin::pin,
    sync::atomic::{AtomicBool, AtomicUsize, Ordering},
};

use tokio::sync::Notify;

use super::Sock;
use crate::wire::{Header, Name, RequestId};

/// Which kind of request, for the count it falls under.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Single,
    Stream,
}

/// The handlers of the peer's requests running now, and whether the connection drains.
#[derive(Default)]
pub(super) struct Admission {
    running_single: AtomicUsize,
    running_streams: AtomicUsize,
    /// Set by `Sock::shutdown`: new requests are refused with a retry.
    draining: AtomicBool,
    /// Signalled when the last running handler finishes while draining (or on close).
    idle: Notify,
}

/// Why a request is not admitted: the answer the connection sends for it.
pub(super) enum Refusal {
    /// An ErrorResult: the request itself is at fault (not to be retried as-is).
    Error(String),
    /// A RetryResult: not now.
    Retry(&'static str),
}

impl Refusal {
    /// Answers request `id` with this refusal.
    pub(super) fn send(self, sock: &Sock, id: RequestId) {
        match self {
            Self::Error(text) => sock.send_now(Header::ErrorResult { id }, text.as_bytes()),
            Self::Retry(reason) => {
                let wait_ms = sock.limits().random_retry_wait_ms();
                sock.send_now(Header::RetryResult { id, wait_ms }, reason.as_bytes());
            }
        }
    }
}

impl Admission {
    fn counter(&self, kind: Kind) -> &AtomicUsize {
        match kind {
            Kind::Single => &self.running_single,
            Kind::Stream => &self.running_streams,
        }
    }

    /// Admits a request for `op` on `sock` whose handler (if this side has one) is
    /// `handler`: hands the handler back with a [`Running`] that counts it until dropped,
    /// or says why the request is refused.
    #[inline]
    pub(super) fn admit<H>(
        &self,
        sock: &Sock,
        kind: Kind,
        op: &Name,
        handler: Option<H>,
    ) -> Result<(Running, H), Refusal> {
        let limits = sock.limits();
        let max = match kind {
            Kind::Single => limits.max_single_requests,
            Kind::Stream => limits.max_stream_requests,
        };
        if kind == Kind::Stream && !limits.streams_allowed {
            return Err(Refusal::Error("stream requests not supported".into()));
        }
        let Some(handler) = handler else {
            return Err(Refusal::Error(format!(
                "unknown operation {:?}",
                op.as_str()
            )));
        };
        if self.draining.load(Ordering::Relaxed) {
            return Err(Refusal::Retry("shutting down"));
        }
        if self.counter(kind).load(Ordering::SeqCst) >= max {
            return Err(Refusal::Retry("request rate limit"));
        }
        self.counter(kind).fetch_add(1, Ordering::SeqCst);
        let running = Running {
            sock: sock.clone(),
            kind,
            held: 0,
        };
        Ok((running, handler))
    }

    /// How many handlers run now.
    pub(super) fn running(&self) -> usize {
        self.running_single.load(Ordering::SeqCst) + self.running_streams.load(Ordering::SeqCst)
    }

    /// Refuses new requests from now on, then waits until no handler runs (or `stop`
    /// says to stop waiting: the connection closed).
    pub(super) async fn drain(&self, stop: impl Fn() -> bool) {
        self.draining.store(true, Ordering::SeqCst);
        loop {
            let mut idle = pin!(self.idle.notified());
            idle.as_mut().enable();
            if self.running() == 0 || stop() {
                return;
            }
            idle.await;
        }
    }

    /// Wakes `drain` to look again (the connection closed).
    pub(super) fn wake_drain(&self) {
        self.idle.notify_waiters();
    }
}

/// An admitted request whose handler is running; dropping it counts it as done and
/// releases the bytes it held.
pub(super) struct Running {
    sock: Sock,
    kind: Kind,
    held: usize,
}

impl Running {
    /// Counts `bytes` (its request) as held until the handler is done.
    pub(super) fn hold(&mut self, bytes: usize) {
        self.sock.budgets().hold(bytes);
        self.held += bytes;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.held > 0 {
            self.sock.budgets().release(self.held);
        }
        let admission = self.sock.admission();
        admission.counter(self.kind).fetch_sub(1, Ordering::SeqCst);
        if admission.draining.load(Ordering::SeqCst) && admission.running() == 0 {
            admission.idle.notify_waiters();
        }
    }
}
