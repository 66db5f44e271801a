//! The caller side: how this side's requests and notifications go out and how their
//! results come back, with per-call options (timeout, retries). The typed forms of these
//! calls (`request`, `notify`) are in `typed.rs`.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;

use super::{
    around_calls::{NextCall, Outgoing},
    chunks, extension,
    pending::Waiter,
    ResultStream, Sock, StreamWriter,
};
use crate::{
    error::Error,
    wire::{Header, RequestId},
};

/// Options for one call: a timeout and automatic retries.
///
/// ```
/// use std::time::Duration;
/// let opts = gotalk::CallOptions::new().timeout(Duration::from_secs(5)).retries(3);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct CallOptions {
    timeout: Option<Duration>,
    retries: u32,
    idempotent: bool,
}

impl CallOptions {
    /// No timeout, no retries.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fail with [`Error::Timeout`] when the whole call (retries included) takes longer.
    /// The request is forgotten: a late result is dropped.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// On a RetryResult, wait as long as the peer asked and send the request again, up to
    /// `retries` times (and never past the timeout).
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// The call is safe to run twice: made through a client that reconnects (a
    /// generated client's call on a [`Reconnecting`](crate::Reconnecting)), it is sent
    /// again on the next connection when its connection closes before the answer (see
    /// [`Connection`](crate::Connection)). A method marked `#[gotalk(idempotent)]` always
    /// is.
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// Whether the call may be sent again on the next connection.
    pub(crate) fn is_idempotent(&self) -> bool {
        self.idempotent
    }

    /// These options, with `timeout` if they have none.
    pub(crate) fn or_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = self.timeout.or(timeout);
        self
    }
}

