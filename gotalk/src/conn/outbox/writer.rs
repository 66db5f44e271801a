//! The writer: drains the [`Outbox`] into the stream for the connection's task, the only
//! one that writes, so bytes leave in the order they were queued.

use std::{
    collections::VecDeque,
    io::IoSlice,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncWrite;

use super::{Outbox, KEEP_CAPACITY, MAX_IOV};
use crate::sync::lock;

/// What the writer did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::conn) enum Written {
    /// Everything queued was written; more wakes the connection's task.
    Idle,
    /// The stream takes no more now; it wakes the task when it does.
    Blocked,
    /// The outbox was closed, everything queued was written and the stream shut down.
    Finished,
}

/// Drains an [`Outbox`] into a stream. It belongs to the connection's task, the only one
/// that writes, so bytes leave in the order they were queued.
#[derive(Default)]
pub(in crate::conn) struct Writer {
    /// Buffers taken from the queue and not yet written (the front one maybe in part);
    /// `tail` follows them.
    batch: VecDeque<Bytes>,
    /// Bytes written of the front buffer of `batch`: its memory is only freed whole, so
    /// they stay counted until it is.
    partly_written: usize,
    /// Small messages taken from the queue by swapping buffers, and how much of them
    /// is written.
    tail: BytesMut,
    tail_written: usize,
    /// Bytes were written but the stream must still be flushed (e.g. TLS).
    must_flush: bool,
    /// Bytes were written since [`take_progress`](Self::take_progress) last looked.
    progressed: bool,
    /// The outbox was closed when the writer last took from it: nothing more comes.
    closed: bool,
}

impl Writer {
    /// Writes what is queued as far as the stream takes it now.
    pub(in crate::conn) fn poll_write<S: AsyncWrite + ?Sized>(
        &mut self,
        outbox: &Outbox,
        mut io: Pin<&mut S>,
        cx: &mut Context<'_>,
    ) -> std::io::Result<Written> {
        // One take per call: anything queued after it wakes the task, which calls again.
        let mut took = false;
        loop {
            if !took && self.tail_written == self.tail.len() {
                self.take(outbox);
                took = true;
            }
            while !self.batch.is_empty() || self.tail_written < self.tail.len() {
                match self.poll_write_once(io.as_mut(), cx) {
                    Poll::Ready(Ok(0)) => return Err(std::io::ErrorKind::WriteZero.into()),
                    Poll::Ready(Ok(n)) => {
                        let freed = self.advance(n);
                        outbox.written(n, freed);
                        self.must_flush = true;
                        self.progressed = true;
                    }
                    Poll::Ready(Err(e)) => return Err(e),
                    Poll::Pending => return Ok(Written::Blocked),
                }
            }
            if !took {
                continue;
            }
            if self.must_flush {
                match io.as_mut().poll_flush(cx) {
                    Poll::Ready(flushed) => flushed?,
                    Poll::Pending => return Ok(Written::Blocked),
                }
                self.must_flush = false;
            }
            if !self.closed {
                return Ok(Written::Idle);
            }
            // The peer may already be gone; what mattered was written.
            return Ok(match io.poll_shutdown(cx) {
                Poll::Ready(_) => Written::Finished,
                Poll::Pending => Written::Blocked,
            });
        }
    }

    /// Takes everything queued (the writer has written its own buffer).
    fn take(&mut self, outbox: &Outbox) {
        self.tail.clear();
        self.tail_written = 0;
        if self.tail.capacity() > KEEP_CAPACITY {
            self.tail = BytesMut::new();
        }
        let mut q = lock(&outbox.queue);
        if q.chunks.is_empty() {
            // Small messages only (the usual case): the buffers trade places, no copy.
            std::mem::swap(&mut q.tail, &mut self.tail);
        } else {
            self.batch.append(&mut q.chunks);
            if !q.tail.is_empty() {
                self.batch.push_back(q.tail.split().freeze());
            }
        }
        self.closed = q.closed;
    }

