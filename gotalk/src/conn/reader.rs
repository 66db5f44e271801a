//! The read side of a connection, polled by the connection's task (`driver.rs`): it
//! reads into its buffer (`read_buf.rs`), decodes every complete message there (the
//! version first, see `wire::Conversation`), and routes each: a request to admission and
//! its handler (`admission.rs`, `respond.rs`), a result to the call waiting for it
//! (`pending.rs`), a stream chunk to its consumer (`chunks.rs`, `peer_requests.rs`), a
//! notification to the connection's notification queue, an extension message to
//! `extension.rs`.
//!
//! Reading stops while it must wait for anything but the socket: room in the byte
//! budgets, in a full stream buffer or in the notification queue. Such a wait is a
//! [`Wait`] the task polls instead of reading; writing goes on meanwhile. When to write
//! while reading is the [`Schedule`]'s to say.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use tokio::{io::AsyncRead, time::Instant};

use super::{
    budget::Budgets,
    charge::Kept,
    chunks::{self, ChunkSender},
    extension::{self, is_reserved, Received},
    inbound::Inbound,
    pending::Outcome,
    read_buf::{ReadBuffer, Shortfall},
    read_timeout::ReadTimeout,
    schedule::{Halfway, Schedule},
    Sock,
};
use crate::{
    error::{CloseReason, Error, Side},
    wire::{self, Conversation, DecodeError, Decoded, Message, Name, ProtocolErrorCode, RequestId},
};

/// Something reading waits for (boxed: waiting is rare, and inline it would grow every
/// connection), and what to do once it is over.
type Wait = Pin<Box<dyn Future<Output = AfterWait> + Send>>;

enum AfterWait {
    Nothing,
    /// The bytes for a new allocation of the read buffer, now held.
    Held {
        capacity: usize,
        needed: usize,
        more: usize,
    },
    /// The handler of this stream request stopped reading: drop the rest of its stream.
    Discard(RequestId),
    /// The caller reading this request's results dropped them: forget the request.
    Forget(RequestId),
}

impl Shortfall {
    /// Waits until the budgets have what this shortfall lacks.
    fn wait(self, budgets: Arc<Budgets>) -> Wait {
        Box::pin(async move {
            match self {
                Shortfall::Room => {
                    budgets.wait_for_room(1).await;
                    AfterWait::Nothing
                }
                Shortfall::Allocation {
                    capacity,
                    needed,
                    more,
                } => {
                    budgets.hold_when_room(more).await;
                    AfterWait::Held {
                        capacity,
                        needed,
                        more,
                    }
                }
            }
        })
    }
}

/// What a poll of the read side ended with.
pub(super) enum ReadPoll {
    /// Nothing more to read now: the stream or a wait wakes the task (or it woke itself,
    /// to let the callers it handed results run first: see [`Halfway::Yield`]).
    Pending,
    /// The [`Schedule`] says to write what is queued now, then poll again.
    Write,
    /// Reading is over, for this reason.
    Done(CloseReason),
}

pub(super) struct Reader {
    sock: Sock,
    buf: ReadBuffer,
    conversation: Conversation,
    /// Where the peer's requests and notifications go.
    inbound: Inbound,
    wait: Option<Wait>,
    timeout: ReadTimeout,
}

