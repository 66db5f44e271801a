//! The read side's memory: the buffer the peer's bytes are read into, how it grows,
//! shrinks and is recycled, and what it costs the budgets.
//!
//! Every allocation of the buffer is charged at its capacity before it is made, by a
//! [`Charge`] that payloads sliced from it share (`charge.rs`): an allocation stays
//! charged until the last slice that keeps it is gone, however long the reader has
//! moved on. A message is charged whole from its header on (what the allocation cannot
//! hold yet is reserved beside it), so that a message once begun is always read to its
//! end and readers never wait on each other's half-read messages; its allocation grows
//! by at most what has arrived, 64 KiB, or the largest message the peer delivered, so
//! that a header alone buys no memory. While the budgets have no room, the reader waits
//! ([`Shortfall`]) and TCP holds the peer back.
//!
//! An idle connection holds no buffer; a busy one reads straight into its own, in reads
//! that grow while they fill what they are offered. Large messages' allocations come
//! from `recycle` and go back there.

use std::{
    mem::MaybeUninit,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, ReadBuf};

use super::{
    budget::Budgets,
    charge::{self, Charge, Detached},
    limits::{RECYCLE_MIN_SIZE, UNRESERVED_READ},
    recycle,
};
use crate::wire::{room_for, Name};

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
    /// `more` bytes held in the budgets, for an allocation of `capacity` bytes and the
    /// rest of the message begun (`needed` bytes); then [`ReadBuffer::allocate`].
    Allocation {
        capacity: usize,
        needed: usize,
        more: usize,
    },
}

pub(super) struct ReadBuffer {
    buf: BytesMut,
    /// Charges the allocation `buf` is in, at the capacity it was made with (`None` while
    /// there is none).
    charge: Option<Arc<Charge>>,
    /// The capacity `buf`'s allocation was made with (what `charge` charges: `buf`'s own
    /// capacity shrinks as messages are split off its front).
    allocated: usize,
    /// What of the message begun the allocation cannot hold yet, held in the budgets
    /// too: a message is charged whole from its header on.
    reserved: usize,
    /// The largest message the peer has delivered in full: room for a message this big is
    /// allocated at once (see `room_for`).
    largest_message: usize,
    /// The allocation came from `recycle` and goes back there.
    recycled: bool,
    /// How much a read offers to take (see `next_read_size`).
    read_size: usize,
    /// A message was read since the last [`quiet`](Self::quiet).
    traded: bool,
}

