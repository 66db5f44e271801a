//! The read side's memory: the buffer the peer's bytes are read into, how it grows,
//! shrinks and is recycled, and the budget reserved for the message being read in it
//! (see `budget.rs`).
//!
//! An idle connection holds no buffer; a busy one reads straight into its own, in reads
//! that grow while they fill what they are offered. A message larger than the buffer gets
//! room for all of it at once, from `recycle` when it is large. Before reading on, the
//! message begun is reserved whole against the budgets; while they have no room the
//! reader waits ([`Shortfall`]), holding only the bytes of that message.

use std::{
    mem::MaybeUninit,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncRead, ReadBuf};

use super::{
    budget::Budgets,
    limits::{RECYCLE_MIN_SIZE, UNRESERVED_READ},
    recycle,
};
use crate::wire;

/// How much to read at least at a time.
const READ_CHUNK: usize = 8 * 1024;
/// A read buffer this small is kept between messages while the connection trades them
/// (so one that trades small messages one at a time does not allocate one per message);
/// a larger one is freed as soon as a read finds nothing to read, and this one once the
/// connection has been quiet for a while (see [`ReadBuffer::quiet`]).
const QUIET_CAPACITY: usize = 512;

/// What reading must wait for before it reads on (see [`ReadBuffer::reserve`]).
pub(super) enum Shortfall {
    /// Room in the budgets for anything at all (nothing is begun).
    Room,
    /// `more` bytes held in the budgets, to reserve the `needed` bytes of the message
    /// begun; then [`ReadBuffer::reserved`].
    Hold { more: usize, needed: usize },
}

pub(super) struct ReadBuffer {
    buf: BytesMut,
    /// The size the current buffer was allocated with, if it came from `recycle`.
    recycled_size: usize,
    /// The budget reserved for the message being read: all of it, from its header on;
    /// nothing between messages.
    held: usize,
    /// The largest message the peer has delivered in full: room for a message this big is
    /// reserved at once (see `wire::room_for`).
    largest_message: usize,
    /// How much a read offers to take (see `next_read_size`).
    read_size: usize,
    /// A message was read since the last [`quiet`](Self::quiet).
    traded: bool,
}

impl ReadBuffer {
    pub(super) fn new() -> Self {
        Self {
            buf: BytesMut::new(),
            recycled_size: 0,
            held: 0,
            largest_message: 0,
            read_size: READ_CHUNK,
            traded: false,
        }
    }

