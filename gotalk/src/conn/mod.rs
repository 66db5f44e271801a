//! The connection layer: [`Sock`], one connection to a peer, with its reader and writer
//! tasks, its pending requests, its limits and its lifecycle.

mod chunks;
mod config;
mod limits;
mod outbox;
mod pending;
mod reader;
mod recycle;
mod signal;
mod streams;

use std::{
    any::{Any, TypeId},
    collections::HashMap,
    fmt,
    sync::{
        atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use serde::{de::DeserializeOwned, Serialize};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::Notify,
};

pub use config::{Config, HeartbeatInfo};
pub use limits::Limits;
pub use streams::{RequestChunks, ResultStream, StreamWriter};

use crate::{
    error::{CloseReason, Error, Side},
    handlers::Handlers,
    typed,
    wire::{Header, ProtocolErrorCode, VERSION},
};
use outbox::{Outbox, PushError, WriterExit, WriterParams};
use pending::{Pending, PendingGuard, Waiter};
use signal::Signal;

/// Locks a mutex, ignoring poisoning: nothing we do under our locks can leave the data
/// half-changed, so a panic elsewhere must not spread through the connection.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

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
}

/// One connection to a peer: a cheap, cloneable handle.
///
/// Both sides of a connection are equal: through a `Sock` you send requests and
/// notifications to the peer, while the [`Handlers`] it was created with answer the
/// peer's. Requests run concurrently and their results may arrive in any order.
///
/// The connection stays open until either side closes it: [`close`](Self::close),
/// [`shutdown`](Self::shutdown), the peer hanging up, or a protocol error. Dropping the
/// last handle does not close it (the handlers keep serving the peer).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), gotalk::Error> {
/// use gotalk::{Config, Handlers};
///
/// let mut handlers = Handlers::new();
/// handlers.handle("greet", |name: String| async move {
///     Ok::<_, gotalk::Error>(format!("Hello {name}"))
/// });
/// let (client, _server) = gotalk::pipe(Config::dialling(), Config::accepting().handlers(handlers));
/// let greeting: String = client.request("greet", "Rasmus").await?;
/// assert_eq!(greeting, "Hello Rasmus");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Sock {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// A process-unique number, for logs.
    id: u64,
    /// Who the peer is (an address), for logs and hooks.
    peer: String,
    outbox: Outbox,
    pending: Pending,
    handlers: RwLock<Handlers>,
    /// Its limits are the connection's limits.
    config: Config,
    /// Handlers of the peer's requests running now.
    running_single: AtomicUsize,
    running_streams: AtomicUsize,
    /// Set by `shutdown`: new requests are answered with a retry.
    draining: AtomicBool,
    /// Signalled when the last running handler finishes while draining.
    idle: Notify,
    /// Cancelled once the connection is closing.
    closing: Signal,
    /// Cancelled once the writer has flushed and shut down the stream.
    finished: Signal,
    reason: OnceLock<CloseReason>,
    load: AtomicU16,
    state: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl fmt::Debug for Sock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sock")
            .field("id", &self.inner.id)
            .field("peer", &self.inner.peer)
            .field("closed", &self.close_reason())
            .finish()
    }
}

static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