impl ReadBuffer {
    pub(super) fn new() -> Self {
        Self {
            buf: BytesMut::new(),
            charge: None,
            allocated: 0,
            reserved: 0,
            largest_message: 0,
            recycled: false,
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

    /// The application's traffic came (not only the extension's): the buffer is kept
    /// between messages (see [`quiet`](Self::quiet)).
    pub(super) fn on_traffic(&mut self) {
        self.traded = true;
    }

    /// Hands on a message's payload and name just split off the buffer, charged as
    /// `charge.rs` says.
    #[inline]
    pub(super) fn detach(
        &self,
        payload: Bytes,
        name: Option<&mut Name>,
        name_is_slice: bool,
        budgets: &Arc<Budgets>,
    ) -> Detached<'_> {
        match &self.charge {
            Some(charge) => charge::detach(
                payload,
                name,
                name_is_slice,
                charge,
                self.allocated,
                budgets,
            ),
            // Never: what is split off the buffer is in its allocation, which is charged.
            None => Detached {
                bytes: payload,
                keep: charge::Keep::Nothing,
            },
        }
    }

    /// A message of `size` bytes was decoded.
    #[inline]
    pub(super) fn on_message(&mut self, size: usize) {
        self.largest_message = self.largest_message.max(size);
    }

    /// Hands on a result just split off the buffer for the caller waiting for it (see
    /// `charge::result`).
    #[inline]
    pub(super) fn result(&self, payload: Bytes) -> Bytes {
        match &self.charge {
            Some(charge) => charge::result(payload, charge),
            None => payload,
        }
    }

    /// Makes sure the buffer can hold half a read more, and that the `needed` bytes of
    /// the message begun are charged whole (between messages, that the budgets have room
    /// to read on at all). Returns what to wait for first, if anything.
    #[inline]
    pub(super) fn reserve(&mut self, budgets: &Arc<Budgets>, needed: usize) -> Option<Shortfall> {
        if self.buf.is_empty() {
            self.unreserve(budgets);
            // Between messages: read on only while the budgets have room.
            if budgets.has_room(1) {
                return None;
            }
            // What the budgets count of this buffer is theirs again while reading waits.
            self.release();
            return Some(Shortfall::Room);
        }
        let len = self.buf.len();
        let wanted = needed.max(len + self.read_size / 2);
        if wanted <= self.buf.capacity() {
            self.unreserve(budgets);
            return None;
        }
        self.reserve_slow(budgets, needed, wanted)
    }

    /// The message begun fits the allocation, or none is begun (the reader has just
    /// routed it): nothing is reserved beyond it.
    #[inline]
    pub(super) fn unreserve(&mut self, budgets: &Budgets) {
        if self.reserved > 0 {
            budgets.update(&mut self.reserved, 0);
        }
    }

    fn reserve_slow(
        &mut self,
        budgets: &Arc<Budgets>,
        needed: usize,
        wanted: usize,
    ) -> Option<Shortfall> {
        let len = self.buf.len();
        if self.buf.try_reclaim(wanted - len) {
            // The allocation had room once the messages before it were gone.
            self.unreserve(budgets);
            return None;
        }
        // Grown by at most what has arrived, 64 KiB or the largest message this peer has
        // delivered (a header alone does not buy a large allocation), and a read beyond.
        let capacity = room_for(len, needed, self.largest_message).max(len + self.read_size);
        let held = self.reusable_charge() + self.reserved;
        let more = needed.max(capacity).saturating_sub(held);
        if !budgets.try_hold(more) {
            return Some(Shortfall::Allocation {
                capacity,
                needed,
                more,
            });
        }
        self.allocate(budgets, capacity, needed, more);
        None
    }

    /// What of the current charge a new allocation can take over: all of it when no
    /// payload keeps the current allocation (its charge is the reader's alone).
    fn reusable_charge(&self) -> usize {
        match &self.charge {
            Some(charge) if Arc::strong_count(charge) == 1 => charge.bytes(),
            _ => 0,
        }
    }

    /// Moves what the buffer holds into a new allocation of `capacity` bytes, for a
    /// message of `needed` bytes; the caller holds `more` bytes in the budgets for it,
    /// beyond what the reader holds already (its reservation, and the current charge if
    /// no payload keeps it). Afterwards the allocation is charged at its capacity, and
    /// what of the message does not fit it is reserved.
    pub(super) fn allocate(
        &mut self,
        budgets: &Arc<Budgets>,
        capacity: usize,
        needed: usize,
        more: usize,
    ) {
        // A large message's buffer, which its payload keeps alive past the read, comes
        // from the pool; room for reading small messages is allocated as it is.
        let recycled = needed >= RECYCLE_MIN_SIZE;
        let mut fresh = if recycled {
            recycle::take(capacity)
        } else {
            BytesMut::with_capacity(capacity)
        };
        fresh.extend_from_slice(&self.buf);
        let allocated = fresh.capacity();
        let mut held = more + std::mem::take(&mut self.reserved);
        if let Some(Ok(current)) = self.charge.take().map(Arc::try_unwrap) {
            // No payload keeps the current allocation: its charge is taken over.
            held += current.into_held();
        }
        // Held now: the new allocation at its capacity, and the rest of the message.
        let reserved = needed.saturating_sub(allocated);
        budgets.update(&mut held, allocated + reserved);
        let outgrown = std::mem::replace(&mut self.buf, fresh);
        self.retire(outgrown);
        self.charge = Some(Arc::new(Charge::held(budgets, allocated)));
        self.reserved = reserved;
        self.allocated = allocated;
        self.recycled = recycled;
    }

    /// Hands an outgrown allocation back to `recycle` if it came from there.
    fn retire(&mut self, buf: BytesMut) {
        if std::mem::take(&mut self.recycled) {
            recycle::retire(buf, self.allocated);
        }
    }

    /// Frees the (empty) buffer, and its charge unless payloads keep it.
    fn release(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        self.retire(buf);
        self.charge = None;
        self.allocated = 0;
    }

    /// The connection has been quiet for a while (its timer fired with no message read
    /// since the last time): an empty buffer is freed, unless reading waits (`waiting`).
    pub(super) fn quiet(&mut self, waiting: bool) {
        if !std::mem::take(&mut self.traded) && self.buf.is_empty() && !waiting {
            self.release();
        }
    }

    /// Reading is over: the buffer is freed (a large one goes back to the pool, whose
    /// sweeper returns the memory later), and its charge unless payloads keep it.
    pub(super) fn finish(&mut self, budgets: &Budgets) {
        self.buf.clear();
        self.release();
        self.unreserve(budgets);
    }

    /// Reads what the peer has sent, without holding memory for a quiet connection: a
    /// buffer with a message begun, or with room for half a read, reads directly (see
    /// [`reserve`](Self::reserve)), and so does an empty one once reads fill large offers
    /// (it gets room for a whole read first); an empty one without that room reads
    /// through a chunk on the stack and keeps only what arrived. (Either allocation is
    /// charged at once: one read is what a connection may hold beyond its budget.) An empty buffer is freed when there is
    /// nothing to read, unless it is at most `QUIET_CAPACITY` and the connection has
    /// traded messages (see [`quiet`](Self::quiet)). So an idle connection holds no read
    /// buffer, and a busy one reads straight into its own, in reads of `read_size`.
    /// Inline: it runs twice per request (a read, then one that finds nothing), and out
    /// of line it costs the request path a call it did not have.
    #[inline]
    pub(super) fn poll_read<S: AsyncRead + ?Sized>(
        &mut self,
        io: Pin<&mut S>,
        cx: &mut Context<'_>,
        budgets: &Arc<Budgets>,
    ) -> Poll<std::io::Result<usize>> {
        let size = self.read_size;
        let mut spare = self.buf.capacity() - self.buf.len();
        if self.buf.is_empty() && spare < size / 2 && size > READ_CHUNK {
            // Reads have been filling large offers: room for a whole one, at once.
            self.allocate_for_reading(budgets, size);
            spare = self.buf.capacity();
        }
        if !self.buf.is_empty() || spare >= size / 2 {
            // However large the allocation, a read takes at most `UNRESERVED_READ`.
            let offered = spare.min(UNRESERVED_READ);
            let mut room = bytes::BufMut::limit(&mut self.buf, offered);
            let read = tokio_util::io::poll_read_buf(io, cx, &mut room);
            match read {
                Poll::Ready(Ok(n)) => self.read_size = next_read_size(size, n, offered),
                Poll::Pending if self.buf.is_empty() => self.release(),
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
                if self.allocated > QUIET_CAPACITY || !self.traded {
                    self.release();
                }
                return Poll::Pending;
            }
        };
        if read.len() > self.buf.capacity() && !self.buf.try_reclaim(read.len()) {
            self.allocate_for_reading(budgets, read.len().max(QUIET_CAPACITY));
        }
        self.buf.extend_from_slice(read);
        Poll::Ready(Ok(read.len()))
    }

    /// An allocation of `capacity` bytes for the empty buffer to read into: charged
    /// whatever the budgets say (reading checked that they had room), since one read is
    /// what a connection may hold beyond them.
    fn allocate_for_reading(&mut self, budgets: &Arc<Budgets>, capacity: usize) {
        let more = capacity.saturating_sub(self.reusable_charge());
        budgets.hold(more);
        self.allocate(budgets, capacity, 0, more);
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
        assert_eq!(UNRESERVED_READ, 64 << 10, "never beyond 64 KiB a read");
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

    /// A buffer holding `bytes`, as the stack-chunk read leaves it.
    fn holding(budgets: &Arc<Budgets>, bytes: &[u8]) -> ReadBuffer {
        let mut buf = ReadBuffer::new();
        budgets.hold(bytes.len());
        buf.allocate(budgets, bytes.len(), 0, bytes.len());
        buf.bytes().extend_from_slice(bytes);
        buf
    }

    #[test]
    fn a_message_begun_is_charged_whole_and_its_allocation_at_its_capacity() {
        let budgets = Arc::new(Budgets::new(1 << 30, None));
        let mut buf = holding(&budgets, b"r0001005bytes");
        assert_eq!(budgets.held(), 13);
        // A header declaring 1 MiB: 64 KiB more are allocated, all of it is charged.
        let needed = 13 + (1 << 20);
        assert!(buf.reserve(&budgets, needed).is_none());
        assert!(buf.allocated < 128 * 1024, "a header alone buys no more");
        assert_eq!(
            budgets.held(),
            needed,
            "the whole message, from its header on"
        );
        // Once it fits, only the allocation stays charged.
        buf.bytes().clear();
        assert!(buf.reserve(&budgets, 1).is_none());
        assert_eq!(budgets.held(), buf.allocated);
        buf.finish(&budgets);
        assert_eq!(budgets.held(), 0);
    }

    #[test]
    fn an_allocation_kept_by_a_payload_stays_charged_after_the_reader_moves_on() {
        let budgets = Arc::new(Budgets::new(1 << 30, None));
        let mut buf = holding(&budgets, &[b'x'; 100]);
        let payload = buf.bytes().split_to(60).freeze();
        let kept = buf.detach(payload, None, false, &budgets).keep.into_owned();
        // The reader needs more room than this allocation has: a new one.
        assert!(buf.reserve(&budgets, 40 + 20_000).is_none());
        let first = 100;
        assert_eq!(budgets.held(), first + buf.allocated, "both allocations");
        buf.finish(&budgets);
        assert_eq!(budgets.held(), first, "the payload's, until it is done");
        drop(kept);
        assert_eq!(budgets.held(), 0);
    }

    #[test]
    fn between_messages_reading_waits_while_the_budget_is_spent() {
        let budgets = Arc::new(Budgets::new(1000, None));
        let mut buf = holding(&budgets, &[b'x'; 600]);
        budgets.hold(400);
        buf.bytes().clear();
        assert!(matches!(buf.reserve(&budgets, 1), Some(Shortfall::Room)));
        assert_eq!(budgets.held(), 400, "the idle buffer was let go");
        budgets.release(400);
        assert!(buf.reserve(&budgets, 1).is_none());
    }
}
