//! The write side of a connection: a shared queue that producers frame messages into
//! ([`Outbox`]), and the [`Writer`] (`outbox/writer.rs`) that the connection's task
//! drains it with, in as few (vectored) writes as the stream takes (see the picture in
//! the `conn` module docs).
//!
//! Three ways in, one meaning each: [`Outbox::push_now`] queues whatever is queued
//! already (the connection's own small answers: the version, refusals, protocol errors,
//! heartbeats); [`Outbox::try_push`] queues only if there is room; and
//! [`Outbox::push_when_room`] waits for room (backpressure for callers and handlers).
//!
//! The answers to the peer among the queued bytes are counted apart (`outbox/answers.rs`):
//! while more than `limit` of them are unwritten, the reader reads nothing more, so that
//! a peer that asks without reading makes no more of them.
//!
//! Small messages are framed straight into one growing `BytesMut`, so a burst of results
//! becomes one syscall; payloads of [`COPY_LIMIT`] bytes or more are queued as their own
//! `Bytes` and written without being copied. The writer swaps that buffer for its own
//! empty one and writes from it, so small messages cost no allocation on their way out.

use std::{
    collections::VecDeque,
    pin::pin,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
};

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

use super::{budget::Budgets, limits::BUDGET_FLOOR, schedule::TaskWake};

mod answers;
mod writer;
use crate::{
    error::Error,
    sync::{lock, Mutex},
    wire::{EncodeError, Header},
};
use answers::Answers;
pub(super) use writer::{Writer, Written};

/// Payloads at least this large are queued by reference instead of copied.
pub(super) const COPY_LIMIT: usize = 16 * 1024;
/// An idle write buffer larger than this is freed rather than kept.
const KEEP_CAPACITY: usize = 64 * 1024;
/// At most this many buffers go into one vectored write.
const MAX_IOV: usize = 64;

/// Why a message was not queued.
#[derive(Debug)]
pub(super) enum PushError {
    /// The connection is closing; nothing more goes out.
    Closed,
    /// The message cannot be encoded (name or payload too long).
    Encode(EncodeError),
}

impl PushError {
    /// The public error, given the connection's close error for `Closed`.
    pub(super) fn into_error(self, closed: impl FnOnce() -> Error) -> Error {
        match self {
            Self::Closed => closed(),
            Self::Encode(EncodeError::NameTooLong(len)) => {
                Error::InvalidName(crate::wire::NameError::TooLong(len))
            }
            Self::Encode(EncodeError::PayloadTooLarge(len)) => Error::PayloadTooLarge(len),
        }
    }
}

pub(super) struct Outbox {
    queue: Mutex<Queue>,
    /// Whether queuing must wake the connection's task.
    task: TaskWake,
    /// Wakes producers waiting for room after a write, if there are any.
    room: Notify,
    room_waiters: AtomicUsize,
    /// Producers that respect backpressure wait while this many bytes are queued, and the
    /// reader while this many bytes of answers are.
    limit: usize,
    /// Whether `limit` bytes of answers or more are unwritten (set under the queue's lock,
    /// read by the reader after every message without it).
    answers_over: AtomicBool,
    /// The bytes ever queued (likewise).
    queued_total: AtomicU64,
    /// Counts the queued bytes as held by the connection.
    budgets: Arc<Budgets>,
}

#[derive(Default)]
struct Queue {
    /// Buffers ready to go, in order; `tail` follows them.
    chunks: VecDeque<Bytes>,
    /// Where small messages are framed.
    tail: BytesMut,
    /// Bytes queued or being written. Counted under the lock that frames them, not in an
    /// atomic: a locked add per message costs a large part of framing a small message,
    /// where a lock per write is a fraction of the write's system call.
    queued: usize,
    /// Which of them answer the peer.
    answers: Answers,
    closed: bool,
}

impl Outbox {
    pub(super) fn new(limit: usize, budgets: Arc<Budgets>) -> Self {
        Self {
            queue: Mutex::default(),
            task: TaskWake::default(),
            room: Notify::new(),
            room_waiters: AtomicUsize::new(0),
            limit,
            answers_over: AtomicBool::new(false),
            queued_total: AtomicU64::new(0),
            budgets,
        }
    }

