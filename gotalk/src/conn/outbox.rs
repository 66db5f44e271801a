//! The write side of a connection: a shared queue that producers frame messages into,
//! drained by whoever holds the writer role (the writer task, or the reader flushing a
//! batch inline; see the picture in the `conn` module docs) in as few (vectored) writes
//! as the stream takes.
//!
//! Three ways in, one meaning each: [`Outbox::push_now`] queues whatever is queued
//! already (the connection's own small answers: the version, refusals, protocol errors,
//! heartbeats); [`Outbox::try_push`] queues only if there is room; and
//! [`Outbox::push_when_room`] waits for room (backpressure for callers and handlers).
//!
//! Small messages are framed straight into one growing `BytesMut`, so a burst of results
//! becomes one syscall; payloads of [`COPY_LIMIT`] bytes or more are queued as their own
//! `Bytes` and written without being copied.

use std::{
    collections::VecDeque,
    future::poll_fn,
    io::IoSlice,
    pin::{pin, Pin},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::{Buf, Bytes, BytesMut};
use tokio::{io::AsyncWrite, sync::Notify, time::Instant};

use super::budget::Budgets;
use crate::{
    sync::lock,
    wire::{EncodeError, Header},
    Error,
};

/// Payloads at least this large are queued by reference instead of copied.
const COPY_LIMIT: usize = 16 * 1024;
/// An idle write buffer larger than this is freed rather than kept.
const KEEP_CAPACITY: usize = 64 * 1024;
/// At most this many buffers go into one vectored write.
const MAX_IOV: usize = 64;

/// Why a message was not queued.
#[derive(Debug)]
pub(crate) enum PushError {
    /// The connection is closing; nothing more goes out.
    Closed,
    /// The message cannot be encoded (name or payload too long).
    Encode(EncodeError),
}

impl PushError {
    /// The public error, given the connection's close error for `Closed`.
    pub(crate) fn into_error(self, closed: impl FnOnce() -> Error) -> Error {
        match self {
            Self::Closed => closed(),
            Self::Encode(EncodeError::NameTooLong(len)) => {
                Error::InvalidName(crate::wire::NameError::TooLong(len))
            }
            Self::Encode(EncodeError::PayloadTooLarge(len)) => Error::PayloadTooLarge(len),
        }
    }
}

pub(crate) struct Outbox {
    queue: Mutex<Queue>,
    /// Who writes now: the writer task, or the reader flushing what a batch of requests
    /// produced. Only its holder takes from the queue, so bytes go out in order.
    writing: AtomicBool,
    /// Set while the reader handles a batch of input and will flush at its end: queuing
    /// then need not wake the writer task (a wake-up and a task switch per batch saved).
    reader_flushes: AtomicBool,
    /// Bytes were written but the stream must still be flushed (e.g. TLS).
    flush_pending: AtomicBool,
    /// Wakes the writer when something was queued.
    wake_writer: Notify,
    /// Wakes producers waiting for room after a write.
    room: Notify,
    /// Producers that respect backpressure wait while this many bytes are queued.
    limit: usize,
    /// Counts the queued bytes as held by the connection.
    budgets: Arc<Budgets>,
    /// Bytes written of the first queued buffer, which an inline flush left partly
    /// written: its memory is only freed whole, so they stay counted until it is.
    partly_written: AtomicUsize,
}

#[derive(Default)]
struct Queue {
    /// Buffers ready to go, in order; `tail` follows them.
    chunks: VecDeque<Bytes>,
    /// Where small messages are framed.
    tail: BytesMut,
    /// Bytes queued or being written.
    queued: usize,
    closed: bool,
}

impl Outbox {
    pub(crate) fn new(limit: usize, budgets: Arc<Budgets>) -> Self {
        Self {
            queue: Mutex::default(),
            writing: AtomicBool::new(false),
            reader_flushes: AtomicBool::new(false),
            flush_pending: AtomicBool::new(false),
            wake_writer: Notify::new(),
            room: Notify::new(),
            limit,
            budgets,
            partly_written: AtomicUsize::new(0),
        }
    }

    /// Queues the protocol version: the first bytes on the wire.
    pub(crate) fn push_version(&self, version: &[u8; 2]) {
        let mut q = lock(&self.queue);
        q.tail.extend_from_slice(version);
        q.queued += version.len();
        self.budgets.hold(version.len());
        drop(q);
        self.wake_writer.notify_one();
    }

    /// Frames a message into the queue now, however full it is. For small answers the
    /// connection itself sends, and for protocol errors and heartbeats.
    pub(crate) fn push_now(&self, header: Header<'_>, payload: &[u8]) -> Result<(), PushError> {
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
        header
            .encode(payload.len(), &mut q.tail)
            .map_err(PushError::Encode)?;
        match shared {
            Some(bytes) if bytes.len() >= COPY_LIMIT => {
                let framed = q.tail.split().freeze();
                q.chunks.push_back(framed);
                q.chunks.push_back(bytes.clone());
            }
            _ => q.tail.extend_from_slice(payload),
        }
        let framed = header.encoded_len() + payload.len();
        q.queued += framed;
        self.budgets.hold(framed);
        Ok(())
    }

    /// Queues a message if fewer than `limit` bytes are waiting; `Ok(false)` if not.
    pub(crate) fn try_push(&self, header: Header<'_>, payload: &Bytes) -> Result<bool, PushError> {
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
    pub(crate) async fn push_when_room(
        &self,
        header: Header<'_>,
        payload: &Bytes,
    ) -> Result<(), PushError> {
        // One lock when there is room (almost always).
        while !self.try_push(header, payload)? {
            self.wait_below(self.limit).await;
        }
        Ok(())
    }

    /// Waits until fewer than `limit` bytes are queued (or the outbox is closed).
    pub(crate) async fn wait_below(&self, limit: usize) {
        // Checked before and after registering for a wake-up: the first check is the
        // common case and costs no `Notified`.
        while !self.is_below(limit) {
            let mut room = pin!(self.room.notified());
            room.as_mut().enable();
            if self.is_below(limit) {
                return;
            }
            room.await;
        }
    }

    /// Bytes queued or being written.
    pub(crate) fn queued(&self) -> usize {
        lock(&self.queue).queued
    }

    /// Whether fewer than `limit` bytes are queued (or the outbox is closed).
    pub(crate) fn is_below(&self, limit: usize) -> bool {
        let q = lock(&self.queue);
        q.queued < limit || q.closed
    }

    /// Lets the writer drain what is queued, then stop. Later pushes fail.
    pub(crate) fn close(&self) {
        lock(&self.queue).closed = true;
        self.wake_writer.notify_one();
        self.room.notify_waiters();
    }

    /// Moves everything queued into `batch`; returns whether the outbox is closed.
    fn take(&self, batch: &mut VecDeque<Bytes>) -> bool {
        let mut q = lock(&self.queue);
        batch.append(&mut q.chunks);
        if !q.tail.is_empty() {
            batch.push_back(q.tail.split().freeze());
        }
        q.closed
    }

    /// Records that `n` bytes were written and `freed` bytes of buffers are done with,
    /// wakes waiting producers, and frees a large idle buffer so idle connections stay
    /// small.
    fn written(&self, n: usize, freed: usize) {
        {
            let mut q = lock(&self.queue);
            q.queued -= n;
            self.budgets.release(freed);
            if q.queued == 0 && q.tail.capacity() > KEEP_CAPACITY {
                q.tail = BytesMut::new();
            }
        }
        self.room.notify_waiters();
    }

    /// Wakes the writer task for what was just queued, unless the reader flushes soon.
    fn wake(&self) {
        if !self.reader_flushes.load(Ordering::Acquire) {
            self.wake_writer.notify_one();
        }
    }

    /// The reader starts handling a batch of input; it calls `flush_inline` at its end.
    pub(crate) fn begin_batch(&self) {
        self.reader_flushes.store(true, Ordering::Release);
    }

    /// The reader stops short of flushing (it is about to wait): the writer task takes
    /// over whatever is queued.
    pub(crate) fn end_batch(&self) {
        self.reader_flushes.store(false, Ordering::Release);
        self.wake_writer.notify_one();
    }

    /// Writes what is queued right now from the reader's turn, as far as the stream takes
    /// it without waiting; whatever is left (or a flush the stream still needs) goes back
    /// to the writer task. Does nothing if the writer task is writing: it takes the rest.
    pub(crate) fn flush_inline<W: AsyncWrite + Unpin>(&self, io: &Mutex<W>, cx: &mut Context<'_>) {
        self.reader_flushes.store(false, Ordering::Release);
        if !self.try_acquire() {
            return;
        }
        // Usually all there is is small messages in `tail`: one buffer, and no `VecDeque`
        // to allocate (and keep, per connection).
        let mut batch = VecDeque::new();
        {
            let mut q = lock(&self.queue);
            if q.chunks.is_empty() {
                if !q.tail.is_empty() {
                    batch = VecDeque::from([q.tail.split().freeze()]);
                }
            } else {
                drop(q);
                self.take(&mut batch);
            }
        }
        let mut flushed = true;
        let mut partly_written = self.partly_written.load(Ordering::Acquire);
        {
            let mut io = lock(io);
            while !batch.is_empty() {
                match poll_write_once(Pin::new(&mut *io), &batch, cx) {
                    Poll::Ready(Ok(n)) if n > 0 => {
                        let freed = advance(&mut batch, n, &mut partly_written);
                        self.written(n, freed);
                    }
                    // Errors and blocked writes are the writer task's to handle.
                    _ => break,
                }
            }
            if batch.is_empty() {
                flushed = matches!(Pin::new(&mut *io).poll_flush(cx), Poll::Ready(Ok(())));
            }
        }
        self.partly_written.store(partly_written, Ordering::Release);
        if !batch.is_empty() {
            let mut q = lock(&self.queue);
            while let Some(bytes) = batch.pop_back() {
                q.chunks.push_front(bytes);
            }
        } else if !flushed {
            self.flush_pending.store(true, Ordering::Release);
        }
        self.release();
    }

    fn try_acquire(&self) -> bool {
        self.writing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Gives up the writer role; wakes the writer task if anything is left to do (queued
    /// while the role was held, or a close).
    fn release(&self) {
        self.writing.store(false, Ordering::Release);
        let work = {
            let q = lock(&self.queue);
            !q.chunks.is_empty() || !q.tail.is_empty() || q.closed
        };
        if work || self.flush_pending.load(Ordering::Acquire) {
            self.wake_writer.notify_one();
        }
    }
}

/// What the writer task needs besides the stream.
pub(crate) struct WriterParams {
    pub heartbeat_interval: Option<Duration>,
    /// A batch that makes no progress for this long means the peer stopped reading.
    pub write_timeout: Option<Duration>,
}

/// Why the writer stopped.
pub(crate) enum WriterExit {
    /// The outbox was closed and everything queued was written.
    Drained,
    /// Writing failed.
    Failed(std::io::Error),
}

/// Writes everything queued until the outbox is closed and drained. Sends a heartbeat
/// whenever the interval passes (`heartbeat` frames one).
pub(crate) async fn run_writer<W: AsyncWrite + Unpin>(
    outbox: &Outbox,
    io: &Mutex<W>,
    params: WriterParams,
    heartbeat: impl Fn(),
) -> WriterExit {
    let mut batch = VecDeque::new();
    let mut ticker = params.heartbeat_interval.map(|every| {
        let mut t = tokio::time::interval_at(Instant::now() + every, every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    loop {
        // Registered before looking at the queue, so a wake-up in between is not lost.
        let mut notified = pin!(outbox.wake_writer.notified());
        notified.as_mut().enable();
        if outbox.try_acquire() {
            let closed = outbox.take(&mut batch);
            let must_flush = outbox.flush_pending.swap(false, Ordering::AcqRel);
            if !batch.is_empty() || must_flush {
                let n: usize = batch.iter().map(Bytes::len).sum();
                if let Err(e) = write_batch(io, &mut batch, params.write_timeout).await {
                    return WriterExit::Failed(e);
                }
                // The whole batch went out: every buffer in it is done with.
                let freed = n + outbox.partly_written.swap(0, Ordering::AcqRel);
                outbox.written(n, freed);
                outbox.release();
                continue;
            }
            outbox.writing.store(false, Ordering::Release);
            if closed {
                break;
            }
        }
        match ticker.as_mut() {
            Some(t) => tokio::select! {
                () = notified => {}
                _ = t.tick() => heartbeat(),
            },
            None => notified.await,
        }
    }
    match poll_fn(|cx| Pin::new(&mut *lock(io)).poll_shutdown(cx)).await {
        Ok(()) => WriterExit::Drained,
        // The peer may already be gone; what mattered was written.
        Err(_) => WriterExit::Drained,
    }
}

/// One write of as much of `batch` as one (vectored) write takes. The slices are built
/// on the stack for each call, so they live in no future.
fn poll_write_once<W: AsyncWrite + Unpin>(
    io: Pin<&mut W>,
    batch: &VecDeque<Bytes>,
    cx: &mut Context<'_>,
) -> Poll<std::io::Result<usize>> {
    if batch.len() == 1 || !io.is_write_vectored() {
        io.poll_write(cx, &batch[0])
    } else {
        let mut slices = [IoSlice::new(&[]); MAX_IOV];
        let count = batch.len().min(MAX_IOV);
        for (slot, buf) in slices.iter_mut().zip(batch.iter()) {
            *slot = IoSlice::new(buf);
        }
        io.poll_write_vectored(cx, &slices[..count])
    }
}

/// Writes every buffer in `batch` with as few syscalls as the stream allows. A single
/// write that makes no progress for `stall` means the peer stopped reading. (The timer
/// is only registered when a write actually blocks.)
async fn write_batch<W: AsyncWrite + Unpin>(
    io: &Mutex<W>,
    batch: &mut VecDeque<Bytes>,
    stall: Option<Duration>,
) -> std::io::Result<()> {
    while !batch.is_empty() {
        // The lock is only held within a poll: whoever holds the writer role (us) is the
        // only one taking it.
        let write = |cx: &mut Context<'_>| poll_write_once(Pin::new(&mut *lock(io)), batch, cx);
        // Most writes complete at once: the clock is read and a timer armed (boxed, as
        // it is rare) only for one that has to wait.
        let n = match poll_fn(|cx| Poll::Ready(write(cx))).await {
            Poll::Ready(n) => n?,
            Poll::Pending => match stall {
                Some(limit) => Box::pin(tokio::time::timeout(limit, poll_fn(write)))
                    .await
                    .map_err(|_| stalled(limit))??,
                None => poll_fn(write).await?,
            },
        };
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        advance(batch, n, &mut 0);
    }
    poll_fn(|cx| Pin::new(&mut *lock(io)).poll_flush(cx)).await
}

fn stalled(limit: Duration) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!(
            "the peer read nothing for {} ms (write timeout)",
            limit.as_millis()
        ),
    )
}

/// Takes `n` written bytes off the front of `batch`; returns the bytes of buffers now
/// done with (a buffer partly written still holds all its memory: its written part waits
/// in `partly_written` until it is done).
fn advance(batch: &mut VecDeque<Bytes>, mut n: usize, partly_written: &mut usize) -> usize {
    let mut freed = 0;
    while n > 0 {
        let Some(front) = batch.front_mut() else {
            break;
        };
        if n >= front.len() {
            n -= front.len();
            freed += front.len() + std::mem::take(partly_written);
            batch.pop_front();
        } else {
            front.advance(n);
            *partly_written += n;
            n = 0;
        }
    }
    freed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budgets() -> Arc<Budgets> {
        Arc::new(Budgets::new(usize::MAX, None))
    }

    #[tokio::test]
    async fn small_messages_are_coalesced_and_large_payloads_are_not_copied() {
        let outbox = Outbox::new(1 << 20, budgets());
        let big = Bytes::from(vec![b'x'; COPY_LIMIT]);
        outbox
            .push_now(Header::SingleResult { id: *b"0001" }, b"1")
            .unwrap();
        outbox
            .push_now(Header::SingleResult { id: *b"0002" }, b"2")
            .unwrap();
        outbox
            .push_when_room(Header::SingleResult { id: *b"0003" }, &big)
            .await
            .unwrap();
        let mut batch = VecDeque::new();
        assert!(!outbox.take(&mut batch));
        assert_eq!(
            batch.len(),
            2,
            "two small frames and a header in one buffer, then the payload"
        );
        assert_eq!(&batch[0][..], b"R0001000000011R0002000000012R000300004000");
        assert_eq!(
            batch[1].as_ptr(),
            big.as_ptr(),
            "large payload queued by reference"
        );
    }

    #[tokio::test]
    async fn writer_drains_then_stops_after_close() {
        let outbox = Outbox::new(1 << 20, budgets());
        outbox
            .push_now(
                Header::ProtocolError {
                    code: crate::wire::ProtocolErrorCode::INVALID,
                },
                b"",
            )
            .unwrap();
        outbox.close();
        assert!(matches!(
            outbox.push_now(Header::SingleResult { id: *b"0001" }, b""),
            Err(PushError::Closed)
        ));
        let out = Mutex::new(Vec::new());
        let params = WriterParams {
            heartbeat_interval: None,
            write_timeout: None,
        };
        let exit = run_writer(&outbox, &out, params, || {}).await;
        assert!(matches!(exit, WriterExit::Drained));
        assert_eq!(*lock(&out), b"f00000002");
    }

    #[test]
    fn a_partly_written_buffer_counts_as_held_until_it_is_done() {
        let mut batch = VecDeque::from([Bytes::from(vec![1; 10]), Bytes::from(vec![2; 20])]);
        let mut partly = 0;
        assert_eq!(
            advance(&mut batch, 15, &mut partly),
            10,
            "the first is done"
        );
        assert_eq!(partly, 5, "the second still holds all its memory");
        assert_eq!(advance(&mut batch, 15, &mut partly), 20);
        assert_eq!(partly, 0);
        assert!(batch.is_empty());
    }

    #[tokio::test]
    async fn producers_wait_for_room() {
        let outbox = std::sync::Arc::new(Outbox::new(10, budgets()));
        let payload = Bytes::from_static(b"0123456789");
        outbox
            .push_when_room(Header::SingleResult { id: *b"0001" }, &payload)
            .await
            .unwrap();
        let o2 = outbox.clone();
        let p2 = payload.clone();
        let waiting = tokio::spawn(async move {
            o2.push_when_room(Header::SingleResult { id: *b"0002" }, &p2)
                .await
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "over the limit: the producer waits");
        let mut batch = VecDeque::new();
        outbox.take(&mut batch);
        let n = batch.iter().map(Bytes::len).sum();
        outbox.written(n, n);
        waiting.await.unwrap().unwrap();
    }
}
