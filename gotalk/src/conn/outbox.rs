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
//! Small messages are framed straight into one growing `BytesMut`, so a burst of results
//! becomes one syscall; payloads of [`COPY_LIMIT`] bytes or more are queued as their own
//! `Bytes` and written without being copied. The writer swaps that buffer for its own
//! empty one and writes from it, so small messages cost no allocation on their way out.

use std::{
    collections::VecDeque,
    pin::pin,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

use super::{budget::Budgets, schedule::TaskWake};

mod writer;
use crate::{
    error::Error,
    sync::{lock, Mutex},
    wire::{EncodeError, Header},
};
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
    /// Producers that respect backpressure wait while this many bytes are queued.
    limit: usize,
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
            budgets,
        }
    }

    /// Queues the protocol version: the first bytes on the wire.
    pub(super) fn push_version(&self, version: &[u8; 2]) {
        let mut q = lock(&self.queue);
        q.tail.extend_from_slice(version);
        q.queued += version.len();
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
        self.budgets.hold(framed);
        Ok(())
    }

    /// Queues a message if fewer than `limit` bytes are waiting; `Ok(false)` if not.
    pub(super) fn try_push(&self, header: Header<'_>, payload: &Bytes) -> Result<bool, PushError> {
        header.check(payload.len()).map_err(PushError::Encode)?;
        let mut q = lock(&self.queue);
        if q.queued >= self.limit && !q.closed {
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

    /// Waits until fewer than `limit` bytes are queued (or the outbox is closed).
    async fn wait_for_room(&self) {
        // Checked before and after registering for a wake-up: the first check is the
        // common case and costs no `Notified`.
        while !self.has_room() {
            let _waiting = RoomWaiter::new(&self.room_waiters);
            let mut room = pin!(self.room.notified());
            room.as_mut().enable();
            if self.has_room() {
                return;
            }
            room.await;
        }
    }

    /// Bytes queued or being written.
    pub(super) fn queued(&self) -> usize {
        lock(&self.queue).queued
    }

    /// Whether fewer than `limit` bytes are queued (or the outbox is closed).
    fn has_room(&self) -> bool {
        let q = lock(&self.queue);
        q.queued < self.limit || q.closed
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
        lock(&self.queue).queued -= n;
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