    /// Queues the protocol version: the first bytes on the wire.
    pub(super) fn push_version(&self, version: &[u8; 2]) {
        let mut q = lock(&self.queue);
        q.tail.extend_from_slice(version);
        q.queued += version.len();
        q.answers.queued(version.len(), false);
        self.budgets.hold(version.len());
    }

    /// Frames a message into the queue now, however full it is. For small answers the
    /// connection itself sends, and for protocol errors and heartbeats.
    pub(super) fn push_now(&self, header: Header<'_>, payload: &[u8]) -> Result<(), PushError> {
        self.push_parts(header, payload, None)
    }

    fn push_parts(
        &self,
        header: Header<'_>,
        payload: &[u8],
        shared: Option<&Bytes>,
    ) -> Result<(), PushError> {
        header.check(payload.len()).map_err(PushError::Encode)?;
        self.frame(&mut lock(&self.queue), header, payload, shared)?;
        self.wake();
        Ok(())
    }

    /// Frames a checked message into the locked queue.
    #[inline]
    fn frame(
        &self,
        q: &mut Queue,
        header: Header<'_>,
        payload: &[u8],
        shared: Option<&Bytes>,
    ) -> Result<(), PushError> {
        if q.closed {
            return Err(PushError::Closed);
        }
        debug_assert!(header.check(payload.len()).is_ok());
        let by_reference = matches!(shared, Some(bytes) if bytes.len() >= COPY_LIMIT);
        let framed = header.encoded_len() + payload.len();
        let copied = if by_reference {
            framed - payload.len()
        } else {
            framed
        };
        if q.tail.len() >= COPY_LIMIT && q.tail.capacity() - q.tail.len() < copied {
            // Out of room, and much framed already: that goes on as it is, and framing
            // goes on in a fresh buffer (growing this one would copy all of it).
            let fresh = BytesMut::with_capacity(KEEP_CAPACITY.max(copied));
            let full = std::mem::replace(&mut q.tail, fresh).freeze();
            q.chunks.push_back(full);
        }
        // Checked by the caller (`Header::check`).
        header.encode_checked(payload.len() as u32, &mut q.tail);
        match shared {
            Some(bytes) if by_reference => {
                let framed = q.tail.split().freeze();
                q.chunks.push_back(framed);
                q.chunks.push_back(bytes.clone());
            }
            _ => q.tail.extend_from_slice(payload),
        }
        q.queued += framed;
        q.answers.queued(framed, is_answer(header));
        self.queued_total
            .store(q.answers.total(), Ordering::Relaxed);
        if q.answers.unwritten() >= self.limit {
            self.answers_over.store(true, Ordering::Relaxed);
        }
        self.budgets.hold(framed);
        Ok(())
    }

    /// Queues a message if there is room (see [`has_room`](Self::has_room)); `Ok(false)`
    /// if not.
    pub(super) fn try_push(&self, header: Header<'_>, payload: &Bytes) -> Result<bool, PushError> {
        header.check(payload.len()).map_err(PushError::Encode)?;
        let mut q = lock(&self.queue);
        if !self.room_in(&q) {
            return Ok(false);
        }
        self.frame(&mut q, header, payload, Some(payload))?;
        drop(q);
        self.wake();
        Ok(true)
    }

    /// Queues a message once fewer than `limit` bytes are waiting: backpressure for
    /// callers and handlers when the peer reads slower than they write.
    pub(super) async fn push_when_room(
        &self,
        header: Header<'_>,
        payload: &Bytes,
    ) -> Result<(), PushError> {
        // One lock when there is room (almost always).
        while !self.try_push(header, payload)? {
            self.wait_for_room().await;
        }
        Ok(())
    }

    /// Waits until there is room (see [`has_room`](Self::has_room)): woken by the writer,
    /// which is sure to write while anything is queued.
    async fn wait_for_room(&self) {
        self.wait_until(Self::has_room).await;
    }

