//! The connection layer: [`Sock`], one connection to a peer, and the machinery under
//! it, one concern per file.
//!
//! | question | file |
//! |---|---|
//! | how is a connection started, closed, shut down? | `mod.rs` (this file) |
//! | how is a call sent and its result matched? | `call.rs`, then `pending.rs` |
//! | what runs around calls and handlers? | `around_calls.rs`, `around_handlers.rs` (public as `gotalk::middleware`) |
//! | which handler answers which name? | `registry.rs` ([`Handlers`]) |
//! | what does a handler receive and return? | `handler.rs` |
//! | how is a request answered? | `respond.rs` (handlers, panics, replies) |
//! | when is a peer's request refused? | `admission.rs` |
//! | what bounds does the peer meet? | `limits.rs`, and `budget.rs` for bytes held |
//! | who runs the connection? | `driver.rs`: one task reads, then writes |
//! | when does it write, and who wakes it? | `schedule.rs` |
//! | whose clock are its timeouts on? | `timers.rs` (a thread of their own), `read_timeout.rs` |
//! | how are messages read and routed? | `reader.rs`; the peer's requests go on through `inbound.rs` |
//! | what memory does reading hold? | `read_buf.rs`, what it costs the budgets `charge.rs`; large buffers are reused (`recycle.rs`), freed memory handed back (`trim.rs`) |
//! | what does the reader remember of the peer's requests? | `peer_requests.rs` (open streams, deadlines) |
//! | how does the extension work? | `extension.rs` (cancellation, deadlines) |
//! | who writes? | `outbox.rs` (the queue), `outbox/writer.rs` (the writer) |
//! | how do stream chunks flow, bounded? | `chunks.rs`, `streams.rs` |
//! | what does it count (feature `metrics`)? | `metrics.rs` |
//!
//! Dependencies run one way: the rest of the crate (`observe`, `middleware`, typed
//! calls, transports) builds on this layer, which imports none of it. The registry lives
//! here because what it stores names the connection (a handler receives the `Sock` its
//! request came on) while a connection holds a registry.
//!
//! # Visibility
//!
//! An item of a file here is private when only its file uses it, `pub(super)` when other
//! files of this layer use it, and `pub(crate)` only when the rest of the crate uses it,
//! which then names it through this module's re-exports (never `conn::file::Item`);
//! methods of the public types (`Sock`, `Config`, `Handlers`) that the rest of the crate
//! calls are `pub(crate)`. The state of a connection is in `Inner`, private to this
//! file: the other files reach its parts through `Sock`'s private accessors, and the
//! parts that have logic of their own (admission, the extension, the schedule, the read
//! buffer, the peer's open streams) take what they use as arguments, so that they are
//! tested alone.
//!
//! # One task per connection
//!
//! Everything that goes out is framed into one queue, the [`Outbox`](outbox::Outbox),
//! and only the connection's task takes bytes from it and writes them, so bytes leave in
//! the order they were queued:
//!
//! ```text
//!   callers, handlers,            ┌──────── outbox ────────┐
//!   refusals, heartbeats  ──push──▶ small frames │ big Bytes├──┐
//!        (TaskWake: wake the task └────────────────────────┘  │
//!         unless it writes next)                              │
//!          ┌──────────────────────────────────────────────────┘
//!          ▼
//!   the connection's task (`driver.rs`), each time it runs:
//!     1. its timer: read timeout, write timeout, heartbeat;
//!     2. read and route everything the peer sent, as far as it can without waiting;
//!        handlers that answer at once queue their results on the way, and the
//!        Schedule says when to write them before reading on (a read that brings more
//!        while answers wait, half of a large read) or to let the callers it handed
//!        results run first;
//!     3. write what is queued, in as few writes as the socket takes.
//! ```
//!
//! Queuing during steps 1 and 2 wakes no one: step 3 (or a write the schedule asks for
//! in step 2) takes it, one write for a whole read's answers and no task switch. Queuing
//! from anywhere else (a spawned handler, a caller on another task) wakes the task. While
//! reading waits for something other than the socket (room in a budget or a consumer's
//! buffer), writing goes on.

mod admission;
mod around_calls;
mod around_handlers;
mod budget;
mod call;
mod charge;
mod chunks;
mod config;
mod describe;
mod driver;
mod extension;
mod handler;
mod inbound;
mod limits;
#[cfg(feature = "metrics")]
mod metrics;
mod outbox;
mod peer_requests;
mod pending;
mod read_buf;
mod read_timeout;
mod reader;
mod recycle;
mod registry;
mod respond;
mod schedule;
mod signal;
mod streams;
mod timers;
mod trim;