impl Sock {
    /// Starts speaking Gotalk over any byte stream (a socket, a pipe, a TLS stream).
    /// `peer` names the other end in logs and hooks. Must be called within a Tokio runtime.
    pub fn adopt<S>(stream: S, peer: impl Into<String>, config: Config) -> Sock
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (r, w) = tokio::io::split(stream);
        Self::from_halves(r, w, peer, config)
    }

    /// Like [`adopt`](Self::adopt), for a stream already split into its two halves
    /// (e.g. `TcpStream::into_split`, which needs no lock between them).
    pub fn from_halves<R, W>(reader: R, writer: W, peer: impl Into<String>, config: Config) -> Sock
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let sock = Sock {
            inner: Arc::new(Inner {
                id: NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed),
                peer: peer.into(),
                outbox: Outbox::new(config.limits.write_buffer),
                pending: Pending::default(),
                handlers: RwLock::new(config.handlers.clone()),
                config,
                running_single: AtomicUsize::new(0),
                running_streams: AtomicUsize::new(0),
                draining: AtomicBool::new(false),
                idle: Notify::new(),
                closing: Signal::default(),
                finished: Signal::default(),
                reason: OnceLock::new(),
                load: AtomicU16::new(0),
                state: Mutex::default(),
            }),
        };
        tracing::debug!(conn = sock.inner.id, peer = %sock.inner.peer, "connection open");
        // The version goes out first, without waiting for the peer's (as the reference).
        sock.inner.outbox.push_version(VERSION);
        // The writer task writes, and so does the reader when a batch of requests it read
        // produced answers (see `Outbox::flush_inline`); the lock is only taken by whoever
        // holds the outbox's writer role.
        let writer = Arc::new(std::sync::Mutex::new(writer));
        sock.spawn_writer(writer.clone());
        tokio::spawn(reader::run(sock.clone(), reader, writer));
        sock
    }

    fn spawn_writer<W: AsyncWrite + Unpin + Send + 'static>(
        &self,
        writer: Arc<std::sync::Mutex<W>>,
    ) {
        let sock = self.clone();
        tokio::spawn(async move {
            let inner = &sock.inner;
            let params = WriterParams {
                heartbeat_interval: inner.config.heartbeat_interval,
                write_timeout: inner.config.limits.write_timeout,
            };
            let exit = outbox::run_writer(&inner.outbox, &writer, params, || {
                let _ = sock.send_heartbeat_now();
            })
            .await;
            if let WriterExit::Failed(e) = exit {
                sock.close_with(CloseReason::Io(Arc::new(e)));
            }
            inner.finished.set();
        });
    }

    /// A process-unique number for this connection (it appears in logs as `conn`).
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// Who the peer is, as given when the connection was made (usually its address).
    pub fn peer(&self) -> &str {
        &self.inner.peer
    }

    /// The limits this connection enforces.
    pub fn limits(&self) -> &Limits {
        &self.inner.config.limits
    }

    /// Sends a single request with a raw payload and waits for its result.
    ///
    /// An ErrorResult becomes [`Error::Remote`], a RetryResult [`Error::Retry`]. If the
    /// peer answers with a stream result, its parts are returned concatenated.
    pub async fn request_raw(&self, op: &str, payload: impl Into<Bytes>) -> Result<Bytes, Error> {
        self.request_once(op, &payload.into()).await
    }

    /// [`request_raw`](Self::request_raw) with a timeout and automatic retries.
    pub async fn request_raw_with(
        &self,
        op: &str,
        payload: impl Into<Bytes>,
        options: CallOptions,
    ) -> Result<Bytes, Error> {
        let payload = payload.into();
        let deadline = options.timeout.map(|t| tokio::time::Instant::now() + t);
        let mut retries = options.retries;
        loop {
            let attempt = self.request_once(op, &payload);
            let result = match deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, attempt)
                    .await
                    .unwrap_or_else(|_| {
                        Err(Error::Timeout {
                            op: op.to_owned(),
                            after: options.timeout.unwrap_or_default(),
                        })
                    }),
                None => attempt.await,
            };
            match result {
                Err(Error::Retry { wait, .. })
                    if retries > 0
                        && deadline.map_or(true, |d| tokio::time::Instant::now() + wait < d) =>
                {
                    retries -= 1;
                    tracing::debug!(
                        conn = self.inner.id,
                        op,
                        ?wait,
                        "retrying after RetryResult"
                    );
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    async fn request_once(&self, op: &str, payload: &Bytes) -> Result<Bytes, Error> {
        let pending = &self.inner.pending;
        let id = pending.register(Waiter::single())?;
        let mut guard = PendingGuard::new(pending, id);
        self.push(Header::SingleRequest { id, name: op }, payload)
            .await?;
        let result = std::future::poll_fn(|cx| pending.poll_single(id, cx)).await;
        guard.disarm();
        result
    }

    /// Sends a single request with `input` as JSON and decodes the JSON result.
    pub async fn request<I, O>(&self, op: &str, input: &I) -> Result<O, Error>
    where
        I: Serialize + ?Sized,
        O: DeserializeOwned,
    {
        let payload = typed::encode(op, input)?;
        let result = self.request_once(op, &payload).await?;
        typed::decode(op, &result)
    }

    /// [`request`](Self::request) with a timeout and automatic retries.
    pub async fn request_with<I, O>(
        &self,
        op: &str,
        input: &I,
        options: CallOptions,
    ) -> Result<O, Error>
    where
        I: Serialize + ?Sized,
        O: DeserializeOwned,
    {
        let payload = typed::encode(op, input)?;
        let result = self.request_raw_with(op, payload, options).await?;
        typed::decode(op, &result)
    }

    /// Sends a single request and reads its results as a stream: a stream result gives one
    /// item per part, a single result one item.
    pub async fn request_results(
        &self,
        op: &str,
        payload: impl Into<Bytes>,
    ) -> Result<ResultStream, Error> {
        let (results, id) = self.open_results(op)?;
        self.push(Header::SingleRequest { id, name: op }, &payload.into())
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
        self.push(Header::StreamRequest { id, name: op }, &first.into())
            .await?;
        Ok((StreamWriter::new(self.clone(), id), results))
    }

    fn open_results(&self, op: &str) -> Result<(ResultStream, crate::wire::RequestId), Error> {
        let (tx, rx) = chunks::channel(self.inner.config.limits.stream_buffer);
        let id = self.inner.pending.register(Waiter::Stream { tx })?;
        Ok((ResultStream::new(self.clone(), id, op, rx), id))
    }

    /// Sends a notification with a raw payload.
    pub async fn notify_raw(&self, name: &str, payload: impl Into<Bytes>) -> Result<(), Error> {
        self.push(Header::Notification { name }, &payload.into())
            .await
    }

    /// Sends a notification with `value` as JSON.
    pub async fn notify<T: Serialize + ?Sized>(&self, name: &str, value: &T) -> Result<(), Error> {
        let payload = typed::encode(name, value)?;
        self.push(Header::Notification { name }, &payload).await
    }

    /// Sends a heartbeat now with this side's load (see [`set_load`](Self::set_load)) and
    /// clock. Heartbeats also go out by themselves when [`Config::heartbeat_interval`] is set.
    pub fn send_heartbeat(&self) -> Result<(), Error> {
        self.send_heartbeat_now()
    }

    fn send_heartbeat_now(&self) -> Result<(), Error> {
        let time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
        let load = self.inner.load.load(Ordering::Relaxed);
        tracing::trace!(conn = self.inner.id, "send h load={load} time={time}");
        self.inner
            .outbox
            .push(Header::Heartbeat { load, time }, b"")
            .map_err(|e| e.into_error(|| self.close_error()))
    }

    /// Sets the load this side reports in its heartbeats (0 idle .. 0xffff overloaded).
    pub fn set_load(&self, load: u16) {
        self.inner.load.store(load, Ordering::Relaxed);
    }

    /// Queues a message, waiting while the write queue is full.
    pub(crate) async fn push(&self, header: Header<'_>, payload: &Bytes) -> Result<(), Error> {
        if tracing::enabled!(tracing::Level::TRACE) {
            tracing::trace!(conn = self.inner.id, "send {}", Line(header, payload));
        }
        self.inner
            .outbox
            .push_when_room(header, payload)
            .await
            .map_err(|e| e.into_error(|| self.close_error()))
    }

    /// Queues a message if the outbox has room for it now; `None` if it has not.
    pub(crate) fn try_push(
        &self,
        header: Header<'_>,
        payload: &Bytes,
    ) -> Option<Result<(), Error>> {
        match self.inner.outbox.try_push(header, payload) {
            Ok(true) => {
                if tracing::enabled!(tracing::Level::TRACE) {
                    tracing::trace!(conn = self.inner.id, "send {}", Line(header, payload));
                }
                Some(Ok(()))
            }
            Ok(false) => None,
            Err(e) => Some(Err(e.into_error(|| self.close_error()))),
        }
    }

    /// Queues a small message the connection itself answers with, without waiting.
    pub(crate) fn push_now(&self, header: Header<'_>, payload: &[u8]) {
        if tracing::enabled!(tracing::Level::TRACE) {
            tracing::trace!(conn = self.inner.id, "send {}", Line(header, payload));
        }
        if let Err(PushError::Encode(e)) = self.inner.outbox.push(header, payload) {
            tracing::warn!(conn = self.inner.id, "cannot send {header:?}: {e}");
        }
    }

    /// Replaces the handlers that answer this connection's peer from now on (e.g. a
    /// [`child`](Handlers::child) set with more operations once the peer signed in).
    pub fn set_handlers(&self, handlers: Handlers) {
        *self
            .inner
            .handlers
            .write()
            .unwrap_or_else(PoisonError::into_inner) = handlers;
    }

    /// The handlers answering this connection's peer.
    pub fn handlers(&self) -> Handlers {
        self.inner
            .handlers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Attaches a value of type `T` to this connection (replacing an earlier one), for
    /// handlers to read with [`state`](Self::state): e.g. who is signed in.
    pub fn set_state<T: Any + Send + Sync>(&self, value: T) {
        lock(&self.inner.state).insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// The value of type `T` attached to this connection, if any.
    pub fn state<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let value = lock(&self.inner.state).get(&TypeId::of::<T>())?.clone();
        value.downcast().ok()
    }

    /// Removes the value of type `T` attached to this connection.
    pub fn remove_state<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let value = lock(&self.inner.state).remove(&TypeId::of::<T>())?;
        value.downcast().ok()
    }

    /// Closes the connection now: queued messages are still written, every pending
    /// request fails with [`Error::Closed`], running handlers' results are dropped.
    pub fn close(&self) {
        self.close_with(CloseReason::Local);
    }

    /// Closes gracefully: stops taking new requests from the peer (they are answered with
    /// a RetryResult `shutting down`), lets running handlers finish and their results go
    /// out, then closes and waits until everything was written.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        inner.draining.store(true, Ordering::SeqCst);
        loop {
            let idle = inner.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.running_handlers() == 0 || inner.closing.is_set() {
                break;
            }
            idle.await;
        }
        self.close();
        inner.finished.wait().await;
    }

    /// How many of this side's requests wait for their results now (or for their callers to
    /// take a result that has arrived).
    pub fn pending_requests(&self) -> usize {
        self.inner.pending.len()
    }

    /// How many of the peer's requests this side is handling now.
    pub fn running_handlers(&self) -> usize {
        self.inner.running_single.load(Ordering::SeqCst)
            + self.inner.running_streams.load(Ordering::SeqCst)
    }

    /// Whether the connection is closed (or closing).
    pub fn is_closed(&self) -> bool {
        self.inner.closing.is_set()
    }

    /// Why the connection closed, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.inner.reason.get().cloned()
    }

    /// Waits until the connection is closed and everything queued was written; returns why
    /// it closed.
    pub async fn closed(&self) -> CloseReason {
        self.inner.finished.wait().await;
        self.close_reason().unwrap_or(CloseReason::Local)
    }

    /// The error for a call on a closed connection.
    pub(crate) fn close_error(&self) -> Error {
        Error::Closed(self.close_reason().unwrap_or(CloseReason::Local))
    }

    /// Closes the connection for `reason` (the first reason wins): sends our protocol
    /// error if there is one, lets the writer drain, fails pending requests, runs hooks.
    pub(crate) fn close_with(&self, reason: CloseReason) {
        let inner = &self.inner;
        if inner.reason.set(reason.clone()).is_err() {
            return;
        }
        match &reason {
            CloseReason::ProtocolError {
                code,
                by: Side::Local,
                detail,
            } => {
                tracing::warn!(conn = inner.id, peer = %inner.peer, "sending protocol error {code}: {detail}");
                self.push_now(Header::ProtocolError { code: *code }, b"");
            }
            CloseReason::ProtocolError {
                code,
                by: Side::Peer,
                ..
            } => {
                tracing::warn!(conn = inner.id, peer = %inner.peer, "peer sent protocol error {code}");
            }
            CloseReason::Io(e) => {
                tracing::info!(conn = inner.id, peer = %inner.peer, "connection failed: {e}")
            }
            _ => {}
        }
        tracing::debug!(conn = inner.id, peer = %inner.peer, "connection closed: {reason}");
        inner.outbox.close();
        inner.closing.set();
        inner.pending.close(Error::Closed(reason.clone()));
        inner.idle.notify_waiters();
        for hook in &inner.config.on_close {
            hook(self, &reason);
        }
    }

    /// Marks one more handler of the peer's requests as running; the guard unmarks it.
    pub(crate) fn start_handler(&self, stream: bool) -> RunningGuard {
        let counter = if stream {
            &self.inner.running_streams
        } else {
            &self.inner.running_single
        };
        counter.fetch_add(1, Ordering::SeqCst);
        RunningGuard {
            sock: self.clone(),
            stream,
        }
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::Relaxed)
    }

    pub(crate) fn protocol_error(
        code: ProtocolErrorCode,
        detail: impl Into<String>,
    ) -> CloseReason {
        CloseReason::ProtocolError {
            code,
            by: Side::Local,
            detail: detail.into(),
        }
    }
}

/// Counts a running handler for limits and graceful shutdown.
pub(crate) struct RunningGuard {
    sock: Sock,
    stream: bool,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        let inner = &self.sock.inner;
        let counter = if self.stream {
            &inner.running_streams
        } else {
            &inner.running_single
        };
        counter.fetch_sub(1, Ordering::SeqCst);
        if inner.draining.load(Ordering::SeqCst) && self.sock.running_handlers() == 0 {
            inner.idle.notify_waiters();
        }
    }
}

/// A message's readable one-line form for logs, from its header and payload.
pub(crate) struct Line<'a>(pub Header<'a>, pub &'a [u8]);

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt_line(self.1.len(), f)?;
        if !self.1.is_empty() {
            write!(f, " {}", crate::wire::Preview::new(self.1, 64))?;
        }
        Ok(())
    }
}

/// Creates two connected peers in memory: what one sends, the other receives. For tests
/// and for in-process use of services.
pub fn pipe(a: Config, b: Config) -> (Sock, Sock) {
    let (x, y) = tokio::io::duplex(64 * 1024);
    (Sock::adopt(x, "pipe", a), Sock::adopt(y, "pipe", b))
}