impl Sock {
    /// Sends a single request with a raw payload and waits for its result.
    ///
    /// An ErrorResult becomes [`Error::Remote`], a RetryResult [`Error::Retry`]. If the
    /// peer answers with a stream result, its parts are returned concatenated.
    // Not an `async fn`: the future is `request_within`'s own, one layer (and its copy of
    // the arguments) less in every call's future, which callers hold and move.
    pub fn request_raw<'a>(
        &'a self,
        op: &'a str,
        payload: impl Into<Bytes>,
    ) -> impl Future<Output = Result<Bytes, Error>> + Send + 'a {
        self.request_within(op, payload.into(), None)
    }

    /// [`request_raw`](Self::request_raw) with a timeout and automatic retries.
    pub async fn request_raw_with(
        &self,
        op: &str,
        payload: impl Into<Bytes>,
        options: CallOptions,
    ) -> Result<Bytes, Error> {
        let payload = payload.into();
        let options = options.or_timeout(self.limits().call_timeout);
        if self.config().around_calls.is_empty() {
            self.call_unwrapped(op, payload, options).await
        } else {
            self.call_wrapped(op, payload, options).await
        }
    }

    /// A call in the middleware set by [`Config::wrap_calls`](crate::Config::wrap_calls).
    fn call_wrapped(
        &self,
        op: &str,
        payload: Bytes,
        options: CallOptions,
    ) -> crate::BoxFuture<Result<Bytes, Error>> {
        let call = Outgoing {
            sock: self.clone(),
            op: op.into(),
            size: payload.len(),
            timeout: options.timeout,
            retries: options.retries,
        };
        let (sock, op) = (self.clone(), call.op.clone());
        let mut next =
            NextCall::new(async move { sock.call_unwrapped(&op, payload, options).await });
        for around in &self.config().around_calls {
            next = NextCall::new(around(call.clone(), next));
        }
        Box::pin(next.run())
    }

    /// A call with its options (its timeout already the connection's if it had none).
    async fn call_unwrapped(
        &self,
        op: &str,
        payload: Bytes,
        options: CallOptions,
    ) -> Result<Bytes, Error> {
        let timeout = options.timeout;
        if options.retries == 0 {
            return self.request_unwrapped(op, payload, timeout).await;
        }
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let mut retries = options.retries;
        loop {
            let left = deadline.map(|d| d.saturating_duration_since(tokio::time::Instant::now()));
            let attempt = self.request_once(op, payload.clone(), left);
            // Timers boxed, as in `request_within`.
            let result = match deadline {
                Some(deadline) => Box::pin(tokio::time::timeout_at(deadline, attempt))
                    .await
                    .unwrap_or_else(|_| {
                        Err(Error::Timeout {
                            op: op.to_owned(),
                            after: timeout.unwrap_or_default(),
                        })
                    }),
                None => attempt.await,
            };
            match result {
                Err(Error::Retry { wait, .. })
                    if retries > 0
                        && deadline.is_none_or(|d| tokio::time::Instant::now() + wait < d) =>
                {
                    retries -= 1;
                    tracing::debug!(conn = self.id(), op, ?wait, "retrying after RetryResult");
                    Box::pin(tokio::time::sleep(wait)).await;
                }
                other => return other,
            }
        }
    }

    /// One request's result within `timeout`, or else [`Limits::call_timeout`].
    ///
    /// [`Limits::call_timeout`]: crate::Limits::call_timeout
    // Not an `async fn`: its future would hold another copy of the arguments and of the
    // call's state around `RequestOnce`.
    #[inline]
    pub(crate) fn request_within<'a>(
        &'a self,
        op: &'a str,
        payload: Bytes,
        timeout: Option<Duration>,
    ) -> RequestWithin<'a> {
        let timeout = timeout.or(self.limits().call_timeout);
        if !self.config().around_calls.is_empty() {
            let options = CallOptions {
                timeout,
                ..CallOptions::default()
            };
            return RequestWithin(Within::Wrapped(self.call_wrapped(op, payload, options)));
        }
        self.request_unwrapped(op, payload, timeout)
    }

    /// [`request_within`](Self::request_within) with its timeout, without middleware.
    #[inline]
    fn request_unwrapped<'a>(
        &'a self,
        op: &'a str,
        payload: Bytes,
        timeout: Option<Duration>,
    ) -> RequestWithin<'a> {
        let call = self.request_once(op, payload, timeout);
        match timeout {
            None => RequestWithin(Within::Untimed(call)),
            // Boxed: a timer inline would make every call's future larger, with or without
            // a timeout.
            Some(after) => RequestWithin(Within::Timed {
                call: Box::pin(tokio::time::timeout(after, call)),
                op,
                after,
            }),
        }
    }

    /// One request, one result: the ID is registered, the request queued, and the result
    /// taken from the pending table once the reader delivered it. Dropping the future
    /// forgets the request.
    #[inline]
    fn request_once<'a>(
        &'a self,
        op: &'a str,
        payload: Bytes,
        timeout: Option<Duration>,
    ) -> RequestOnce<'a> {
        RequestOnce {
            sock: self,
            op,
            payload,
            timeout,
            step: Step::Start,
        }
    }

    /// Sends a single request and reads its results as a stream: a stream result gives one
    /// item per part, a single result one item.
    pub async fn request_results(
        &self,
        op: &str,
        payload: impl Into<Bytes>,
    ) -> Result<ResultStream, Error> {
        let (results, id) = self.open_results(op)?;
        self.send(Header::SingleRequest { id, name: op }, &payload.into())
            .await?;
        Ok(results)
    }

    /// Opens a stream request: `first` goes out with the request, then send more chunks
    /// with the returned [`StreamWriter`] and end them with [`StreamWriter::finish`].
    /// The results arrive on the [`ResultStream`].
    pub async fn stream_request(
        &self,
        op: &str,
        first: impl Into<Bytes>,
    ) -> Result<(StreamWriter, ResultStream), Error> {
        let (results, id) = self.open_results(op)?;
        self.send(Header::StreamRequest { id, name: op }, &first.into())
            .await?;
        Ok((StreamWriter::new(self.clone(), id, op), results))
    }

    fn open_results(&self, op: &str) -> Result<(ResultStream, RequestId), Error> {
        let (tx, rx) = chunks::channel(self.limits().stream_buffer, self.budgets().clone());
        let id = self.pending().register(Waiter::Stream { tx })?;
        Ok((ResultStream::new(self.clone(), id, op, rx), id))
    }

    /// Sends a notification with a raw payload.
    pub async fn notify_raw(&self, name: &str, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.send(Header::Notification { name }, &payload.into())
            .await
    }

    /// Queues a notification with a raw payload if the write queue has room for it now
    /// (fewer than [`Limits::write_buffer`](crate::Limits::write_buffer) bytes wait, and
    /// fewer than 64 KiB while the byte budgets are spent): `Ok(false)`, sending nothing,
    /// if the peer has not yet read enough of what it was sent. For fan-out that must
    /// never wait on one slow peer ([`Topics`](crate::Topics)).
    pub fn try_notify_raw(&self, name: &str, payload: impl Into<Bytes>) -> Result<bool, Error> {
        match self.try_send(Header::Notification { name }, &payload.into()) {
            Some(sent) => sent.map(|()| true),
            None => Ok(false),
        }
    }

    /// Sends a heartbeat now with this side's load (see [`set_load`](Self::set_load)) and
    /// clock. Heartbeats also go out by themselves when
    /// [`Config::heartbeat_interval`](crate::Config::heartbeat_interval) is set.
    pub fn send_heartbeat(&self) -> Result<(), Error> {
        let time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
        let load = self.load();
        tracing::trace!(conn = self.id(), "send h load={load} time={time}");
        self.outbox()
            .push_now(Header::Heartbeat { load, time }, b"")
            .map_err(|e| e.into_error(|| self.close_error()))
    }
}

