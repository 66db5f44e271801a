//! The read side of a connection: one task that reads big chunks, decodes every
//! complete message in them (the version first, see `wire::Conversation`), and routes
//! each: a request to admission and its handler (`admission.rs`, `respond.rs`), a result
//! to the call waiting for it (`pending.rs`), a stream chunk to its consumer
//! (`chunks.rs`), a notification to the connection's notification queue.
//!
//! Whenever it is about to wait for anything but the socket (room in a full stream
//! buffer or notification queue, the peer reading what it is owed), it first hands the
//! answers queued so far to the writer task (`Outbox::end_batch`).

use std::{
    future::poll_fn,
    mem::MaybeUninit,
    pin::{pin, Pin},
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::Instant,
};

use super::{
    admission::Kind,
    chunks::{self, ChunkSender},
    handler::{Notification, Request, StreamRequest},
    limits::{LINGERING_STREAMS, RECYCLE_MIN_SIZE, UNRESERVED_READ},
    pending::{key, IdMap, Outcome},
    recycle,
    respond::{dispatch, Notifications},
    RequestChunks, Sock,
};
use crate::{
    error::{CloseReason, Side},
    wire::{self, Conversation, DecodeError, Decoded, Message, Name, ProtocolErrorCode, RequestId},
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
    conversation: Conversation,
    /// The largest message the peer has delivered in full: room for a message this big is
    /// reserved at once (see `wire::room_for`).
    largest_message: usize,
    /// The size the current buffer was allocated with, if it came from `recycle`.
    buf_size: usize,
    /// The budget reserved for the message being read: all of it, from its header on
    /// (see `budget.rs`); nothing between messages.
    buf_held: usize,
    incoming: IdMap<Incoming>,
    notifications: Notifications,
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
        conversation: Conversation::new(sock.limits().max_payload),
        largest_message: 0,
        buf_size: 0,
        buf_held: 0,
        incoming: IdMap::default(),
        notifications: Notifications::default(),
    };
    let reason = tokio::select! {
        biased;
        reason = reader.read_all(&mut io, &writer) => reason,
        () = sock.closing().wait() => CloseReason::Local,
    };
    let closed = Error::Closed(sock.close_reason().unwrap_or_else(|| reason.clone()));
    for (_, stream) in reader.incoming.drain() {
        if let Incoming::Open(tx) = stream {
            tx.finish(Err(closed.clone()));
        }
    }
    // A large buffer goes back to the pool, whose sweeper returns the memory later.
    reader.buf.clear();
    reader.release_buffer();
    sock.budgets().update(&mut reader.buf_held, 0);
    if matches!(reason, CloseReason::PeerClosed) {
        // The peer ended its write side (a half-close, PROTOCOL.md 6): it can answer none
        // of our calls any more, but the requests it sent before still run to completion
        // and their results are written before the connection closes.
        sock.outbox().end_batch();
        sock.pending().close(closed);
        sock.admission().drain(|| sock.is_closed()).await;
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
        let outbox = sock.outbox();
        let read_timeout = sock.limits().read_timeout;
        let far_future = Instant::now() + Duration::from_secs(86400 * 365);
        let mut deadline = read_timeout.map_or(far_future, |t| Instant::now() + t);
        let mut timer = pin!(tokio::time::sleep_until(deadline));
        loop {
            let mut decoded_any = false;
            let needed = loop {
                let before = self.buf.len();
                match self.conversation.decode(&mut self.buf) {
                    Ok(Decoded::Version) => {}
                    Ok(Decoded::Message(msg)) => {
                        decoded_any = true;
                        self.largest_message = self.largest_message.max(before - self.buf.len());
                        if let Err(reason) = self.route(msg).await {
                            return reason;
                        }
                    }
                    Err(DecodeError::Incomplete { needed }) => {
                        self.make_room(needed);
                        break needed;
                    }
                    Err(DecodeError::Version(e)) => {
                        return Sock::protocol_error(ProtocolErrorCode::UNSUPPORTED, e.to_string());
                    }
                    Err(DecodeError::Invalid(e)) => {
                        let bytes = wire::Preview::new(&self.buf, 32);
                        return Sock::protocol_error(
                            ProtocolErrorCode::INVALID,
                            format!("{e} in {:?}", bytes.to_string()),
                        );
                    }
                }
            };
            // The read timeout counts from the last complete message (once per batch:
            // reading the clock per message shows in profiles).
            if let (true, Some(t)) = (decoded_any, read_timeout) {
                deadline = Instant::now() + t;
            }
            // Answers are written from this task once there is nothing more to read right
            // now (below), or sooner if a lot has piled up.
            if outbox.queued() >= FLUSH_AT {
                poll_fn(|cx| {
                    outbox.flush_inline(writer, cx);
                    Poll::Ready(())
                })
                .await;
            }
            // Budgets: between messages, read on only while this connection (and its
            // server) may hold more; in a message, reserve all of it first. Waiting reads
            // nothing, and TCP holds the peer back until bytes are released. (What we owe
            // a peer that does not read counts too: the write queue is in the budget.)
            let budgets = sock.budgets();
            if decoded_any || self.buf.is_empty() {
                // The reserved message was read whole (or none was begun): what follows
                // needs a reservation of its own.
                budgets.update(&mut self.buf_held, 0);
            }
            if self.buf.is_empty() {
                if !budgets.has_room(1) {
                    outbox.end_batch();
                    self.shrink_buffer();
                    Box::pin(budgets.wait_for_room(1)).await;
                }
            } else if needed <= self.buf_held {
                budgets.update(&mut self.buf_held, needed);
            } else if budgets.try_hold(needed - self.buf_held) {
                self.buf_held = needed;
            } else {
                outbox.end_batch();
                self.shrink_buffer();
                Box::pin(budgets.hold_when_room(needed - self.buf_held)).await;
                self.buf_held = needed;
                self.make_room(needed);
            }
            tokio::select! {
                biased;
                read = poll_fn(|cx| {
                    let read = self.poll_read_some(Pin::new(&mut *io), cx);
                    if read.is_pending() {
                        // Nothing more to read now: what the handlers answered goes out,
                        // from this task, in as few writes as possible.
                        outbox.flush_inline(writer, cx);
                    }
                    read
                }) => match read {
                    Ok(0) => {
                        if !self.buf.is_empty() {
                            tracing::debug!(conn = sock.id(), "peer closed mid-message ({} bytes unparsed)", self.buf.len());
                        }
                        return CloseReason::PeerClosed;
                    }
                    Ok(_) => outbox.begin_batch(),
                    Err(e) => return CloseReason::Io(Arc::new(e)),
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

    /// Hands one message to whoever deals with it.
    async fn route(&mut self, msg: Message) -> Result<(), CloseReason> {
        let sock = &self.sock;
        if tracing::enabled!(tracing::Level::TRACE) {
            tracing::trace!(conn = sock.id(), "recv {msg}");
        }
        match msg {
            Message::SingleRequest { id, name, payload } => self.on_request(id, name, payload),
            Message::StreamRequest { id, name, payload } => {
                return self.on_stream_request(id, name, payload)
            }
            Message::StreamRequestPart { id, payload } => {
                return self.on_stream_part(id, payload).await
            }
            Message::SingleResult { id, payload } => self.on_result(id, Outcome::Result(payload)),
            Message::StreamResult { id, payload } if payload.is_empty() => {
                self.on_result(id, Outcome::End)
            }
            Message::StreamResult { id, payload } => match sock.pending().stream_sender(id) {
                Some(tx) => {
                    if self.send_chunk(&tx, payload).await.is_err() {
                        // The caller dropped its `ResultStream`: later parts are dropped.
                        self.sock.pending().remove(id);
                    }
                }
                None => self.on_result(id, Outcome::Part(payload)),
            },
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
                if let Some(hook) = &sock.config().on_heartbeat {
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
        if !self.sock.pending().deliver(id, outcome) {
            tracing::debug!(
                conn = self.sock.id(),
                "dropping a result for request {:?}, which nobody waits for",
                wire::Preview::new(&id, 4).to_string()
            );
        }
    }

    fn on_request(&mut self, id: RequestId, op: Name, payload: Bytes) {
        let sock = &self.sock;
        let handler = sock.handlers().request(&op).cloned();
        let (running, handler) = match sock.admission().admit(sock, Kind::Single, &op, handler) {
            Ok(admitted) => admitted,
            Err(refusal) => return refusal.send(sock, id),
        };
        // A payload slice keeps the read chunk it came in alive.
        let held = payload.len().max(READ_CHUNK);
        let request = Request {
            sock: sock.clone(),
            op,
            payload,
        };
        dispatch(sock.clone(), id, running, handler(request), held);
    }

    fn on_stream_request(
        &mut self,
        id: RequestId,
        op: Name,
        payload: Bytes,
    ) -> Result<(), CloseReason> {
        let sock = &self.sock;
        let k = key(id);
        if self.incoming.contains_key(&k) {
            return Err(Sock::protocol_error(
                ProtocolErrorCode::INVALID,
                "stream request reuses the ID of an open stream",
            ));
        }
        if self.incoming.len() >= sock.limits().max_stream_requests + LINGERING_STREAMS {
            return Err(Sock::protocol_error(
                ProtocolErrorCode::INVALID,
                "too many open stream requests",
            ));
        }
        let handler = sock.handlers().stream(&op).cloned();
        let (running, handler) = match sock.admission().admit(sock, Kind::Stream, &op, handler) {
            Ok(admitted) => admitted,
            Err(refusal) => {
                refusal.send(sock, id);
                self.incoming.insert(k, Incoming::Discard);
                return Ok(());
            }
        };
        let (tx, rx) = chunks::channel(sock.limits().stream_buffer, sock.budgets().clone());
        if !payload.is_empty() {
            // The channel is empty: there is room for the first chunk.
            let _ = tx.try_send(payload);
        }
        self.incoming.insert(k, Incoming::Open(tx));
        let request = StreamRequest {
            sock: sock.clone(),
            chunks: RequestChunks::new(op.clone(), rx),
            op,
        };
        // Its chunks count as held while they wait in its channel.
        dispatch(sock.clone(), id, running, handler(request), 0);
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
                self.sock.outbox().end_batch();
                Box::pin(tx.send(chunk)).await
            }
        }
    }

    async fn on_notification(&mut self, name: Name, payload: Bytes) {
        let sock = &self.sock;
        let Some(handler) = sock.handlers().notification(&name).cloned() else {
            tracing::debug!(
                conn = sock.id(),
                "ignoring notification {:?}: no handler",
                name.as_str()
            );
            return;
        };
        let held = payload.len().max(READ_CHUNK);
        let notification = Notification {
            sock: sock.clone(),
            name,
            payload,
        };
        if let Err(full) = self.notifications.try_push(handler, notification, held) {
            self.sock.outbox().end_batch();
            full.wait().await;
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
        if room < RECYCLE_MIN_SIZE {
            self.buf.reserve(room - self.buf.len());
            return;
        }
        let mut fresh = recycle::take(room);
        fresh.extend_from_slice(&self.buf);
        let outgrown = std::mem::replace(&mut self.buf, fresh);
        recycle::retire(outgrown, std::mem::replace(&mut self.buf_size, room));
    }

    /// Before waiting for budget: keeps only the bytes of the message begun (at most a
    /// read beyond its reservation), not the room of a large buffer, which is memory the
    /// budgets do not count while nothing is reserved.
    fn shrink_buffer(&mut self) {
        if self.buf.capacity() <= UNRESERVED_READ {
            return;
        }
        let begun = BytesMut::from(&self.buf[..]);
        let outgrown = std::mem::replace(&mut self.buf, begun);
        recycle::retire(outgrown, std::mem::take(&mut self.buf_size));
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
            // Up to the end of the reserved message, or a little beyond: however large the
            // buffer, unreserved bytes do not pile up in it.
            let allowed = self.buf_held.saturating_sub(buf.len()).max(UNRESERVED_READ);
            let read = tokio_util::io::poll_read_buf(io, cx, &mut (&mut *buf).limit(allowed));
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
