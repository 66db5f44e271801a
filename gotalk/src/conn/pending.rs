//! Our outstanding requests: who waits for the result with which request ID.

use std::{
    collections::HashMap,
    hash::{BuildHasherDefault, Hasher},
    sync::Mutex,
};

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, oneshot};

use crate::{wire::RequestId, Error};

use super::lock;

/// Request IDs are four printable characters (`0000`, `0001`, … `____`) so that they read
/// well in traces; 64⁴ ≈ 16.7 M of them before the counter wraps.
const ID_ALPHABET: &[u8; 64] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_";

/// The numeric key of a request ID.
pub(crate) fn key(id: RequestId) -> u32 {
    u32::from_be_bytes(id)
}

fn id_for(counter: u32) -> RequestId {
    let digit = |shift: u32| ID_ALPHABET[((counter >> shift) & 63) as usize];
    [digit(18), digit(12), digit(6), digit(0)]
}

/// Who waits for a result.
pub(crate) enum Waiter {
    /// A single-result caller. If the peer answers with a stream result anyway, its parts
    /// are gathered in `parts` and delivered together when the stream ends.
    Single {
        tx: oneshot::Sender<Result<Bytes, Error>>,
        parts: Option<BytesMut>,
    },
    /// A caller reading results as a stream (a single result is one item).
    Stream {
        tx: mpsc::UnboundedSender<Result<Bytes, Error>>,
    },
}

/// A cheap hash for request-ID keys (the map is per connection and the keys are ours).
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

pub(crate) type IdMap<V> = HashMap<u32, V, BuildHasherDefault<IdHasher>>;

#[derive(Default)]
pub(crate) struct Pending {
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    waiters: IdMap<Waiter>,
    next: u32,
    /// Set once the connection closed: later requests fail at once with it.
    closed: Option<Error>,
}

/// What a result message means for a waiter.
pub(crate) enum Outcome {
    /// `R`: the one and only result.
    Result(Bytes),
    /// `S` with a payload.
    Part(Bytes),
    /// `S` without one: the stream of results is complete.
    End,
    /// `E` or `e`.
    Failed(Error),
}

impl Pending {
    /// Registers a waiter under a fresh request ID.
    pub(crate) fn register(&self, waiter: Waiter) -> Result<RequestId, Error> {
        let mut table = lock(&self.table);
        if let Some(e) = &table.closed {
            return Err(e.clone());
        }
        loop {
            let id = id_for(table.next);
            table.next = table.next.wrapping_add(1) & 0x00ff_ffff;
            if let std::collections::hash_map::Entry::Vacant(slot) = table.waiters.entry(key(id)) {
                slot.insert(waiter);
                return Ok(id);
            }
            // After a wrap the ID may still be outstanding: take the next one.
        }
    }

    /// Forgets a waiter (its caller gave up). Returns whether it was still waiting.
    pub(crate) fn remove(&self, id: RequestId) -> bool {
        lock(&self.table).waiters.remove(&key(id)).is_some()
    }

    /// Delivers a result message. Returns `false` if nobody waits for this ID (a caller
    /// that gave up, or a peer answering a request we never sent).
    pub(crate) fn deliver(&self, id: RequestId, outcome: Outcome) -> bool {
        let mut table = lock(&self.table);
        let k = key(id);
        let Some(waiter) = table.waiters.get_mut(&k) else {
            return false;
        };
        match (waiter, outcome) {
            (Waiter::Single { parts, .. }, Outcome::Part(bytes)) => {
                parts
                    .get_or_insert_with(BytesMut::new)
                    .extend_from_slice(&bytes);
            }
            (Waiter::Stream { tx }, Outcome::Part(bytes)) => {
                if tx.send(Ok(bytes)).is_err() {
                    table.waiters.remove(&k);
                }
            }
            (_, outcome) => {
                let Some(waiter) = table.waiters.remove(&k) else {
                    return false;
                };
                drop(table);
                finish(waiter, outcome);
            }
        }
        true
    }