impl Reader {
    pub(super) fn new(sock: Sock) -> Self {
        let limits = sock.limits();
        Self {
            conversation: Conversation::new(limits.max_payload),
            timeout: ReadTimeout::new(limits.read_timeout, Instant::now()),
            sock,
            buf: ReadBuffer::new(),
            inbound: Inbound::default(),
            wait: None,
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

    /// Reads and routes what the peer sent, as far as it can without waiting, writing
    /// first whenever `schedule` says so.
    pub(super) fn poll_read<S: AsyncRead + ?Sized>(
        &mut self,
        mut io: Pin<&mut S>,
        cx: &mut Context<'_>,
        schedule: &mut Schedule,
    ) -> ReadPoll {
        let outbox = || self.sock.outbox().queued();
        if schedule.resume(outbox) {
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
                let bytes = self.buf.bytes();
                let before = bytes.len();
                // The name of the last request is not split off the buffer again (asked
                // only for messages with a name).
                let (sock, inbound) = (&self.sock, &self.inbound);
                let mut name_known = false;
                let known = |op: &str| {
                    let name = inbound.known(sock, op);
                    name_known = name.is_some();
                    name
                };
                match self.conversation.decode_with(bytes, known) {
                    Ok(Decoded::Version) => {}
                    Ok(Decoded::Message(msg)) => {
                        decoded_any = true;
                        let size = before - bytes.len();
                        self.buf.on_message(size);
                        match self.route(msg, !name_known, schedule) {
                            Ok(None) => {}
                            Ok(Some(wait)) => {
                                self.wait = Some(wait);
                                break None;
                            }
                            Err(reason) => return ReadPoll::Done(reason),
                        }
                        if let Some(wait) = self.pause() {
                            self.wait = Some(wait);
                            break None;
                        }
                        if schedule.after_output(self.sock.outbox().queued_total()) {
                            self.timeout.on_messages();
                            cx.waker().wake_by_ref();
                            return ReadPoll::Pending;
                        }
                        let queued = || self.sock.outbox().queued();
                        if let Some(halfway) = schedule.after_message(size, queued) {
                            // The read timeout counts from the last complete message.
                            self.timeout.on_messages();
                            if halfway == Halfway::Write {
                                return ReadPoll::Write;
                            }
                            cx.waker().wake_by_ref();
                            return ReadPoll::Pending;
                        }
                    }
                    Err(DecodeError::Incomplete { needed }) => break Some(needed),
                    Err(DecodeError::Version(e)) => {
                        return ReadPoll::Done(Sock::protocol_error(
                            ProtocolErrorCode::UNSUPPORTED,
                            e.to_string(),
                        ));
                    }
                    Err(DecodeError::Invalid(e)) => {
                        let bytes = wire::Preview::new(bytes, 32);
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
            let budgets = self.sock.budgets();
            if let Some(shortfall) = self.buf.reserve(budgets, needed) {
                self.wait = Some(shortfall.wait(budgets.clone()));
                continue;
            }
            match self.buf.poll_read(io.as_mut(), cx, budgets) {
                Poll::Ready(Ok(0)) => {
                    if !self.buf.is_empty() {
                        tracing::debug!(
                            conn = self.sock.id(),
                            "peer closed mid-message ({} bytes unparsed)",
                            self.buf.bytes().len()
                        );
                    }
                    return ReadPoll::Done(CloseReason::PeerClosed);
                }
                Poll::Ready(Ok(n)) => {
                    schedule.output_from(self.sock.outbox().queued_total());
                    if schedule.after_read(n, || self.sock.outbox().queued()) {
                        return ReadPoll::Write;
                    }
                }
                Poll::Ready(Err(e)) => return ReadPoll::Done(CloseReason::Io(Arc::new(e))),
                Poll::Pending => return ReadPoll::Pending,
            }
        }
    }

    /// What to wait for before the next message, if anything: every message may make
    /// answers (a few bytes of request can ask for kilobytes), and one read may hold
    /// thousands of requests, so the bounds are looked at after each one, not once a
    /// read. Reading stops while the answers already made wait to be written beyond the
    /// write buffer, or while the budgets are spent (the outbox counts in them too), and
    /// goes on once the peer has read enough of them.
    #[inline]
    fn pause(&mut self) -> Option<Wait> {
        let budgets = self.sock.budgets();
        // What was reserved for the message begun is over: that message was just routed.
        self.buf.unreserve(budgets);
        if !self.sock.outbox().answers_over() && budgets.has_room(1) {
            return None;
        }
        Some(self.wait_for_room())
    }

    /// Waits until the answers and the budgets have room again (rare: out of line).
    #[cold]
    fn wait_for_room(&self) -> Wait {
        let sock = self.sock.clone();
        Box::pin(async move {
            loop {
                sock.outbox().wait_for_answers_room().await;
                sock.budgets().wait_for_room(1).await;
                if !sock.outbox().answers_over() || sock.is_closed() {
                    return AfterWait::Nothing;
                }
            }
        })
    }

    fn after_wait(&mut self, after: AfterWait) {
        match after {
            AfterWait::Nothing => {}
            AfterWait::Held {
                capacity,
                needed,
                more,
            } => self
                .buf
                .allocate(self.sock.budgets(), capacity, needed, more),
            AfterWait::Discard(id) => self.inbound.discard(id),
            AfterWait::Forget(id) => {
                self.sock.pending().remove(id);
            }
        }
    }

    /// The connection has been quiet for a while (its timer fired with no message read
    /// since the last time): an empty read buffer is freed.
    pub(super) fn quiet(&mut self) {
        self.buf.quiet(self.wait.is_some());
    }

    /// Reading is over: open stream requests end with `closed`, the buffer is freed and
    /// its budget released.
    pub(super) fn finish(&mut self, closed: &Error) {
        self.wait = None;
        self.inbound.finish(closed);
        self.buf.finish(self.sock.budgets());
    }

    /// Hands one message to whoever deals with it.
    /// Hands one message to whoever deals with it; its name is a slice of the read buffer
    /// if `name_is_slice` (the decoder may have taken a name it knew instead).
    fn route(
        &mut self,
        msg: Message,
        name_is_slice: bool,
        schedule: &mut Schedule,
    ) -> Result<Option<Wait>, CloseReason> {
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
        self.buf.on_traffic();
        let (sock, budgets) = (&self.sock, self.sock.budgets());
        match msg {
            Message::SingleRequest {
                id,
                mut name,
                payload,
            } => {
                let payload = self
                    .buf
                    .detach(payload, Some(&mut name), name_is_slice, budgets);
                self.inbound.request(sock, id, name, payload);
            }
            Message::StreamRequest { id, name, payload } => {
                // Its name lives as long as the stream: not a slice of the read buffer.
                let name = if name_is_slice {
                    Name::copy_of(&name)
                } else {
                    name
                };
                let payload = self.buf.detach(payload, None, false, budgets);
                self.inbound.open_stream(sock, id, name, payload)?;
            }
            Message::StreamRequestPart { id, payload } => {
                let Some(tx) = self.inbound.stream_part(id, payload.is_empty())? else {
                    return Ok(None);
                };
                let part = self.buf.detach(payload, None, false, budgets);
                let (part, kept) = (part.bytes, part.keep.into_owned());
                // If the handler stopped reading, the rest of its stream is dropped.
                return Ok(self.send_chunk(tx, part, kept, AfterWait::Discard(id)));
            }
            Message::SingleResult { id, payload } => {
                let payload = self.buf.result(payload);
                self.on_result(id, Outcome::Result(payload), schedule)
            }
            Message::StreamResult { id, payload } if payload.is_empty() => {
                self.on_result(id, Outcome::End, schedule)
            }
            Message::StreamResult { id, payload } => match sock.pending().stream_sender(id) {
                Some(tx) => {
                    let part = self.buf.detach(payload, None, false, budgets);
                    let (part, kept) = (part.bytes, part.keep.into_owned());
                    // If the caller dropped its `ResultStream`, later parts are dropped.
                    return Ok(self.send_chunk(tx, part, kept, AfterWait::Forget(id)));
                }
                // Copied into the single result the caller waits for.
                None => self.on_result(id, Outcome::Part(payload), schedule),
            },
            Message::ErrorResult { id, payload } => {
                let text = String::from_utf8_lossy(&payload).into_owned();
                self.on_result(id, Outcome::Failed(Error::Remote(text)), schedule);
            }
            Message::RetryResult {
                id,
                wait_ms,
                payload,
            } => {
                let reason = String::from_utf8_lossy(&payload).into_owned();
                let wait = Duration::from_millis(u64::from(wait_ms));
                self.on_result(id, Outcome::Failed(Error::Retry { wait, reason }), schedule);
            }
            Message::Notification { mut name, payload } => {
                let payload = self
                    .buf
                    .detach(payload, Some(&mut name), name_is_slice, budgets);
                let full = self.inbound.notification(sock, name, payload);
                return Ok(full.map(|full| -> Wait {
                    Box::pin(async move {
                        full.wait().await;
                        AfterWait::Nothing
                    })
                }));
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

    fn on_result(&mut self, id: RequestId, outcome: Outcome, schedule: &mut Schedule) {
        if self.sock.pending().deliver(id, outcome) {
            schedule.on_result();
        } else {
            tracing::debug!(
                conn = self.sock.id(),
                "dropping a result for request {:?}, which nobody waits for",
                wire::Preview::new(&id, 4).to_string()
            );
        }
    }

    /// A message of the extension (the connection answers or aborts what it asks; here
    /// what concerns the reader).
    fn on_extension(&mut self, name: &str, payload: &[u8]) {
        match self.sock.extension().receive(name, payload) {
            // Parts the peer still sends for a cancelled stream request are dropped.
            Received::Cancel(id) => self.inbound.discard(id),
            Received::Deadline(id, within) => self.inbound.deadline(&self.sock, id, within),
            Received::Hello => extension::announce(&self.sock),
            Received::Unknown => {}
        }
    }

    /// Hands a stream chunk to its consumer; if the consumer has its `stream_buffer`
    /// full, reading waits (and so reads nothing more) until it has room. `gone` is what
    /// to do if the consumer is gone.
    fn send_chunk(
        &mut self,
        tx: ChunkSender,
        chunk: Bytes,
        kept: Kept,
        gone: AfterWait,
    ) -> Option<Wait> {
        match tx.try_send(chunk, kept) {
            Ok(()) => None,
            Err(Err(chunks::Gone)) => {
                self.after_wait(gone);
                None
            }
            Err(Ok((chunk, kept))) => Some(Box::pin(async move {
                match tx.send(chunk, kept).await {
                    Ok(()) => AfterWait::Nothing,
                    Err(chunks::Gone) => gone,
                }
            })),
        }
    }
}
