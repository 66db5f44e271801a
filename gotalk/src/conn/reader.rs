//! The read side of a connection: one task that reads big chunks, parses every complete
//! message in them, and dispatches each.
//!
//! Requests run concurrently: each handler is first polled once right here, and only if
//! it has to wait is it moved to a task of its own. Handlers that answer at once (most
//! do) thus cost no task, no wake-up and no channel.

use std::{
    future::{poll_fn, Future},
    mem::MaybeUninit,
    panic::AssertUnwindSafe,
    pin::{pin, Pin},
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use futures_util::{FutureExt, StreamExt};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::mpsc,
    time::Instant,
};

use super::{
    chunks::{self, ChunkSender},
    pending::{key, IdMap, Outcome},
    recycle, RequestChunks, RunningGuard, Sock,
};
use crate::{
    error::{CloseReason, Side},
    handlers::{BoxFuture, BoxStream, Notification, NotificationFn, Reply, Request, StreamRequest},
    wire::{self, Header, Message, Name, ParseError, ProtocolErrorCode, RequestId},
    Error,
};

/// How much to read at least at a time.
const READ_CHUNK: usize = 8 * 1024;
/// Answers queued past this many bytes are written before reading on.
const FLUSH_AT: usize = 64 * 1024;
/// A read buffer this small is kept while the connection is quiet (so a connection that
/// trades small messages one at a time does not allocate one per message); a larger one
/// is freed as soon as a read finds nothing to read.
const QUIET_CAPACITY: usize = 512;
/// Stream request IDs the peer may leave open (rejected, or whose handler already
/// finished) beyond the limit of running stream handlers, before it is a protocol error.
const MAX_LINGERING_STREAMS: usize = 1024;
/// Notifications waiting for their handler before the reader waits too.
const NOTIFICATION_QUEUE: usize = 256;

/// The state of a stream request the peer opened.
enum Incoming {
    /// Its handler reads the chunks from here.
    Open(ChunkSender),
    /// Rejected (or the handler stopped reading): its remaining parts are dropped.
    Discard,
}

struct Reader {
    sock: Sock,
    buf: BytesMut,
    /// The largest message the peer has delivered in full: room for a message this big is
    /// reserved at once (see `wire::reserve_for`).
    largest_message: usize,
    /// The size the current buffer was allocated with, if it came from `recycle`.
    buf_size: usize,
    incoming: IdMap<Incoming>,
    notifications: Option<mpsc::Sender<(NotificationFn, Notification)>>,
}

/// Runs the read side until the connection closes, then closes it with the reason.
pub(super) async fn run<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    sock: Sock,
    mut io: R,
    writer: Arc<Mutex<W>>,
) {
    let mut reader = Reader {
        sock: sock.clone(),
        buf: BytesMut::new(),
        largest_message: 0,
        buf_size: 0,
        incoming: IdMap::default(),
        notifications: None,
    };
    let reason = tokio::select! {
        biased;
        reason = reader.read_all(&mut io, &writer) => reason,
        () = sock.inner.closing.wait() => CloseReason::Local,
    };
    let closed = Error::Closed(sock.close_reason().unwrap_or_else(|| reason.clone()));
    for (_, stream) in reader.incoming.drain() {
        if let Incoming::Open(tx) = stream {
            tx.finish(Err(closed.clone()));
        }
    }
    sock.close_with(reason);
}