use std::{
    any::{Any, TypeId},
    collections::HashMap,
    fmt,
    sync::{
        atomic::{AtomicU16, AtomicU64, Ordering},
        Arc, OnceLock, PoisonError, RwLock,
    },
};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};

pub use around_calls::{NextCall, Outgoing};
pub use around_handlers::{Incoming, Kind, Next};
pub use budget::SharedBudget;
pub use call::CallOptions;
pub use config::{Config, HeartbeatInfo};
pub(crate) use extension::PeerReadsStream;
#[cfg(feature = "websocket")]
pub(crate) use extension::BATCH_MAX;
pub use extension::RESERVED_PREFIX;
pub use handler::{BoxFuture, BoxStream, Notification, Reply, Request, StreamRequest};
pub use limits::Limits;
#[cfg(feature = "metrics")]
pub(crate) use metrics::{BYTES_READ, BYTES_WRITTEN, CONNECTIONS, CONNECTIONS_OPEN};
pub use registry::{Handlers, RegistrationError};
pub use streams::{RequestChunks, ResultStream, StreamWriter};

use crate::{
    error::{CloseReason, Error, Side},
    sync::{lock, Mutex},
    wire::{Header, Line, ProtocolErrorCode, VERSION},
};
use admission::Admission;
use budget::{Budgets, Held};
use extension::Extension;
use outbox::{Outbox, PushError};
use pending::Pending;
use signal::Signal;

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
/// let handlers = Handlers::new()
///     .handle("greet", |name: String| async move {
///         Ok::<_, gotalk::Error>(format!("Hello {name}"))
///     });
/// let (client, _server) = gotalk::pipe(Config::dialling(), Config::accepting().handlers(handlers));
/// let greeting: String = client.request("greet", "Rasmus").await?;
/// assert_eq!(greeting, "Hello Rasmus");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Sock {
    inner: Arc<Inner>,
}

/// The state of one connection. Only this file touches its fields; the other files of
/// the layer reach it through the `Sock` methods below.
struct Inner {
    /// A process-unique number, for logs.
    id: u64,
    /// Who the peer is (an address), for logs and hooks.
    peer: String,
    outbox: Outbox,
    pending: Pending,
    admission: Arc<Admission>,
    extension: Arc<Extension>,
    /// The bytes held on the peer's behalf, against the connection's and the server's
    /// budgets (shared with the outbox, which counts what it queues).
    budgets: Arc<Budgets>,
    handlers: RwLock<Handlers>,
    /// Counts the changes of `handlers`, so that a cached handler knows it is stale.
    handlers_version: AtomicU64,
    /// Its limits are the connection's limits. Shared by every connection of a server.
    config: Arc<Config>,
    /// Set once the connection is closing.
    closing: Signal,
    /// Set once the writer has flushed and shut down the stream.
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

/// A request ID as a number, for the maps keyed by the peer's IDs.
fn id_key(id: crate::wire::RequestId) -> u32 {
    u32::from_be_bytes(id)
}

impl Sock {
    /// Starts speaking Gotalk over any byte stream (a socket, a pipe, a TLS stream).
    /// `peer` names the other end in logs and hooks. Must be called within a Tokio runtime.
    pub fn adopt<S>(stream: S, peer: impl Into<String>, config: Config) -> Sock
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        Self::adopt_shared(stream, peer.into(), Arc::new(config))
    }