    /// Fails every waiter with `error`; later registrations fail with it too.
    pub(crate) fn close(&self, error: Error) {
        let waiters = {
            let mut table = lock(&self.table);
            table.closed = Some(error.clone());
            std::mem::take(&mut table.waiters)
        };
        for (_, waiter) in waiters {
            finish(waiter, Outcome::Failed(error.clone()));
        }
    }

    pub(crate) fn len(&self) -> usize {
        lock(&self.table).waiters.len()
    }
}

fn finish(waiter: Waiter, outcome: Outcome) {
    match waiter {
        Waiter::Single { tx, parts } => {
            let result = match outcome {
                Outcome::Result(bytes) => Ok(bytes),
                Outcome::End | Outcome::Part(_) => {
                    Ok(parts.map(BytesMut::freeze).unwrap_or_default())
                }
                Outcome::Failed(e) => Err(e),
            };
            let _ = tx.send(result);
        }
        Waiter::Stream { tx } => match outcome {
            Outcome::Result(bytes) | Outcome::Part(bytes) => {
                let _ = tx.send(Ok(bytes));
            }
            Outcome::End => {}
            Outcome::Failed(e) => {
                let _ = tx.send(Err(e));
            }
        },
    }
}

/// Removes a waiter when its caller stops waiting (a timeout, a dropped future), so that
/// cancelled calls leave nothing behind.
pub(crate) struct PendingGuard<'a> {
    pending: &'a Pending,
    id: RequestId,
    armed: bool,
}

impl<'a> PendingGuard<'a> {
    pub(crate) fn new(pending: &'a Pending, id: RequestId) -> Self {
        Self {
            pending,
            id,
            armed: true,
        }
    }

    /// The result arrived: the reader already removed the waiter.
    pub(crate) fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.pending.remove(self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_printable_and_distinct() {
        assert_eq!(&id_for(0), b"0000");
        assert_eq!(&id_for(1), b"0001");
        assert_eq!(&id_for(63), b"000_");
        assert_eq!(&id_for(64), b"0010");
        assert_eq!(&id_for(0x00ff_ffff), b"____");
    }

    #[test]
    fn an_outstanding_id_is_skipped_after_wrap() {
        let pending = Pending::default();
        let (tx, _rx) = oneshot::channel();
        let first = pending
            .register(Waiter::Single { tx, parts: None })
            .unwrap();
        lock(&pending.table).next = 0;
        let (tx, _rx) = oneshot::channel();
        let second = pending
            .register(Waiter::Single { tx, parts: None })
            .unwrap();
        assert_eq!(first, *b"0000");
        assert_eq!(second, *b"0001");
    }

    #[test]
    fn a_stream_result_to_a_single_request_is_gathered() {
        let pending = Pending::default();
        let (tx, mut rx) = oneshot::channel();
        let id = pending
            .register(Waiter::Single { tx, parts: None })
            .unwrap();
        assert!(pending.deliver(id, Outcome::Part(Bytes::from_static(b"ab"))));
        assert!(pending.deliver(id, Outcome::Part(Bytes::from_static(b"c"))));
        assert!(rx.try_recv().is_err());
        assert!(pending.deliver(id, Outcome::End));
        assert_eq!(rx.try_recv().unwrap().unwrap(), Bytes::from_static(b"abc"));
        assert!(!pending.deliver(id, Outcome::End), "already finished");
        assert_eq!(pending.len(), 0);
    }

    #[test]
    fn close_fails_waiters_and_later_requests() {
        let pending = Pending::default();
        let (tx, mut rx) = oneshot::channel();
        pending
            .register(Waiter::Single { tx, parts: None })
            .unwrap();
        pending.close(Error::Closed(crate::CloseReason::PeerClosed));
        assert!(matches!(rx.try_recv().unwrap(), Err(Error::Closed(_))));
        let (tx, _rx) = oneshot::channel();
        assert!(pending
            .register(Waiter::Single { tx, parts: None })
            .is_err());
    }
}