    /// One write of as much as one (vectored) write takes. The slices are built on the
    /// stack for each call, so they live in no future.
    fn poll_write_once<S: AsyncWrite + ?Sized>(
        &self,
        io: Pin<&mut S>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<usize>> {
        let tail = &self.tail[self.tail_written..];
        let Some(front) = self.batch.front() else {
            return io.poll_write(cx, tail);
        };
        if (self.batch.len() == 1 && tail.is_empty()) || !io.is_write_vectored() {
            return io.poll_write(cx, front);
        }
        let mut slices = [IoSlice::new(&[]); MAX_IOV];
        let buffers = self.batch.iter().map(|b| &b[..]).chain([tail]);
        let mut count = 0;
        for (slot, buf) in slices.iter_mut().zip(buffers.filter(|b| !b.is_empty())) {
            *slot = IoSlice::new(buf);
            count += 1;
        }
        io.poll_write_vectored(cx, &slices[..count])
    }

    /// Takes `n` written bytes off the front; returns the bytes of buffers now done with
    /// (a buffer of `batch` partly written still holds all its memory: its written part
    /// waits in `partly_written` until it is done; the tail's capacity is the writer's
    /// own, so its written bytes are done with at once).
    fn advance(&mut self, mut n: usize) -> usize {
        let mut freed = 0;
        while n > 0 {
            let Some(front) = self.batch.front_mut() else {
                self.tail_written += n;
                return freed + n;
            };
            if n >= front.len() {
                n -= front.len();
                freed += front.len() + std::mem::take(&mut self.partly_written);
                self.batch.pop_front();
            } else {
                front.advance(n);
                self.partly_written += n;
                n = 0;
            }
        }
        freed
    }

    /// Whether bytes were written since the last call.
    pub(in crate::conn) fn take_progress(&mut self) -> bool {
        std::mem::take(&mut self.progressed)
    }

    /// Frees the writer's own buffer if it is large, or if the connection is idle.
    pub(in crate::conn) fn shrink(&mut self, idle: bool) {
        if self.tail_written == self.tail.len() && (idle || self.tail.capacity() > KEEP_CAPACITY) {
            self.tail = BytesMut::new();
            self.tail_written = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    };

    use super::*;
    use crate::{
        conn::{
            budget::Budgets,
            outbox::{PushError, COPY_LIMIT},
        },
        wire::Header,
    };

    fn budgets() -> Arc<Budgets> {
        Arc::new(Budgets::new(usize::MAX, None))
    }

    fn noop() -> Context<'static> {
        Context::from_waker(futures_util::task::noop_waker_ref())
    }

    /// A stream that takes at most `room` bytes, then blocks; it remembers the writes.
    #[derive(Default)]
    struct Sink {
        written: Vec<u8>,
        writes: usize,
        room: usize,
        shut_down: bool,
    }

    impl AsyncWrite for Sink {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            let n = buf.len().min(self.room);
            if n == 0 {
                return Poll::Pending;
            }
            self.room -= n;
            self.writes += 1;
            self.written.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            self.shut_down = true;
            Poll::Ready(Ok(()))
        }
    }

    fn write(writer: &mut Writer, outbox: &Outbox, sink: &mut Sink) -> Written {
        writer
            .poll_write(outbox, Pin::new(sink), &mut noop())
            .expect("the sink does not fail")
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
        let mut writer = Writer::default();
        writer.take(&outbox);
        assert!(!writer.closed);
        assert_eq!(
            writer.batch.len(),
            2,
            "two small frames and a header in one buffer, then the payload"
        );
        assert_eq!(
            &writer.batch[0][..],
            b"R0001000000011R0002000000012R000300004000"
        );
        assert_eq!(
            writer.batch[1].as_ptr(),
            big.as_ptr(),
            "large payload queued by reference"
        );
    }

    #[test]
    fn a_full_buffer_goes_on_as_it_is_and_framing_continues_in_a_fresh_one() {
        let outbox = Outbox::new(1 << 20, budgets());
        let payload = Bytes::from(vec![b'p'; 1000]);
        let mut expected = Vec::new();
        for n in 0..200u32 {
            let id = *format!("{n:04}").as_bytes().first_chunk().unwrap();
            let header = Header::SingleResult { id };
            assert!(outbox.try_push(header, &payload).unwrap());
            expected.extend_from_slice(format!("R{n:04}000003e8").as_bytes());
            expected.extend_from_slice(&payload);
        }
        let q = lock(&outbox.queue);
        assert!(q.chunks.len() >= 2, "full buffers queued as they are");
        assert!(
            q.chunks.iter().all(|c| c.len() >= COPY_LIMIT),
            "each had framed at least {COPY_LIMIT} bytes"
        );
        assert!(
            q.tail.capacity() <= KEEP_CAPACITY,
            "none grew past {KEEP_CAPACITY}"
        );
        drop(q);
        let mut writer = Writer::default();
        let mut sink = Sink {
            room: usize::MAX,
            ..Sink::default()
        };
        assert_eq!(write(&mut writer, &outbox, &mut sink), Written::Idle);
        assert_eq!(sink.written, expected, "every message, in order");
        assert_eq!(outbox.queued(), 0);
    }