    /// Waits until `ready` says so, looking again after every write. Checked before and
    /// after registering for a wake-up: the first check is the common case and costs no
    /// `Notified`.
    async fn wait_until(&self, ready: impl Fn(&Self) -> bool) {
        while !ready(self) {
            let _waiting = RoomWaiter::new(&self.room_waiters);
            let mut room = pin!(self.room.notified());
            room.as_mut().enable();
            if ready(self) {
                return;
            }
            room.await;
        }
    }

    /// Whether `limit` bytes of answers or more are unwritten: the reader waits (see
    /// [`wait_for_answers_room`](Self::wait_for_answers_room)) before it reads on.
    #[inline]
    pub(super) fn answers_over(&self) -> bool {
        self.answers_over.load(Ordering::Relaxed)
    }

    /// The bytes ever queued: how much the messages of a read made (`schedule.rs`).
    #[inline]
    pub(super) fn queued_total(&self) -> u64 {
        self.queued_total.load(Ordering::Relaxed)
    }

    /// Waits until fewer than `limit` bytes of answers are unwritten (or the outbox is
    /// closed).
    pub(super) async fn wait_for_answers_room(&self) {
        self.wait_until(|outbox| !outbox.answers_over() || lock(&outbox.queue).closed)
            .await;
    }

    /// Bytes queued or being written.
    pub(super) fn queued(&self) -> usize {
        lock(&self.queue).queued
    }

    /// Whether a producer that respects backpressure may queue now: fewer than `limit`
    /// bytes are queued and either the budgets have room or fewer than `BUDGET_FLOOR`
    /// are (what a connection may always hold), or the outbox is closed. The budgets count
    /// here because what a server's handlers and topics write for peers that do not read
    /// must stay within the server's shared budget, not only within each connection's
    /// write buffer; the floor keeps every connection moving while others have spent it
    /// (and an empty queue, which frees nothing by waiting, always takes a message).
    fn has_room(&self) -> bool {
        self.room_in(&lock(&self.queue))
    }

    #[inline]
    fn room_in(&self, q: &Queue) -> bool {
        q.closed || (q.queued < self.limit && (q.queued < BUDGET_FLOOR || self.budgets.has_room(1)))
    }

    /// Lets the writer drain what is queued, then stop. Later pushes fail.
    pub(super) fn close(&self) {
        lock(&self.queue).closed = true;
        self.task.wake();
        self.room.notify_waiters();
    }

    /// Records that `n` bytes were written and `freed` bytes of buffers are done with,
    /// and wakes waiting producers.
    fn written(&self, n: usize, freed: usize) {
        {
            let mut q = lock(&self.queue);
            q.queued -= n;
            q.answers.written(n);
            if q.answers.unwritten() < self.limit && self.answers_over() {
                self.answers_over.store(false, Ordering::Relaxed);
            }
        }
        self.budgets.release(freed);
        // Either this sees a waiter, or the waiter sees the lower count (see
        // `wait_for_room`: it counts itself before it looks).
        if self.room_waiters.load(Ordering::SeqCst) > 0 {
            self.room.notify_waiters();
        }
    }

    /// Wakes the connection's task for what was just queued, unless it writes soon anyway.
    fn wake(&self) {
        self.task.queued();
    }

    /// Whether queuing must wake the connection's task (see `schedule.rs`).
    pub(super) fn task(&self) -> &TaskWake {
        &self.task
    }

    /// Frees small buffers an idle connection holds (called when it has been quiet).
    pub(super) fn shrink_idle(&self) {
        let mut q = lock(&self.queue);
        if q.tail.is_empty() {
            q.tail = BytesMut::new();
        }
    }
}

/// Whether a message answers the peer's request (see `outbox/answers.rs`).
#[inline]
fn is_answer(header: Header<'_>) -> bool {
    matches!(
        header,
        Header::SingleResult { .. }
            | Header::StreamResult { .. }
            | Header::ErrorResult { .. }
            | Header::RetryResult { .. }
    )
}

/// Counts a producer waiting for room while it lives.
struct RoomWaiter<'a>(&'a AtomicUsize);

impl<'a> RoomWaiter<'a> {
    fn new(waiters: &'a AtomicUsize) -> Self {
        waiters.fetch_add(1, Ordering::SeqCst);
        Self(waiters)
    }
}

impl Drop for RoomWaiter<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
