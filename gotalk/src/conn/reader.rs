//! The read side of a connection, polled by the connection's task (`driver.rs`): it
//! reads big chunks, decodes every complete message in them (the version first, see
//! `wire::Conversation`), and routes each: a request to admission and its handler
//! (`admission.rs`, `respond.rs`), a result to the call waiting for it (`pending.rs`), a
//! stream chunk to its consumer (`chunks.rs`), a notification to the connection's
//! notification queue.
//!
//! Reading stops while it must wait for anything but the socket: room in the byte
//! budgets, in a full stream buffer or in the notification queue. Such a wait is a
//! [`Wait`] the task polls instead of reading; writing goes on meanwhile.

use std::{
    future::Future,
    mem::MaybeUninit,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::{BufMut, Bytes, BytesMut};
use rustc_hash::FxHashMap;
use tokio::{
    io::{AsyncRead, ReadBuf},
    time::Instant,
};

use super::{
    admission::Kind,
    chunks::{self, ChunkSender},
    extension::{Extension, Received},
    handler::{HandlerBox, Notification, Request, RequestFn, StreamRequest},
    id_key, is_reserved,
    limits::{LINGERING_STREAMS, RECYCLE_MIN_SIZE, UNRESERVED_READ},
    pending::Outcome,
    read_timeout::ReadTimeout,
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
/// A read that brings at least this much is handled in two halves, so that a peer waiting
/// on a batch that came in one read starts on part of it meanwhile: once the messages in
/// the first half are handled, the answers to them go out, or (on the side that called)
/// the callers handed their results run, and the requests they make next go out, before
/// the rest is handled (see `Reader::halfway`). Smaller reads hold too few messages for
/// the second write to pay.
const SPLIT_READ: usize = 1024;
/// A read buffer this small is kept between messages while the connection trades them
/// (so one that trades small messages one at a time does not allocate one per message);
/// a larger one is freed as soon as a read finds nothing to read, and this one once the
/// connection has been quiet for a while (see [`Reader::quiet`]).
const QUIET_CAPACITY: usize = 512;

/// The state of a stream request the peer opened.
enum Incoming {
    /// Its handler reads the chunks from here.
    Open(ChunkSender),
    /// Rejected (or the handler stopped reading): its remaining parts are dropped.
    Discard,
}

/// Something reading waits for (boxed: waiting is rare, and inline it would grow every
/// connection), and what to do once it is over.
type Wait = Pin<Box<dyn Future<Output = AfterWait> + Send>>;

enum AfterWait {
    Nothing,
    /// The budget for the message being read, now held.
    Held(usize),
    /// The handler of this stream request stopped reading: drop the rest of its stream.
    Discard(u32),
    /// The caller reading this request's results dropped them: forget the request.
    Forget(RequestId),
}

/// The handler a request named `op` found, while the handlers were at `version`.
struct LastRequest {
    op: Name,
    version: u64,
    handler: RequestFn,
}

/// What a poll of the read side ended with.
pub(super) enum ReadPoll {
    /// Nothing more to read now: the stream or a wait wakes the task (or it woke itself,
    /// to let the callers it handed results run first: see `Reader::halfway`).
    Pending,
    /// Answers are queued and a read brought more (or half of a large read is handled):
    /// write them before handling it (the rest of it), then poll again. At most twice
    /// per read, so a peer that reads nothing cannot spin it.
    Write,
    /// Reading is over, for this reason.
    Done(CloseReason),
}

pub(super) struct Reader {
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
    /// How long the peer's next requests with these IDs have to run (the extension's
    /// deadlines, taken by the request that follows its deadline).
    deadlines: FxHashMap<u32, Duration>,
    /// The peer's open stream requests by ID (at most `max_stream_requests` and
    /// `LINGERING_STREAMS`, so a peer choosing colliding IDs cannot make it slow).
    incoming: FxHashMap<u32, Incoming>,
    notifications: Notifications,
    wait: Option<Wait>,
    /// The handler of the last request (boxed: a connection that makes none holds a
    /// pointer).
    last_request: Option<Box<LastRequest>>,
    /// The memory of the last request handler's future, if it answered at once.
    handler_memory: Option<HandlerBox>,
    /// How much a read offers to take (see `next_read_size`).
    read_size: usize,
    timeout: ReadTimeout,
    /// A message was read since the last [`quiet`](Self::quiet).
    traded: bool,
    /// Bytes of the last read's messages still to handle before its first half is done
    /// (see `halfway`); 0 when the read was small or its first half is done.
    to_half: usize,
    /// Results handed to this side's callers since the last read.
    results_in_read: u32,
    /// The task let the callers handed results halfway through a read run first: what
    /// they queued goes out before the rest of the read is handled.
    yielded: bool,
}

impl Reader {
    pub(super) fn new(sock: Sock) -> Self {
        let limits = sock.limits();
        Self {
            conversation: Conversation::new(limits.max_payload),
            timeout: ReadTimeout::new(limits.read_timeout, Instant::now()),
            sock,
            buf: BytesMut::new(),
            largest_message: 0,
            buf_size: 0,
            buf_held: 0,
            incoming: FxHashMap::default(),
            deadlines: FxHashMap::default(),
            notifications: Notifications::default(),
            wait: None,
            last_request: None,
            handler_memory: None,
            read_size: READ_CHUNK,
            traded: false,
            to_half: 0,
            results_in_read: 0,
            yielded: false,
        }
    }

    /// When the connection's timer should look at the read timeout next.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.timeout.due()
    }

    /// The timer fired at `now`: whether the read timeout passed.
    pub(super) fn timed_out(&mut self, now: Instant) -> bool {
        self.timeout.timed_out(now)
    }

    /// Reads and routes what the peer sent, as far as it can without waiting.
    pub(super) fn poll_read<S: AsyncRead + ?Sized>(
        &mut self,
        mut io: Pin<&mut S>,
        cx: &mut Context<'_>,
    ) -> ReadPoll {
        if std::mem::take(&mut self.yielded) && self.sock.outbox().queued() > 0 {
            return ReadPoll::Write;
        }
        loop {
            if let Some(wait) = &mut self.wait {
                let Poll::Ready(after) = wait.as_mut().poll(cx) else {
                    return ReadPoll::Pending;
                };
                self.wait = None;
                self.after_wait(after);
            }
            let mut decoded_any = false;
            let needed = loop {
                let before = self.buf.len();
                // The name of the last request is not split off the buffer again (asked
                // only for messages with a name).
                let (sock, last) = (&self.sock, self.last_request.as_deref());
                let known = |op: &str| match last {
                    Some(last)
                        if last.op.as_str() == op && last.version == sock.handlers_version() =>
                    {
                        Some(last.op.clone())
                    }
                    _ => None,
                };
                match self.conversation.decode_with(&mut self.buf, known) {
                    Ok(Decoded::Version) => {}
                    Ok(Decoded::Message(msg)) => {
                        decoded_any = true;
                        let size = before - self.buf.len();
                        self.largest_message = self.largest_message.max(size);
                        match self.route(msg) {
                            Ok(None) if self.to_half > 0 => {
                                self.to_half = self.to_half.saturating_sub(size);
                                if self.to_half == 0 {
                                    if let Some(poll) = self.halfway(cx) {
                                        return poll;
                                    }
                                }
                            }
                            Ok(None) => {}
                            Ok(Some(wait)) => {
                                self.wait = Some(wait);
                                break None;
                            }
                            Err(reason) => return ReadPoll::Done(reason),
                        }
                    }
                    Err(DecodeError::Incomplete { needed }) => {
                        self.make_room(needed);
                        break Some(needed);
                    }
                    Err(DecodeError::Version(e)) => {
                        return ReadPoll::Done(Sock::protocol_error(
                            ProtocolErrorCode::UNSUPPORTED,
                            e.to_string(),
                        ));
                    }
                    Err(DecodeError::Invalid(e)) => {
                        let bytes = wire::Preview::new(&self.buf, 32);
                        return ReadPoll::Done(Sock::protocol_error(
                            ProtocolErrorCode::INVALID,
                            format!("{e} in {:?}", bytes.to_string()),
                        ));
                    }
                }
            };
            if decoded_any {
                // The read timeout counts from the last complete message.
                self.timeout.on_messages();
            }
            let Some(needed) = needed else {
                continue;
            };
            if let Some(wait) = self.reserve(decoded_any, needed) {
                self.wait = Some(wait);
                continue;
            }
            match self.poll_read_some(io.as_mut(), cx) {
                Poll::Ready(Ok(0)) => {
                    if !self.buf.is_empty() {
                        tracing::debug!(
                            conn = self.sock.id(),
                            "peer closed mid-message ({} bytes unparsed)",
                            self.buf.len()
                        );
                    }
                    return ReadPoll::Done(CloseReason::PeerClosed);
                }
                // More came: what was queued (the answers to the last read's messages)
                // goes out before it is handled, as an echo loop's would. A peer that sent
                // more than one read takes gets the first answers while this side handles
                // the rest, so both sides work at once instead of taking turns (1 KiB × 64
                // on one connection: 1.5 × as fast as writing once nothing more came), and
                // a large read is handled in two halves for the same reason (`halfway`).
                // When the read finds nothing, the task writes.
                Poll::Ready(Ok(n)) => {
                    self.to_half = if n >= SPLIT_READ { n / 2 } else { 0 };
                    self.results_in_read = 0;
                    if self.sock.outbox().queued() > 0 {
                        return ReadPoll::Write;
                    }
                }
                Poll::Ready(Err(e)) => return ReadPoll::Done(CloseReason::Io(Arc::new(e))),
                Poll::Pending => return ReadPoll::Pending,
            }
        }
    }

    /// The messages in the first half of a large read are handled (see `SPLIT_READ`):
    /// what to do before the rest, if anything.
    fn halfway(&mut self, cx: &mut Context<'_>) -> Option<ReadPoll> {
        let poll = if self.sock.outbox().queued() > 0 {
            // The answers to the first half go out.
            ReadPoll::Write
        } else if self.results_in_read >= 2 {
            // Callers (on tasks of their own) were handed results: the task wakes itself
            // and returns, so that they run first, and the requests they queue go out
            // before the rest is handled (with reads split from 1 KiB, 1 × 64 calls on
            // one connection ran 1.37 × as fast with 16 B while the cores halt between
            // turns, 1.9 × with 1 KiB; BENCHMARKS.md). One result is no batch: its
            // caller's next request waits for the rest.
            self.yielded = true;
            cx.waker().wake_by_ref();
            ReadPoll::Pending
        } else {
            return None;
        };
        // The read timeout counts from the last complete message.
        self.timeout.on_messages();
        Some(poll)
    }

    /// Budgets: between messages, read on only while this connection (and its server)
    /// may hold more; in a message, reserve all of it first. Waiting reads nothing, and
    /// TCP holds the peer back until bytes are released. (What we owe a peer that does
    /// not read counts too: the write queue is in the budget.) Returns what to wait for
    /// before reading, if anything.
    #[inline]
    fn reserve(&mut self, decoded_any: bool, needed: usize) -> Option<Wait> {
        // Between messages, nothing held, room: the common case, inline.
        if self.buf.is_empty() && self.buf_held == 0 && self.sock.budgets().has_room(1) {
            return None;
        }
        self.reserve_slow(decoded_any, needed)
    }

    fn reserve_slow(&mut self, decoded_any: bool, needed: usize) -> Option<Wait> {
        let budgets = self.sock.budgets();
        if decoded_any || self.buf.is_empty() {
            // The reserved message was read whole (or none was begun): what follows
            // needs a reservation of its own.
            budgets.update(&mut self.buf_held, 0);
        }
        if self.buf.is_empty() {
            if budgets.has_room(1) {
                return None;
            }
            let budgets = budgets.clone();
            self.shrink_buffer();
            return Some(Box::pin(async move {
                budgets.wait_for_room(1).await;
                AfterWait::Nothing
            }));
        }
        if needed <= self.buf_held {
            budgets.update(&mut self.buf_held, needed);
            return None;
        }
        if budgets.try_hold(needed - self.buf_held) {
            self.buf_held = needed;
            return None;
        }
        let budgets = budgets.clone();
        let more = needed - self.buf_held;
        self.shrink_buffer();
        Some(Box::pin(async move {
            budgets.hold_when_room(more).await;
            AfterWait::Held(needed)
        }))
    }

    fn after_wait(&mut self, after: AfterWait) {
        match after {
            AfterWait::Nothing => {}
            AfterWait::Held(needed) => {
                self.buf_held = needed;
                self.make_room(needed);
            }
            AfterWait::Discard(k) => {
                if let Some(stream) = self.incoming.get_mut(&k) {
                    *stream = Incoming::Discard;
                }
            }
            AfterWait::Forget(id) => {
                self.sock.pending().remove(id);
            }
        }
    }

    /// The connection has been quiet for a while (its timer fired with no message read
    /// since the last time): an empty read buffer is freed.
    pub(super) fn quiet(&mut self) {
        if !std::mem::take(&mut self.traded) && self.buf.is_empty() && self.wait.is_none() {
            self.release_buffer();
        }
    }

    /// Reading is over: open stream requests end with `closed`, the buffer is freed and
    /// its budget released.
    pub(super) fn finish(&mut self, closed: &Error) {
        self.wait = None;
        for (_, stream) in self.incoming.drain() {
            if let Incoming::Open(tx) = stream {
                tx.finish(Err(closed.clone()));
            }
        }
        // A large buffer goes back to the pool, whose sweeper returns the memory later.
        self.buf.clear();
        self.release_buffer();
        self.sock.budgets().update(&mut self.buf_held, 0);
    }

    /// Hands one message to whoever deals with it.
    fn route(&mut self, msg: Message) -> Result<Option<Wait>, CloseReason> {
        if tracing::enabled!(tracing::Level::TRACE) {
            tracing::trace!(conn = self.sock.id(), "recv {msg}");
        }
        if let Message::Notification { name, payload } = &msg {
            if is_reserved(name) {
                // Not traffic of the application's: a connection that has only announced
                // the extension keeps no read buffer (see `quiet`).
                self.on_extension(name, payload);
                return Ok(None);
            }
        }
        self.traded = true;
        let sock = &self.sock;
        match msg {
            Message::SingleRequest { id, name, payload } => self.on_request(id, name, payload),
            Message::StreamRequest { id, name, payload } => {
                self.on_stream_request(id, name, payload)?
            }
            Message::StreamRequestPart { id, payload } => return self.on_stream_part(id, payload),
            Message::SingleResult { id, payload } => self.on_result(id, Outcome::Result(payload)),
            Message::StreamResult { id, payload } if payload.is_empty() => {
                self.on_result(id, Outcome::End)
            }
            Message::StreamResult { id, payload } => match sock.pending().stream_sender(id) {
                // If the caller dropped its `ResultStream`, later parts are dropped.
                Some(tx) => return Ok(self.send_chunk(tx, payload, AfterWait::Forget(id))),
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
            Message::Notification { name, payload } => {
                return Ok(self.on_notification(name, payload))
            }
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
        Ok(None)
    }

    fn on_result(&mut self, id: RequestId, outcome: Outcome) {
        if self.sock.pending().deliver(id, outcome) {
            self.results_in_read = self.results_in_read.saturating_add(1);
        } else {
            tracing::debug!(
                conn = self.sock.id(),
                "dropping a result for request {:?}, which nobody waits for",
                wire::Preview::new(&id, 4).to_string()
            );
        }
    }

    fn on_request(&mut self, id: RequestId, op: Name, payload: Bytes) {
        let deadline = self.take_deadline(id);
        let handler = self.request_handler(&op);
        let sock = &self.sock;
        let (running, handler) = match sock.admission().admit(sock, Kind::Single, &op, handler) {
            Ok(admitted) => admitted,
            Err(refusal) => return refusal.send(sock, id),
        };
        // A payload slice keeps the read chunk it came in alive.
        let held = payload.len().max(self.read_size);
        let request = Request {
            sock: sock.clone(),
            op,
            id,
            payload,
            deadline: deadline.map(Instant::into_std),
        };
        let handler = handler(request, self.handler_memory.take());
        self.handler_memory = dispatch(sock, id, running, handler, held, deadline);
    }

    /// The handler for a request named `op`. The last one looked up is kept while the
    /// handlers stay the same: most peers call one operation many times, and this saves
    /// a lock and a lookup per request.
    fn request_handler(&mut self, op: &Name) -> Option<RequestFn> {
        let version = self.sock.handlers_version();
        if let Some(last) = &self.last_request {
            // The same bytes when the decoder took the name from `last` (no compare).
            let same = |a: &Name, b: &Name| std::ptr::eq(a.as_str(), b.as_str()) || a == b;
            if last.version == version && same(&last.op, op) {
                return Some(last.handler.clone());
            }
        }
        let handler = self.sock.with_handlers(|h| h.request(op).cloned())?;
        self.last_request = Some(Box::new(LastRequest {
            // Copied: a slice of the read buffer would keep the buffer alive.
            op: Name::copy_of(op),
            version,
            handler: handler.clone(),
        }));
        Some(handler)
    }

    fn on_stream_request(
        &mut self,
        id: RequestId,
        op: Name,
        payload: Bytes,
    ) -> Result<(), CloseReason> {
        let deadline = self.take_deadline(id);
        let sock = &self.sock;
        let k = id_key(id);
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
        let handler = sock.with_handlers(|h| h.stream(&op).cloned());
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
            id,
            deadline: deadline.map(Instant::into_std),
        };
        // Its chunks count as held while they wait in its channel.
        dispatch(sock, id, running, handler(request), 0, deadline);
        Ok(())
    }

    fn on_stream_part(
        &mut self,
        id: RequestId,
        payload: Bytes,
    ) -> Result<Option<Wait>, CloseReason> {
        let k = id_key(id);
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
            return Ok(None);
        }
        let Incoming::Open(tx) = stream else {
            return Ok(None);
        };
        // If the handler stopped reading, the rest of its stream is dropped.
        let tx = tx.clone();
        Ok(self.send_chunk(tx, payload, AfterWait::Discard(k)))
    }

    fn on_notification(&mut self, name: Name, payload: Bytes) -> Option<Wait> {
        let sock = &self.sock;
        let Some(handler) = sock.with_handlers(|h| h.notification(&name).cloned()) else {
            tracing::debug!(
                conn = sock.id(),
                "ignoring notification {:?}: no handler",
                name.as_str()
            );
            return None;
        };
        let held = payload.len().max(self.read_size);
        let notification = Notification {
            sock: sock.clone(),
            name,
            payload,
        };
        let full = self
            .notifications
            .try_push(handler, notification, held)
            .err()?;
        Some(Box::pin(async move {
            full.wait().await;
            AfterWait::Nothing
        }))
    }

    /// A message of the extension (the connection answers or aborts what it asks; here
    /// what concerns the reader).
    fn on_extension(&mut self, name: &str, payload: &[u8]) {
        match Extension::receive(&self.sock, name, payload) {
            Received::Cancel(id) => {
                // Parts the peer still sends for a cancelled stream request are dropped.
                if let Some(stream) = self.incoming.get_mut(&id_key(id)) {
                    *stream = Incoming::Discard;
                }
            }
            Received::Deadline(id, within) => {
                // Bounded: a deadline no request follows is an error of the peer's.
                let limits = self.sock.limits();
                let most = limits
                    .max_single_requests
                    .saturating_add(limits.max_stream_requests);
                if self.deadlines.len() < most {
                    self.deadlines.insert(id_key(id), within);
                }
            }
            Received::Hello | Received::Unknown => {}
        }
    }

    /// The deadline of the peer's request `id`, if the peer sent one for it.
    fn take_deadline(&mut self, id: RequestId) -> Option<Instant> {
        if self.deadlines.is_empty() {
            return None;
        }
        let within = self.deadlines.remove(&id_key(id))?;
        // One too far to represent is no deadline (the peer chooses it).
        Instant::now().checked_add(within)
    }

    /// Hands a stream chunk to its consumer; if the consumer has its `stream_buffer`
    /// full, reading waits (and so reads nothing more) until it has room. `gone` is what
    /// to do if the consumer is gone.
    fn send_chunk(&mut self, tx: ChunkSender, chunk: Bytes, gone: AfterWait) -> Option<Wait> {
        match tx.try_send(chunk) {
            Ok(()) => None,
            Err(Err(chunks::Gone)) => {
                self.after_wait(gone);
                None
            }
            Err(Ok(chunk)) => Some(Box::pin(async move {
                match tx.send(chunk).await {
                    Ok(()) => AfterWait::Nothing,
                    Err(chunks::Gone) => gone,
                }
            })),
        }
    }

    /// Makes room for a message of `needed` bytes whose start is in the buffer (see
    /// `wire::reserve_for`). A large one goes into a recycled buffer (see `recycle`), and
    /// the outgrown buffer is retired there.
    #[inline]
    fn make_room(&mut self, needed: usize) {
        // Room for all of it already (between small messages, nearly always): inline.
        if needed > self.buf.capacity() {
            self.grow(needed);
        }
    }

    fn grow(&mut self, needed: usize) {
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
    /// freed when there is nothing to read, unless it is at most `QUIET_CAPACITY` and the
    /// connection has traded messages (see [`quiet`](Self::quiet)). So an idle connection
    /// holds no read buffer, a busy one reads straight into its own, in reads of
    /// `read_size`.
    fn poll_read_some<S: AsyncRead + ?Sized>(
        &mut self,
        io: Pin<&mut S>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<usize>> {
        let size = self.read_size;
        let buf = &mut self.buf;
        if !buf.is_empty() || buf.capacity() >= READ_CHUNK || size > READ_CHUNK {
            if buf.capacity() - buf.len() < size / 2 {
                buf.reserve(size);
            }
            // Up to the end of the reserved message, or a little beyond: however large the
            // buffer, unreserved bytes do not pile up in it.
            let allowed = self.buf_held.saturating_sub(buf.len()).max(UNRESERVED_READ);
            let offered = (buf.capacity() - buf.len()).min(allowed);
            let read = tokio_util::io::poll_read_buf(io, cx, &mut (&mut *buf).limit(allowed));
            match read {
                Poll::Ready(Ok(n)) => self.read_size = next_read_size(size, n, offered),
                Poll::Pending if buf.is_empty() => self.release_buffer(),
                _ => {}
            }
            return read;
        }
        let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
        let mut chunk = ReadBuf::uninit(&mut chunk);
        let read = match io.poll_read(cx, &mut chunk) {
            Poll::Ready(Ok(())) => chunk.filled(),
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {
                if buf.capacity() > QUIET_CAPACITY || !self.traded {
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

/// The size of the read after one that took `read` bytes of the `offered` room, in reads of
/// `size`. A read that took all it was offered leaves more waiting (a batch of large
/// messages, a long stream): the next offers twice as much, up to `UNRESERVED_READ`, so
/// that a 64 KiB batch takes two system calls rather than nine. One that took less than a
/// quarter halves it again, down to `READ_CHUNK`.
fn next_read_size(size: usize, read: usize, offered: usize) -> usize {
    if read >= offered {
        (size * 2).min(UNRESERVED_READ)
    } else if read < offered / 4 {
        (size / 2).max(READ_CHUNK)
    } else {
        size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_grow_while_they_fill_what_they_are_offered_and_shrink_when_they_do_not() {
        let mut size = READ_CHUNK;
        let mut sizes = Vec::new();
        for _ in 0..5 {
            size = next_read_size(size, size, size);
            sizes.push(size);
        }
        assert_eq!(sizes, [16 << 10, 32 << 10, 64 << 10, 64 << 10, 64 << 10]);
        assert_eq!(
            UNRESERVED_READ,
            64 << 10,
            "never beyond one unreserved read"
        );
        // A read of half the room: the size stays.
        assert_eq!(next_read_size(size, size / 2, size), size);
        // Short reads: halved each time, never below a chunk.
        let mut shrinking = Vec::new();
        for _ in 0..4 {
            size = next_read_size(size, 100, size);
            shrinking.push(size);
        }
        assert_eq!(shrinking, [32 << 10, 16 << 10, 8 << 10, 8 << 10]);
    }
}