/// The future of one request and its result ([`Sock::request_once`]). Written by hand:
/// every call holds one (and callers hold and move their calls), and as an `async fn`
/// it was four times the size.
struct RequestOnce<'a> {
    sock: &'a Sock,
    op: &'a str,
    payload: Bytes,
    /// How long the caller waits, sent to the peer as the request's deadline.
    timeout: Option<Duration>,
    step: Step<'a>,
}

/// The future of [`Sock::request_within`]: a call, with its timer if it has one.
pub(crate) struct RequestWithin<'a>(Within<'a>);

enum Within<'a> {
    Untimed(RequestOnce<'a>),
    /// In middleware (which owns what it needs).
    Wrapped(crate::BoxFuture<Result<Bytes, Error>>),
    Timed {
        call: Pin<Box<tokio::time::Timeout<RequestOnce<'a>>>>,
        op: &'a str,
        after: Duration,
    },
}

impl Future for RequestWithin<'_> {
    type Output = Result<Bytes, Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            Within::Untimed(call) => Pin::new(call).poll(cx),
            Within::Wrapped(call) => call.as_mut().poll(cx),
            Within::Timed { call, op, after } => match call.as_mut().poll(cx) {
                Poll::Ready(Ok(result)) => Poll::Ready(result),
                Poll::Ready(Err(_)) => Poll::Ready(Err(Error::Timeout {
                    op: (*op).to_owned(),
                    after: *after,
                })),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

enum Step<'a> {
    Start,
    /// Waiting for room in the write queue (rare, so boxed).
    Sending(
        RequestId,
        Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>>,
    ),
    /// Sent; the result is looked for when the task is woken.
    Waiting(RequestId),
    Done,
}

impl Future for RequestOnce<'_> {
    type Output = Result<Bytes, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let pending = this.sock.pending();
        loop {
            match &mut this.step {
                Step::Start => {
                    // Registered with this task's waker: when the request goes out in this
                    // same poll (almost always) the result is not looked for before it can
                    // be there.
                    let id = match pending.register(Waiter::single(cx.waker())) {
                        Ok(id) => id,
                        Err(e) => return this.finish(Err(e)),
                    };
                    this.step = Step::Waiting(id);
                    if let Some(timeout) = this.timeout {
                        extension::send_deadline(this.sock, id, timeout);
                    }
                    let header = Header::SingleRequest { id, name: this.op };
                    match this.sock.try_send(header, &this.payload) {
                        Some(Ok(())) => return Poll::Pending,
                        Some(Err(e)) => return this.finish(Err(e)),
                        None => {
                            let (sock, payload) = (this.sock, this.payload.clone());
                            let send = async move { sock.send(header, &payload).await };
                            this.step = Step::Sending(id, Box::pin(send));
                        }
                    }
                }
                Step::Sending(id, send) => match send.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(())) => this.step = Step::Waiting(*id),
                    Poll::Ready(Err(e)) => return this.finish(Err(e)),
                },
                Step::Waiting(id) => {
                    let result = std::task::ready!(pending.poll_single(*id, cx));
                    this.step = Step::Done;
                    return Poll::Ready(result);
                }
                Step::Done => return Poll::Ready(Err(this.sock.close_error())),
            }
        }
    }
}

impl RequestOnce<'_> {
    /// Ends the call with `result`, forgetting its request.
    fn finish(&mut self, result: Result<Bytes, Error>) -> Poll<Result<Bytes, Error>> {
        self.forget();
        Poll::Ready(result)
    }

    #[inline]
    fn forget(&mut self) {
        // A call that got its result (nearly all) has nothing to forget.
        if matches!(self.step, Step::Done) {
            return;
        }
        self.forget_request();
    }

    fn forget_request(&mut self) {
        if let Step::Sending(id, _) | Step::Waiting(id) =
            std::mem::replace(&mut self.step, Step::Done)
        {
            // Given up before its result came: the peer may stop working on it.
            if self.sock.pending().remove(id) {
                extension::send_cancel(self.sock, id);
            }
        }
    }
}

impl Drop for RequestOnce<'_> {
    /// A call given up (a timeout, a dropped future) leaves nothing behind.
    fn drop(&mut self) {
        self.forget();
    }
}
