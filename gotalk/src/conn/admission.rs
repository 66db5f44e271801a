//! Admission: whether a request of the peer may run now, how many run, and draining for
//! a graceful shutdown. A request that is not admitted is answered at once by the
//! connection itself with a [`Refusal`]; one that is holds a [`Running`] until its
//! handler is done.

use std::{
    pin::pin,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
};

use tokio::sync::Notify;

use super::{budget::Budgets, Limits, Sock};
use crate::wire::{Header, Name, RequestId};

/// Which kind of request, for the count it falls under.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Single,
    Stream,
}

/// The handlers of the peer's requests running now, and whether the connection drains.
pub(super) struct Admission {
    /// What a running request holds is counted here (see [`Running::hold`]).
    budgets: Arc<Budgets>,
    running_single: AtomicUsize,
    running_streams: AtomicUsize,
    /// Set by `Sock::shutdown`: new requests are refused with a retry.
    draining: AtomicBool,
    /// Signalled when the last running handler finishes while draining (or on close).
    idle: Notify,
}

/// Why a request is not admitted: the answer the connection sends for it.
#[derive(Debug)]
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
    pub(super) fn new(budgets: Arc<Budgets>) -> Self {
        Self {
            budgets,
            running_single: AtomicUsize::new(0),
            running_streams: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            idle: Notify::new(),
        }
    }

    fn counter(&self, kind: Kind) -> &AtomicUsize {
        match kind {
            Kind::Single => &self.running_single,
            Kind::Stream => &self.running_streams,
        }
    }

    /// Admits a request for `op` whose handler (if this side has one) is `handler`,
    /// within `limits`: hands the handler back with a [`Running`] that counts it until
    /// dropped, or says why the request is refused.
    #[inline]
    pub(super) fn admit<H>(
        self: &Arc<Self>,
        limits: &Limits,
        kind: Kind,
        op: &Name,
        handler: Option<H>,
    ) -> Result<(Running, H), Refusal> {
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
            admission: self.clone(),
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
    admission: Arc<Admission>,
    kind: Kind,
    held: usize,
}

impl Running {
    /// Counts `bytes` (its task, a reply waiting for room) as held until the handler is
    /// done.
    pub(super) fn hold(&mut self, bytes: usize) {
        self.admission.budgets.hold(bytes);
        self.held += bytes;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let admission = &self.admission;
        if self.held > 0 {
            admission.budgets.release(self.held);
        }
        admission.counter(self.kind).fetch_sub(1, Ordering::SeqCst);
        if admission.draining.load(Ordering::SeqCst) && admission.running() == 0 {
            admission.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn admission(budgets: &Arc<Budgets>) -> Arc<Admission> {
        Arc::new(Admission::new(budgets.clone()))
    }

    fn op() -> Name {
        Name::from_static("work").expect("a valid name")
    }

    fn refused<T>(admitted: Result<T, Refusal>) -> String {
        match admitted {
            Ok(_) => panic!("admitted"),
            Err(Refusal::Error(text)) => format!("error: {text}"),
            Err(Refusal::Retry(reason)) => format!("retry: {reason}"),
        }
    }

    #[test]
    fn requests_past_the_limit_are_told_to_retry_until_one_is_done() {
        let budgets = Arc::new(Budgets::new(1 << 20, None));
        let admission = admission(&budgets);
        let limits = Limits::default().max_single_requests(2);
        let a = admission
            .admit(&limits, Kind::Single, &op(), Some(()))
            .unwrap();
        let _b = admission
            .admit(&limits, Kind::Single, &op(), Some(()))
            .unwrap();
        let third = admission.admit(&limits, Kind::Single, &op(), Some(()));
        assert_eq!(refused(third), "retry: request rate limit");
        let _stream = admission
            .admit(&limits, Kind::Stream, &op(), Some(()))
            .expect("streams are counted apart");
        assert_eq!(admission.running(), 3);
        drop(a);
        assert!(admission
            .admit(&limits, Kind::Single, &op(), Some(()))
            .is_ok());
    }

    #[test]
    fn unknown_operations_and_unwanted_streams_are_errors() {
        let budgets = Arc::new(Budgets::new(1 << 20, None));
        let admission = admission(&budgets);
        let limits = Limits::default().streams_allowed(false);
        let unknown = admission.admit::<()>(&limits, Kind::Single, &op(), None);
        assert_eq!(refused(unknown), "error: unknown operation \"work\"");
        let stream = admission.admit(&limits, Kind::Stream, &op(), Some(()));
        assert_eq!(refused(stream), "error: stream requests not supported");
        assert_eq!(admission.running(), 0);
    }

    #[test]
    fn a_running_request_holds_its_bytes_until_done() {
        let budgets = Arc::new(Budgets::new(1 << 20, None));
        let admission = admission(&budgets);
        let limits = Limits::default();
        let (mut running, ()) = admission
            .admit(&limits, Kind::Single, &op(), Some(()))
            .unwrap();
        running.hold(100);
        running.hold(20);
        assert_eq!(budgets.held(), 120);
        drop(running);
        assert_eq!(budgets.held(), 0);
    }

    #[tokio::test]
    async fn draining_refuses_new_requests_and_waits_for_running_ones() {
        let budgets = Arc::new(Budgets::new(1 << 20, None));
        let admission = admission(&budgets);
        let limits = Limits::default();
        let (running, ()) = admission
            .admit(&limits, Kind::Single, &op(), Some(()))
            .unwrap();
        let drained = tokio::spawn({
            let admission = admission.clone();
            async move { admission.drain(|| false).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!drained.is_finished(), "a handler still runs");
        let late = admission.admit(&limits, Kind::Single, &op(), Some(()));
        assert_eq!(refused(late), "retry: shutting down");
        drop(running);
        tokio::time::timeout(Duration::from_secs(5), drained)
            .await
            .expect("drained once the last handler is done")
            .unwrap();
    }
}