    /// The bytes read and not yet decoded, for the decoder to split messages off.
    pub(super) fn bytes(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Whether bytes wait to be decoded.
    pub(super) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// How much a read offers to take now: what one payload slice can keep alive of the
    /// buffer it was read into, at the least.
    pub(super) fn read_size(&self) -> usize {
        self.read_size
    }

    /// A message of `size` bytes was decoded.
    #[inline]
    pub(super) fn on_message(&mut self, size: usize) {
        self.largest_message = self.largest_message.max(size);
    }

    /// The application's traffic came (not only the extension's): the buffer is kept
    /// between messages (see [`quiet`](Self::quiet)).
    pub(super) fn on_traffic(&mut self) {
        self.traded = true;
    }

    /// Between messages, read on only while this connection (and its server) may hold
    /// more; in a message, reserve all of it first. Waiting reads nothing, and TCP holds
    /// the peer back until bytes are released. Returns what to wait for, if anything.
    #[inline]
    pub(super) fn reserve(
        &mut self,
        budgets: &Budgets,
        decoded_any: bool,
        needed: usize,
    ) -> Option<Shortfall> {
        // Between messages, nothing held, room: the common case, inline.
        if self.buf.is_empty() && self.held == 0 && budgets.has_room(1) {
            return None;
        }
        self.reserve_slow(budgets, decoded_any, needed)
    }

    fn reserve_slow(
        &mut self,
        budgets: &Budgets,
        decoded_any: bool,
        needed: usize,
    ) -> Option<Shortfall> {
        if decoded_any || self.buf.is_empty() {
            // The reserved message was read whole (or none was begun): what follows
            // needs a reservation of its own.
            budgets.update(&mut self.held, 0);
        }
        if self.buf.is_empty() {
            if budgets.has_room(1) {
                return None;
            }
            self.shrink();
            return Some(Shortfall::Room);
        }
        if needed <= self.held {
            budgets.update(&mut self.held, needed);
            return None;
        }
        if budgets.try_hold(needed - self.held) {
            self.held = needed;
            return None;
        }
        let more = needed - self.held;
        self.shrink();
        Some(Shortfall::Hold { more, needed })
    }

    /// The `needed` bytes of the message begun are held now (a [`Shortfall::Hold`] is
    /// over): room is made for all of it.
    pub(super) fn reserved(&mut self, needed: usize) {
        self.held = needed;
        self.make_room(needed);
    }

    /// Makes room for a message of `needed` bytes whose start is in the buffer (see
    /// `wire::reserve_for`). A large one goes into a recycled buffer (see `recycle`), and
    /// the outgrown buffer is retired there.
    #[inline]
    pub(super) fn make_room(&mut self, needed: usize) {
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
        recycle::retire(outgrown, std::mem::replace(&mut self.recycled_size, room));
    }

    /// Before waiting for budget: keeps only the bytes of the message begun (at most a
    /// read beyond its reservation), not the room of a large buffer, which is memory the
    /// budgets do not count while nothing is reserved.
    fn shrink(&mut self) {
        if self.buf.capacity() <= UNRESERVED_READ {
            return;
        }
        let begun = BytesMut::from(&self.buf[..]);
        let outgrown = std::mem::replace(&mut self.buf, begun);
        recycle::retire(outgrown, std::mem::take(&mut self.recycled_size));
    }

    /// Frees the (empty) buffer, or hands it back to `recycle` if it came from there.
    fn release(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        recycle::retire(buf, std::mem::take(&mut self.recycled_size));
    }

    /// The connection has been quiet for a while (its timer fired with no message read
    /// since the last time): an empty buffer is freed, unless reading waits (`waiting`).
    pub(super) fn quiet(&mut self, waiting: bool) {
        if !std::mem::take(&mut self.traded) && self.buf.is_empty() && !waiting {
            self.release();
        }
    }

    /// Reading is over: the buffer is freed (a large one goes back to the pool, whose
    /// sweeper returns the memory later) and its reservation released.
    pub(super) fn finish(&mut self, budgets: &Budgets) {
        self.buf.clear();
        self.release();
        budgets.update(&mut self.held, 0);
    }

    /// Reads what the peer has sent, without holding memory for a quiet connection: an
    /// empty buffer with room for a whole chunk reads directly, and a small or absent one
    /// reads through a chunk on the stack and keeps only what arrived; either is freed
    /// when there is nothing to read, unless it is at most `QUIET_CAPACITY` and the
    /// connection has traded messages (see [`quiet`](Self::quiet)). So an idle connection
    /// holds no read buffer, a busy one reads straight into its own, in reads of
    /// `read_size`. Inline: it runs twice per request (a read, then one that finds
    /// nothing), and out of line it costs the request path a call it did not have.
    #[inline]
    pub(super) fn poll_read<S: AsyncRead + ?Sized>(
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
            let allowed = self.held.saturating_sub(buf.len()).max(UNRESERVED_READ);
            let offered = (buf.capacity() - buf.len()).min(allowed);
            let read = tokio_util::io::poll_read_buf(io, cx, &mut (&mut *buf).limit(allowed));
            match read {
                Poll::Ready(Ok(n)) => self.read_size = next_read_size(size, n, offered),
                Poll::Pending if buf.is_empty() => self.release(),
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
                    self.release();
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
/// that a batch of large messages takes a few system calls rather than many. One that
/// took less than a quarter halves it again, down to `READ_CHUNK`.
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

    #[test]
    fn a_message_begun_is_reserved_whole_and_released_once_read() {
        let budgets = Budgets::new(100, None);
        let mut buf = ReadBuffer::new();
        assert!(buf.reserve(&budgets, false, 10).is_none(), "nothing begun");
        buf.bytes().extend_from_slice(b"0123");
        assert!(buf.reserve(&budgets, false, 60).is_none());
        assert_eq!(budgets.held(), 60, "all of the message, from its header on");
        match buf.reserve(&budgets, false, 150) {
            Some(Shortfall::Hold { more, needed }) => assert_eq!((more, needed), (90, 150)),
            _ => panic!("more than the budget: reading waits"),
        }
        assert_eq!(
            budgets.held(),
            60,
            "a reservation that failed holds nothing more"
        );
        buf.bytes().clear();
        assert!(buf.reserve(&budgets, true, 1).is_none());
        assert_eq!(budgets.held(), 0, "read whole: released");
        buf.finish(&budgets);
    }
}