impl Reader {
    async fn read_all<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
        &mut self,
        io: &mut R,
        writer: &Mutex<W>,
    ) -> CloseReason {
        let sock = self.sock.clone();
        let inner = &sock.inner;
        let read_timeout = inner.config.limits.read_timeout;
        let max_payload = inner.config.limits.max_payload;
        let far_future = Instant::now() + Duration::from_secs(86400 * 365);
        let mut deadline = read_timeout.map_or(far_future, |t| Instant::now() + t);
        let mut timer = pin!(tokio::time::sleep_until(deadline));
        let mut version_seen = false;
        loop {
            if !version_seen && self.buf.len() >= 2 {
                if let Err(e) = wire::parse_version(&self.buf) {
                    return Sock::protocol_error(ProtocolErrorCode::UNSUPPORTED, e.to_string());
                }
                let _ = self.buf.split_to(2);
                version_seen = true;
            }
            let mut parsed_any = false;
            if version_seen {
                loop {
                    let before = self.buf.len();
                    match wire::parse(&mut self.buf, max_payload) {
                        Ok(msg) => {
                            parsed_any = true;
                            self.largest_message =
                                self.largest_message.max(before - self.buf.len());
                            if let Err(reason) = self.handle(msg).await {
                                return reason;
                            }
                        }
                        Err(ParseError::Incomplete { needed }) => {
                            self.make_room(needed);
                            break;
                        }
                        Err(ParseError::Invalid(e)) => {
                            let bytes = wire::Preview::new(&self.buf, 32);
                            return Sock::protocol_error(
                                ProtocolErrorCode::INVALID,
                                format!("{e} in {:?}", bytes.to_string()),
                            );
                        }
                    }
                }
            }
            // The read timeout counts from the last complete message (once per batch:
            // reading the clock per message shows in profiles).
            if let (true, Some(t)) = (parsed_any, read_timeout) {
                deadline = Instant::now() + t;
            }
            // Answers are written from this task once there is nothing more to read right
            // now (below), or sooner if a lot has piled up.
            if inner.outbox.queued() >= FLUSH_AT {
                poll_fn(|cx| {
                    inner.outbox.flush_inline(writer, cx);
                    Poll::Ready(())
                })
                .await;
            }
            // Backpressure of last resort: while the peer does not read what we already
            // owe it, read nothing more from it.
            let hard = inner.outbox.hard_limit();
            if !inner.outbox.is_below(hard) {
                inner.outbox.end_batch();
                Box::pin(inner.outbox.wait_below(hard)).await;
            }
            tokio::select! {
                biased;
                read = poll_fn(|cx| {
                    let read = self.poll_read_some(Pin::new(&mut *io), cx);
                    if read.is_pending() {
                        // Nothing more to read now: what the handlers answered goes out,
                        // from this task, in as few writes as possible.
                        inner.outbox.flush_inline(writer, cx);
                    }
                    read
                }) => match read {
                    Ok(0) => {
                        if !self.buf.is_empty() {
                            tracing::debug!(conn = inner.id, "peer closed mid-message ({} bytes unparsed)", self.buf.len());
                        }
                        return CloseReason::PeerClosed;
                    }
                    Ok(_) => inner.outbox.begin_batch(),
                    Err(e) => return CloseReason::Io(std::sync::Arc::new(e)),
                },
                () = &mut timer => {
                    if Instant::now() >= deadline {
                        let secs = read_timeout.unwrap_or_default().as_secs_f32();
                        return Sock::protocol_error(
                            ProtocolErrorCode::TIMEOUT,
                            format!("no message for {secs} s"),
                        );
                    }
                    timer.as_mut().reset(deadline);
                }
            }
        }
    }

    async fn handle(&mut self, msg: Message) -> Result<(), CloseReason> {
        let sock = &self.sock;
        if tracing::enabled!(tracing::Level::TRACE) {
            tracing::trace!(conn = sock.inner.id, "recv {msg}");
        }
        match msg {
            Message::SingleRequest { id, name, payload } => {
                self.on_request(id, name, payload);
            }
            Message::StreamRequest { id, name, payload } => {
                return self.on_stream_request(id, name, payload);
            }
            Message::StreamRequestPart { id, payload } => {
                return self.on_stream_part(id, payload).await
            }
            Message::SingleResult { id, payload } => self.on_result(id, Outcome::Result(payload)),
            Message::StreamResult { id, payload } if payload.is_empty() => {
                self.on_result(id, Outcome::End)
            }
            Message::StreamResult { id, payload } => {
                match self.sock.inner.pending.stream_sender(id) {
                    Some(tx) => {
                        if self.send_chunk(&tx, payload).await.is_err() {
                            // The caller dropped its `ResultStream`: later parts are dropped.
                            self.sock.inner.pending.remove(id);
                        }
                    }
                    None => self.on_result(id, Outcome::Part(payload)),
                }
            }
            Message::ErrorResult { id, payload } => {
                let text = String::from_utf8_lossy(&payload).into_owned();
                self.on_result(id, Outcome::Failed(Error::Remote(text)));
            }
            Message::RetryResult {
                id,
                wait_ms,
                payload,
            } => {
                let reason = String::from_utf8_lossy(&payload).into_owned();
                let wait = Duration::from_millis(u64::from(wait_ms));
                self.on_result(id, Outcome::Failed(Error::Retry { wait, reason }));
            }
            Message::Notification { name, payload } => self.on_notification(name, payload).await,
            Message::Heartbeat { load, time } => {
                if let Some(hook) = &sock.inner.config.on_heartbeat {
                    hook(sock, super::HeartbeatInfo { load, time });
                }
            }
            Message::ProtocolError { code } => {
                return Err(CloseReason::ProtocolError {
                    code,
                    by: Side::Peer,
                    detail: String::new(),
                })
            }
        }
        Ok(())
    }

    fn on_result(&self, id: RequestId, outcome: Outcome) {
        if !self.sock.inner.pending.deliver(id, outcome) {
            tracing::debug!(
                conn = self.sock.inner.id,
                "dropping a result for request {:?}, which nobody waits for",
                wire::Preview::new(&id, 4).to_string()
            );
        }
    }

    /// Answers at once what the connection decides itself: streams not allowed, an
    /// unknown operation, shutting down, a limit reached. `None` lets the handler run.
    fn refuse(&self, id: RequestId, op: &Name, known: bool, stream: bool) -> Option<()> {
        let sock = &self.sock;
        let limits = &sock.inner.config.limits;
        let running = if stream {
            &sock.inner.running_streams
        } else {
            &sock.inner.running_single
        };
        let max = if stream {
            limits.max_stream_requests
        } else {
            limits.max_single_requests
        };
        let refusal = if stream && !limits.streams_allowed {
            Refusal::Error("stream requests not supported".into())
        } else if !known {
            Refusal::Error(format!("unknown operation {:?}", op.as_str()))
        } else if sock.is_draining() {
            Refusal::Retry("shutting down")
        } else if running.load(std::sync::atomic::Ordering::SeqCst) >= max {
            Refusal::Retry("request rate limit")
        } else {
            return None;
        };
        match refusal {
            Refusal::Error(text) => sock.push_now(Header::ErrorResult { id }, text.as_bytes()),
            Refusal::Retry(reason) => {
                let wait_ms = limits.random_retry_wait_ms();
                sock.push_now(Header::RetryResult { id, wait_ms }, reason.as_bytes());
            }
        }
        Some(())
    }

    fn on_request(&mut self, id: RequestId, op: Name, payload: Bytes) {
        let handler = self.sock.handlers().request(&op).cloned();
        let (None, Some(handler)) = (self.refuse(id, &op, handler.is_some(), false), handler)
        else {
            return;
        };
        let sock = self.sock.clone();
        let running = sock.start_handler(false);
        let request = Request {
            sock: sock.clone(),
            op,
            payload,
        };
        dispatch(sock, id, running, handler(request));
    }

    fn on_stream_request(
        &mut self,
        id: RequestId,
        op: Name,
        payload: Bytes,
    ) -> Result<(), CloseReason> {
        let k = key(id);
        if self.incoming.contains_key(&k) {
            return Err(Sock::protocol_error(
                ProtocolErrorCode::INVALID,
                "stream request reuses the ID of an open stream",
            ));
        }
        if self.incoming.len()
            >= self.sock.inner.config.limits.max_stream_requests + MAX_LINGERING_STREAMS
        {
            return Err(Sock::protocol_error(
                ProtocolErrorCode::INVALID,
                "too many open stream requests",
            ));
        }
        let handler = self.sock.handlers().stream(&op).cloned();
        let (None, Some(handler)) = (self.refuse(id, &op, handler.is_some(), true), handler) else {
            self.incoming.insert(k, Incoming::Discard);
            return Ok(());
        };
        let (tx, rx) = chunks::channel(self.sock.inner.config.limits.stream_buffer);
        if !payload.is_empty() {
            // The channel is empty: there is room for the first chunk.
            let _ = tx.try_send(payload);
        }
        self.incoming.insert(k, Incoming::Open(tx));
        let sock = self.sock.clone();
        let running = sock.start_handler(true);
        let request = StreamRequest {
            sock: sock.clone(),
            chunks: RequestChunks::new(op.clone(), rx),
            op,
        };
        dispatch(sock, id, running, handler(request));
        Ok(())
    }

    async fn on_stream_part(&mut self, id: RequestId, payload: Bytes) -> Result<(), CloseReason> {
        let k = key(id);
        let Some(stream) = self.incoming.get_mut(&k) else {
            return Err(Sock::protocol_error(
                ProtocolErrorCode::INVALID,
                format!(
                    "stream part for unknown request {:?}",
                    wire::Preview::new(&id, 4).to_string()
                ),
            ));
        };
        if payload.is_empty() {
            // The end of the request stream; dropping the sender ends the handler's chunks.
            self.incoming.remove(&k);
            return Ok(());
        }
        let Incoming::Open(tx) = stream else {
            return Ok(());
        };
        let tx = tx.clone();
        if self.send_chunk(&tx, payload).await.is_err() {
            // The handler stopped reading: the rest of its stream is dropped.
            self.incoming.insert(k, Incoming::Discard);
        }
        Ok(())
    }

    /// Hands a stream chunk to its consumer, waiting (and so reading nothing more) while
    /// the consumer has its `stream_buffer` full.
    async fn send_chunk(&self, tx: &ChunkSender, chunk: Bytes) -> Result<(), chunks::Gone> {
        match tx.try_send(chunk) {
            Ok(()) => Ok(()),
            Err(Err(gone)) => Err(gone),
            Err(Ok(chunk)) => {
                // Answers queued so far must not wait for this: the writer task takes them.
                self.sock.inner.outbox.end_batch();
                Box::pin(tx.send(chunk)).await
            }
        }
    }

    async fn on_notification(&mut self, name: Name, payload: Bytes) {
        let Some(handler) = self.sock.handlers().notification(&name).cloned() else {
            tracing::debug!(
                conn = self.sock.inner.id,
                "ignoring notification {:?}: no handler",
                name.as_str()
            );
            return;
        };
        // Notifications of one connection are handled in order, on a task of their own so
        // that a handler may call the peer (whose answer this reader must read).
        let queue = self.notifications.get_or_insert_with(|| {
            let (tx, mut rx) = mpsc::channel::<(NotificationFn, Notification)>(NOTIFICATION_QUEUE);
            tokio::spawn(async move {
                while let Some((handler, notification)) = rx.recv().await {
                    let name = notification.name.clone();
                    if let Err(panic) = AssertUnwindSafe(handler(notification)).catch_unwind().await
                    {
                        tracing::error!(
                            "notification handler {:?} panicked: {}",
                            name.as_str(),
                            panic_text(&panic)
                        );
                    }
                }
            });
            tx
        });
        let notification = Notification {
            sock: self.sock.clone(),
            name,
            payload,
        };
        // Boxed: waiting for room is rare, and inline it would grow every reader by the
        // size of the send future.
        if let Err(mpsc::error::TrySendError::Full(item)) = queue.try_send((handler, notification))
        {
            // Answers queued so far must not wait for this: hand them to the writer task.
            self.sock.inner.outbox.end_batch();
            let _ = Box::pin(queue.send(item)).await;
        }
    }

    /// Makes room for a message of `needed` bytes whose start is in the buffer (see
    /// `wire::reserve_for`). A large one goes into a recycled buffer (see `recycle`), and
    /// the outgrown buffer is retired there.
    fn make_room(&mut self, needed: usize) {
        let room = wire::room_for(self.buf.len(), needed, self.largest_message);
        if room <= self.buf.capacity() {
            return;
        }
        if room < recycle::MIN_SIZE {
            self.buf.reserve(room - self.buf.len());
            return;
        }
        let mut fresh = recycle::take(room);
        fresh.extend_from_slice(&self.buf);
        let outgrown = std::mem::replace(&mut self.buf, fresh);
        recycle::retire(outgrown, std::mem::replace(&mut self.buf_size, room));
    }

    /// Frees the (empty) read buffer, or hands it back to `recycle` if it came from there.
    fn release_buffer(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        recycle::retire(buf, std::mem::take(&mut self.buf_size));
    }

    /// Reads what the peer has sent into `buf`, without holding memory for a quiet
    /// connection: an empty buffer with room for a whole chunk reads directly, and a small or
    /// absent one reads through a chunk on the stack and keeps only what arrived; either is
    /// freed (unless it is at most `QUIET_CAPACITY`) when there is nothing to read. So an idle
    /// connection holds a few bytes of read buffer, a busy one reads straight into its own.
    fn poll_read_some<R: AsyncRead + Unpin>(
        &mut self,
        io: Pin<&mut R>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<usize>> {
        let buf = &mut self.buf;
        if !buf.is_empty() || buf.capacity() >= READ_CHUNK {
            if buf.capacity() - buf.len() < READ_CHUNK / 2 {
                buf.reserve(READ_CHUNK);
            }
            let read = tokio_util::io::poll_read_buf(io, cx, buf);
            if read.is_pending() && buf.is_empty() {
                self.release_buffer();
            }
            return read;
        }
        let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
        let mut chunk = ReadBuf::uninit(&mut chunk);
        let read = match io.poll_read(cx, &mut chunk) {
            Poll::Ready(Ok(())) => chunk.filled(),
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {
                if buf.capacity() > QUIET_CAPACITY {
                    self.release_buffer();
                }
                return Poll::Pending;
            }
        };
        buf.reserve(read.len().max(QUIET_CAPACITY));
        buf.extend_from_slice(read);
        Poll::Ready(Ok(read.len()))
    }
}

