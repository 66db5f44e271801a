//! Recycled read buffers for large messages.
//!
//! A large message is read into a buffer of its own size, and its payload, sliced from
//! that buffer without copying, lives on in a handler or a caller. Allocating a fresh
//! buffer for each one costs more than it seems: the allocator returns the freed memory
//! to the system and the next buffer faults it in again, page by page, which dominates an
//! echo of large messages (BENCHMARKS.md). So outgrown buffers wait here, process-wide and
//! bounded, until every payload sliced from them is dropped, and are then reused.
//! Buffers for small messages never come here. A buffer not reused within
//! `RECYCLE_IDLE` is freed (a task sweeps the pool while it holds any), so a burst of
//! large messages, or an attack, leaves no memory behind once it is over.

use std::time::Instant;

use bytes::BytesMut;

use super::{
    limits::{
        RECYCLE_IDLE, RECYCLE_MAX_BUFFERS as MAX_BUFFERS, RECYCLE_MAX_BYTES as MAX_BYTES,
        RECYCLE_MIN_SIZE as MIN_SIZE,
    },
    trim,
};
use crate::sync::{lock, Mutex};

struct Retired {
    buf: BytesMut,
    size: usize,
    since: Instant,
}

#[derive(Default)]
struct Pool {
    retired: Vec<Retired>,
    /// Whether a sweeper task runs.
    sweeping: bool,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    retired: Vec::new(),
    sweeping: false,
});

/// An empty buffer with room for `size` bytes: a retired one whose payloads are all
/// gone, or a new one.
pub(super) fn take(size: usize) -> BytesMut {
    let mut pool = lock(&POOL);
    if let Some(i) = pool
        .retired
        .iter_mut()
        .position(|r| r.buf.try_reclaim(size))
    {
        return pool.retired.swap_remove(i).buf;
    }
    drop(pool);
    BytesMut::with_capacity(size)
}

/// Keeps an outgrown buffer (allocated with room for `size` bytes) for reuse, dropping
/// the oldest ones past the bounds.
pub(super) fn retire(mut buf: BytesMut, size: usize) {
    if !(MIN_SIZE..=MAX_BYTES).contains(&size) {
        return;
    }
    buf.clear();
    let mut pool = lock(&POOL);
    pool.retired.push(Retired {
        buf,
        size,
        since: Instant::now(),
    });
    let mut total: usize = pool.retired.iter().map(|r| r.size).sum();
    while pool.retired.len() > MAX_BUFFERS || total > MAX_BYTES {
        total -= pool.retired.remove(0).size;
    }
    if !pool.sweeping {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            pool.sweeping = true;
            runtime.spawn(sweep());
        }
    }
}

/// Frees the buffers nobody reused for `RECYCLE_IDLE`, until the pool is empty.
async fn sweep() {
    /// Clears `sweeping` however the task ends (its runtime may shut down), so the next
    /// `retire` starts another.
    struct Sweeping;
    impl Drop for Sweeping {
        fn drop(&mut self) {
            lock(&POOL).sweeping = false;
        }
    }
    let _sweeping = Sweeping;
    loop {
        tokio::time::sleep(RECYCLE_IDLE).await;
        let mut pool = lock(&POOL);
        let before = pool.retired.len();
        pool.retired.retain(|r| r.since.elapsed() < RECYCLE_IDLE);
        let (freed, empty) = (pool.retired.len() < before, pool.retired.is_empty());
        drop(pool);
        if freed {
            trim::return_freed_memory();
        }
        if empty {
            return;
        }
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

#[cfg(test)]
mod sweep_tests {
    use super::*;

    #[tokio::test]
    async fn buffers_nobody_reuses_are_freed() {
        let size = MIN_SIZE * 5 + 3;
        retire(BytesMut::with_capacity(size), size);
        assert!(lock(&POOL).retired.iter().any(|r| r.size == size));
        tokio::time::sleep(RECYCLE_IDLE * 5 / 2).await;
        assert!(
            !lock(&POOL).retired.iter().any(|r| r.size == size),
            "freed after {RECYCLE_IDLE:?} unused"
        );
    }
}