    #[test]
    fn small_messages_go_out_in_one_write_from_the_writers_own_buffer() {
        let outbox = Outbox::new(1 << 20, budgets());
        let mut writer = Writer::default();
        let mut sink = Sink {
            room: usize::MAX,
            ..Sink::default()
        };
        for id in [*b"0001", *b"0002"] {
            outbox.push_now(Header::SingleResult { id }, b"x").unwrap();
        }
        assert_eq!(write(&mut writer, &outbox, &mut sink), Written::Idle);
        assert_eq!(sink.writes, 1);
        assert_eq!(sink.written, b"R000100000001xR000200000001x");
        assert_eq!(outbox.queued(), 0);
        // The queue's buffer and the writer's trade places on every write: after the
        // first two, messages are framed into one of the same two buffers every time,
        // with no allocation either way.
        let mut buffers = std::collections::HashSet::new();
        for round in 0..6 {
            outbox
                .push_now(Header::SingleResult { id: *b"0003" }, b"y")
                .unwrap();
            if round >= 2 {
                buffers.insert(lock(&outbox.queue).tail.as_ptr());
            }
            assert_eq!(write(&mut writer, &outbox, &mut sink), Written::Idle);
        }
        assert_eq!(buffers.len(), 2);
        assert_eq!(sink.writes, 7);
    }

    #[test]
    fn a_burst_of_messages_wakes_the_task_once_and_one_after_its_next_poll_wakes_it_again() {
        use crate::wire::RequestId;
        struct Wakes(AtomicUsize);
        impl std::task::Wake for Wakes {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let wakes = Arc::new(Wakes(AtomicUsize::new(0)));
        let waker = std::task::Waker::from(wakes.clone());
        let woken = || wakes.0.load(Ordering::SeqCst);
        let outbox = Outbox::new(1 << 20, budgets());
        let mut writer = Writer::default();
        let mut sink = Sink {
            room: usize::MAX,
            ..Sink::default()
        };
        let push = |id| {
            let payload = Bytes::from_static(b"x");
            assert!(outbox
                .try_push(Header::SingleResult { id }, &payload)
                .unwrap());
        };
        let mut poll = |pushes_meanwhile: &[RequestId]| {
            outbox.task().begin_poll(&Context::from_waker(&waker));
            // Queued while the task is in a poll that writes next: nobody to wake.
            for &id in pushes_meanwhile {
                push(id);
            }
            outbox.task().writes_next();
            write(&mut writer, &outbox, &mut sink)
        };
        assert_eq!(poll(&[*b"0001"]), Written::Idle);
        assert_eq!(woken(), 0);
        // From another task, after the poll: the first wakes it, the rest find it woken.
        for id in [*b"0002", *b"0003", *b"0004"] {
            push(id);
        }
        assert_eq!(woken(), 1);
        assert_eq!(poll(&[]), Written::Idle);
        // Its next poll began: a message after it wakes the task again.
        push(*b"0005");
        assert_eq!(woken(), 2);
        assert_eq!(poll(&[]), Written::Idle);
        assert_eq!(
            sink.written,
            b"R000100000001xR000200000001xR000300000001xR000400000001xR000500000001x"
        );
        assert_eq!(woken(), 2);
    }

    #[test]
    fn writer_drains_then_shuts_down_after_close() {
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
        let mut sink = Sink {
            room: 4,
            ..Sink::default()
        };
        let mut writer = Writer::default();
        assert_eq!(write(&mut writer, &outbox, &mut sink), Written::Blocked);
        assert!(writer.take_progress());
        assert!(!sink.shut_down);
        sink.room = usize::MAX;
        assert_eq!(write(&mut writer, &outbox, &mut sink), Written::Finished);
        assert_eq!(sink.written, b"f00000002");
        assert!(sink.shut_down);
    }

    #[test]
    fn a_partly_written_buffer_counts_as_held_until_it_is_done() {
        let mut writer = Writer {
            batch: VecDeque::from([Bytes::from(vec![1; 10]), Bytes::from(vec![2; 20])]),
            tail: BytesMut::from(&[3u8; 5][..]),
            ..Writer::default()
        };
        assert_eq!(writer.advance(15), 10, "the first is done");
        assert_eq!(
            writer.partly_written, 5,
            "the second still holds all its memory"
        );
        assert_eq!(
            writer.advance(17),
            22,
            "the second is done, and 2 of the tail"
        );
        assert_eq!(writer.partly_written, 0);
        assert!(writer.batch.is_empty());
        assert_eq!(writer.tail_written, 2);
    }

    #[tokio::test]
    async fn producers_wait_for_room() {
        let outbox = Arc::new(Outbox::new(10, budgets()));
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
        let mut sink = Sink {
            room: usize::MAX,
            ..Sink::default()
        };
        assert_eq!(
            write(&mut Writer::default(), &outbox, &mut sink),
            Written::Idle
        );
        waiting.await.unwrap().unwrap();
    }
}