    /// [`adopt`](Self::adopt) with a config shared by many connections (a server's): an
    /// idle connection then holds a pointer to it, not a copy.
    pub(crate) fn adopt_shared<S>(stream: S, peer: String, config: Arc<Config>) -> Sock
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        Self::adopt_over(stream, peer, config, None)
    }

    /// [`adopt_shared`](Self::adopt_shared), over a WebSocket of ours that reads messages as
    /// one byte stream (it takes messages of `BATCH_MAX` bytes) and frames as `over_ws`
    /// says.
    pub(crate) fn adopt_over<S>(
        stream: S,
        peer: String,
        config: Arc<Config>,
        over_ws: Option<PeerReadsStream>,
    ) -> Sock
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let sock = Self::new(peer, config, over_ws);
        tokio::spawn(driver::run(sock.clone(), stream));
        sock
    }

    /// Like [`adopt`](Self::adopt), for a stream already split into its two halves.
    pub fn from_halves<R, W>(reader: R, writer: W, peer: impl Into<String>, config: Config) -> Sock
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let halves = driver::Halves {
            read: reader,
            write: writer,
        };
        Self::adopt(halves, peer, config)
    }

    fn new(peer: String, config: Arc<Config>, over_ws: Option<PeerReadsStream>) -> Sock {
        let budgets = Arc::new(Budgets::new(
            config.limits.held_bytes_limit(),
            config.shared_budget.as_ref().map(|b| b.0.clone()),
        ));
        let announces_first = config.announces_first;
        let sock = Sock {
            inner: Arc::new(Inner {
                id: NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed),
                peer,
                outbox: Outbox::new(config.limits.write_buffer, budgets.clone()),
                admission: Arc::new(Admission::new(budgets.clone())),
                budgets,
                pending: Pending::new(config.limits.max_payload as usize),
                extension: Arc::new(
                    Extension::new(config.extensions, over_ws).describing(config.describe),
                ),
                handlers: RwLock::new(config.handlers.clone()),
                handlers_version: AtomicU64::new(0),
                config,
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
        if announces_first {
            extension::announce(&sock);
        }
        sock
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

    /// Sets the load this side reports in its heartbeats (0 idle .. 0xffff overloaded).
    pub fn set_load(&self, load: u16) {
        self.inner.load.store(load, Ordering::Relaxed);
    }

    fn load(&self) -> u16 {
        self.inner.load.load(Ordering::Relaxed)
    }

    /// Replaces the handlers that answer this connection's peer from now on (e.g. a
    /// [`child`](Handlers::child) set with more operations once the peer signed in).
    pub fn set_handlers(&self, handlers: Handlers) {
        *self
            .inner
            .handlers
            .write()
            .unwrap_or_else(PoisonError::into_inner) = handlers;
        self.inner.handlers_version.fetch_add(1, Ordering::SeqCst);
    }

    /// Changes whenever the handlers are replaced.
    fn handlers_version(&self) -> u64 {
        self.inner.handlers_version.load(Ordering::SeqCst)
    }

    /// The handlers answering this connection's peer.
    pub fn handlers(&self) -> Handlers {
        self.inner
            .handlers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Looks into the handlers without cloning them (on every request).
    fn with_handlers<R>(&self, f: impl FnOnce(&Handlers) -> R) -> R {
        f(&self
            .inner
            .handlers
            .read()
            .unwrap_or_else(PoisonError::into_inner))
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
        inner.admission.drain(|| inner.closing.is_set()).await;
        self.close();
        inner.finished.wait().await;
    }

    /// How many of this side's requests wait for their results now (or for their callers to
    /// take a result that has arrived).
    pub fn pending_requests(&self) -> usize {
        self.inner.pending.len()
    }

    /// The bytes this connection holds on its peer's behalf now (see
    /// [`Limits::max_held_bytes`]).
    pub fn held_bytes(&self) -> usize {
        self.inner.budgets.held()
    }

    /// How many of the peer's requests this side is handling now.
    pub fn running_handlers(&self) -> usize {
        self.inner.admission.running()
    }

    /// Whether the connection is closed (or closing).
    pub fn is_closed(&self) -> bool {
        self.inner.closing.is_set()
    }

    /// Whether calls on this connection fail at once: it is closed, or the peer ended its
    /// side (a half-close: it still reads the answers to its own requests, but can answer
    /// no more of ours). A client that reconnects takes such a connection as gone.
    pub(crate) fn takes_no_calls(&self) -> bool {
        self.inner.pending.is_closed()
    }

    /// Waits until [`takes_no_calls`](Self::takes_no_calls).
    pub(crate) async fn calls_ended(&self) {
        self.inner.pending.closed().await;
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
    fn close_error(&self) -> Error {
        Error::Closed(self.close_reason().unwrap_or(CloseReason::Local))
    }

    /// Closes the connection for `reason` (the first reason wins): sends our protocol
    /// error if there is one, lets the writer drain, fails pending requests, runs hooks.
    fn close_with(&self, reason: CloseReason) {
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
                self.send_now(Header::ProtocolError { code: *code }, b"");
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
        inner.admission.wake_drain();
        for hook in &inner.config.on_close {
            hook(self, &reason);
        }
    }

    /// The reason to close with a protocol error this side sends.
    fn protocol_error(code: ProtocolErrorCode, detail: impl Into<String>) -> CloseReason {
        CloseReason::ProtocolError {
            code,
            by: Side::Local,
            detail: detail.into(),
        }
    }

    // ---- the write side, one meaning per verb: `send` waits for room, `try_send` only
    // takes room that is there, `send_now` queues whatever is queued already.

    /// Queues a message, waiting while the write queue is full (backpressure). While it
    /// waits, its payload counts as held.
    async fn send(&self, header: Header<'_>, payload: &Bytes) -> Result<(), Error> {
        if let Some(sent) = self.try_send(header, payload) {
            return sent;
        }
        // Boxed: waiting for room is rare, and inline it would make every call's future
        // (which users' futures contain, and move) larger.
        Box::pin(async move {
            let _waiting = Held::new(&self.inner.budgets, payload.len());
            self.send_counted(header, payload).await
        })
        .await
    }

    /// [`send`](Self::send) for a payload its caller already counts as held.
    async fn send_counted(&self, header: Header<'_>, payload: &Bytes) -> Result<(), Error> {
        self.trace_send(header, payload);
        self.inner
            .outbox
            .push_when_room(header, payload)
            .await
            .map_err(|e| e.into_error(|| self.close_error()))
    }

    /// Queues a message if the write queue has room for it now; `None` if it has not.
    #[inline]
    fn try_send(&self, header: Header<'_>, payload: &Bytes) -> Option<Result<(), Error>> {
        match self.inner.outbox.try_push(header, payload) {
            Ok(true) => {
                self.trace_send(header, payload);
                Some(Ok(()))
            }
            Ok(false) => None,
            Err(e) => Some(Err(e.into_error(|| self.close_error()))),
        }
    }

    /// Queues a small message the connection itself answers with, however full the queue
    /// is (a refusal, a protocol error, the end of an abandoned stream).
    fn send_now(&self, header: Header<'_>, payload: &[u8]) {
        self.trace_send(header, payload);
        if let Err(PushError::Encode(e)) = self.inner.outbox.push_now(header, payload) {
            tracing::warn!(conn = self.inner.id, "cannot send {header:?}: {e}");
        }
    }

    /// Logs what is sent, at TRACE (inline: below that level, on every message, it costs
    /// a comparison).
    #[inline]
    fn trace_send(&self, header: Header<'_>, payload: &[u8]) {
        if tracing::level_enabled!(tracing::Level::TRACE) {
            self.trace_line(header, payload);
        }
    }

    #[cold]
    fn trace_line(&self, header: Header<'_>, payload: &[u8]) {
        tracing::trace!(conn = self.inner.id, "send {}", Line(header, payload));
    }

    // ---- the parts of the connection the other files of this layer work with.

    fn outbox(&self) -> &Outbox {
        &self.inner.outbox
    }

    fn pending(&self) -> &Pending {
        &self.inner.pending
    }

    fn extension(&self) -> &Arc<Extension> {
        &self.inner.extension
    }

    fn admission(&self) -> &Arc<Admission> {
        &self.inner.admission
    }

    fn budgets(&self) -> &Arc<Budgets> {
        &self.inner.budgets
    }

    fn config(&self) -> &Config {
        &self.inner.config
    }

    fn finished(&self) -> &Signal {
        &self.inner.finished
    }

    /// The waker the connection's timer is polled with (see `Wake for Inner`).
    fn timer_waker(&self) -> std::task::Waker {
        std::task::Waker::from(self.inner.clone())
    }
}

/// The last handle is gone, and with it the connection's memory: what the allocator keeps
/// of it is handed back soon (`trim.rs`).
impl Drop for Inner {
    fn drop(&mut self) {
        trim::connection_closed();
    }
}

/// The waker of the connection's timer: it notes that the timer fired and wakes the
/// connection's task, which so polls its timer only when it fired (or was reset), not
/// on every turn.
impl std::task::Wake for Inner {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.outbox.task().timer_fired();
    }
}

/// Creates two connected peers in memory: what one sends, the other receives. For tests
/// and for in-process use of services.
pub fn pipe(a: Config, b: Config) -> (Sock, Sock) {
    let (x, y) = tokio::io::duplex(64 * 1024);
    (Sock::adopt(x, "pipe", a), Sock::adopt(y, "pipe", b))
}