enum Refusal {
    Error(String),
    Retry(&'static str),
}

/// Runs a request's handler and sends its reply. The handler is first polled right here,
/// on the reader's own turn, and a single reply that is ready is queued at once: most
/// handlers answer without waiting, and then cost no task, no wake-up and no channel.
/// Only a handler that must wait (or a reply that must) is moved to a task of its own.
///
/// That first poll uses a no-op waker: a handler that is not ready is spawned, and the
/// new task polls it again at once with its own waker, which is the one it must wake.
fn dispatch(sock: Sock, id: RequestId, running: RunningGuard, mut handler: BoxFuture<Reply>) {
    let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
    let reply = match std::panic::catch_unwind(AssertUnwindSafe(|| handler.as_mut().poll(&mut cx)))
    {
        Ok(Poll::Ready(reply)) => reply,
        Err(panic) => panicked(&panic),
        Ok(Poll::Pending) => {
            tokio::spawn(async move {
                let reply = catch_panic(handler).await;
                send_reply(&sock, id, reply).await;
                drop(running);
            });
            return;
        }
    };
    match Answer::new(id, reply) {
        Answer::Single(header, payload) => match sock.try_push(header, &payload) {
            Some(Ok(())) => {}
            Some(Err(e)) => tracing::debug!(conn = sock.inner.id, "result not sent: {e}"),
            None => {
                tokio::spawn(async move {
                    if let Err(e) = sock.push(header, &payload).await {
                        tracing::debug!(conn = sock.inner.id, "result not sent: {e}");
                    }
                    drop(running);
                });
            }
        },
        Answer::Stream(parts) => {
            let mut task = Box::pin(async move {
                send_stream(&sock, id, parts).await;
                drop(running);
            });
            if task.as_mut().poll(&mut cx).is_pending() {
                tokio::spawn(task);
            }
        }
    }
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
            if let Err(e) = sock.push(header, &payload).await {
                tracing::debug!(conn = sock.inner.id, "result not sent: {e}");
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
            Err(panic) => Some(Err(Error::message(format!(
                "handler panicked: {}",
                panic_text(&panic)
            )))),
        };
        let sent = match part {
            Some(Ok(chunk)) if chunk.is_empty() => continue,
            Some(Ok(chunk)) => sock.push(Header::StreamResult { id }, &chunk).await,
            Some(Err(e)) => {
                let text = Bytes::from(e.to_string());
                let _ = sock.push(Header::ErrorResult { id }, &text).await;
                return;
            }
            None => break,
        };
        if sent.is_err() {
            return;
        }
    }
    if let Err(e) = sock.push(Header::StreamResult { id }, &Bytes::new()).await {
        tracing::debug!(conn = sock.inner.id, "stream end not sent: {e}");
    }
}
