//! Recycled read buffers for large messages.
//!
//! A large message is read into a buffer of its own size, and its payload, sliced from
//! that buffer without copying, lives on in a handler or a caller. Allocating a fresh
//! buffer for each one costs more than it seems: the allocator returns the freed memory
//! to the system and the next buffer faults it in again, page by page (measured: a third
//! of the time of a 64 KiB echo). So outgrown buffers wait here, process-wide and
//! bounded, until every payload sliced from them is dropped, and are then reused.
//! Buffers for small messages never come here.

use std::sync::Mutex;

use bytes::BytesMut;

use super::limits::{
    RECYCLE_MAX_BUFFERS as MAX_BUFFERS, RECYCLE_MAX_BYTES as MAX_BYTES,
    RECYCLE_MIN_SIZE as MIN_SIZE,
};
use crate::sync::lock;

struct Retired {
    buf: BytesMut,
    size: usize,
}

static POOL: Mutex<Vec<Retired>> = Mutex::new(Vec::new());

/// An empty buffer with room for `size` bytes: a retired one whose payloads are all
/// gone, or a new one.
pub(crate) fn take(size: usize) -> BytesMut {
    let mut pool = lock(&POOL);
    if let Some(i) = pool.iter_mut().position(|r| r.buf.try_reclaim(size)) {
        return pool.swap_remove(i).buf;
    }
    drop(pool);
    BytesMut::with_capacity(size)
}

/// Keeps an outgrown buffer (allocated with room for `size` bytes) for reuse, dropping
/// the oldest ones past the bounds.
pub(crate) fn retire(mut buf: BytesMut, size: usize) {
    if !(MIN_SIZE..=MAX_BYTES).contains(&size) {
        return;
    }
    buf.clear();
    let mut pool = lock(&POOL);
    pool.push(Retired { buf, size });
    let mut total: usize = pool.iter().map(|r| r.size).sum();
    while pool.len() > MAX_BUFFERS || total > MAX_BYTES {
        total -= pool.remove(0).size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_is_reused_once_its_payloads_are_dropped() {
        let size = MIN_SIZE * 3 + 17;
        let mut buf = take(size);
        buf.extend_from_slice(&vec![7u8; size]);
        let ptr = buf.as_ptr();
        let payload = buf.split().freeze();
        retire(buf, size);
        // Still in use: a new buffer is allocated.
        let other = take(size);
        assert_ne!(other.as_ptr(), ptr);
        drop(payload);
        let again = take(size);
        assert_eq!(again.as_ptr(), ptr);
        assert!(again.capacity() >= size);
    }
}
