//! Our outstanding requests: who waits for the result with which request ID.

use std::{
    collections::HashMap,
    hash::{BuildHasherDefault, Hasher},
    sync::Mutex,
    task::{Context, Poll, Waker},
};

use bytes::{Bytes, BytesMut};

use super::chunks::ChunkSender;
use crate::{sync::lock, wire::RequestId, Error};

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
    /// A single-result caller, which polls its slot here (no channel: one allocation less
    /// per request). If the peer answers with a stream result anyway, its parts are
    /// gathered in `parts` and delivered together when the stream ends.
    Single { slot: Slot, parts: Option<BytesMut> },
    /// A caller reading results as a stream (a single result is one item).
    Stream { tx: ChunkSender },
}

/// Where a single result waits for its caller.
pub(crate) enum Slot {
    /// No result yet; the caller's waker, once it has polled.
    Waiting(Option<Waker>),
    /// The result, until the caller takes it.
    Done(Result<Bytes, Error>),
}

impl Waiter {
    /// A waiter for a single result, woken by `waker` when it arrives.
    pub(crate) fn single(waker: &Waker) -> Self {
        Self::Single {
            slot: Slot::Waiting(Some(waker.clone())),
            parts: None,
        }
    }
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
            (
                Waiter::Single {
                    slot: Slot::Done(_),
                    ..
                },
                _,
            ) => return false,
            (Waiter::Single { parts, .. }, Outcome::Part(bytes)) => {
                parts
                    .get_or_insert_with(BytesMut::new)
                    .extend_from_slice(&bytes);
            }
            (Waiter::Single { slot, parts }, outcome) => {
                let result = match outcome {
                    Outcome::Result(bytes) => Ok(bytes),
                    Outcome::End | Outcome::Part(_) => {
                        Ok(parts.take().map(BytesMut::freeze).unwrap_or_default())
                    }
                    Outcome::Failed(e) => Err(e),
                };
                let Slot::Waiting(waker) = std::mem::replace(slot, Slot::Done(result)) else {
                    unreachable!("matched above");
                };
                drop(table);
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
            // Parts for a caller reading a stream go through `stream_sender`, where the
            // reader can wait for room; one that comes here answers a request that was not
            // registered when the reader looked (a peer answering before being asked).
            (Waiter::Stream { .. }, Outcome::Part(_)) => return false,
            (Waiter::Stream { .. }, outcome) => {
                if let Some(Waiter::Stream { tx }) = table.waiters.remove(&k) {
                    drop(table);
                    finish_stream(&tx, outcome);
                }
            }
        }
        true
    }

    /// The channel of a caller reading results as a stream, to send it a part.
    pub(crate) fn stream_sender(&self, id: RequestId) -> Option<ChunkSender> {
        match lock(&self.table).waiters.get(&key(id)) {
            Some(Waiter::Stream { tx }) => Some(tx.clone()),
            _ => None,
        }
    }

    /// The single result for `id` once it is there (taking it out of the table).
    pub(crate) fn poll_single(
        &self,
        id: RequestId,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Bytes, Error>> {
        let mut table = lock(&self.table);
        let k = key(id);
        match table.waiters.get_mut(&k) {
            Some(Waiter::Single {
                slot: Slot::Waiting(waker),
                ..
            }) => {
                match waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            Some(Waiter::Single {
                slot: Slot::Done(_),
                ..
            }) => match table.waiters.remove(&k) {
                Some(Waiter::Single {
                    slot: Slot::Done(result),
                    ..
                }) => Poll::Ready(result),
                _ => unreachable!("matched above"),
            },
            // Removed by `close` (or never a single waiter): the connection's error.
            _ => Poll::Ready(Err(table
                .closed
                .clone()
                .unwrap_or(Error::Closed(crate::CloseReason::Local)))),
        }
    }

    /// Fails every waiter with `error`; later registrations fail with it too.
    pub(crate) fn close(&self, error: Error) {
        let waiters: Vec<Waiter> = {
            let mut table = lock(&self.table);
            table.closed = Some(error.clone());
            // Results already delivered stay for their callers to take.
            let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut table.waiters)
                .into_iter()
                .partition(|(_, w)| {
                    matches!(
                        w,
                        Waiter::Single {
                            slot: Slot::Done(_),
                            ..
                        }
                    )
                });
            table.waiters.extend(done);
            waiting.into_iter().map(|(_, w)| w).collect()
        };
        for waiter in waiters {
            match waiter {
                // Its caller finds the slot gone and takes the error from `closed`.
                Waiter::Single {
                    slot: Slot::Waiting(Some(waker)),
                    ..
                } => waker.wake(),
                Waiter::Single { .. } => {}
                Waiter::Stream { tx } => finish_stream(&tx, Outcome::Failed(error.clone())),
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        lock(&self.table).waiters.len()
    }
}

fn finish_stream(tx: &ChunkSender, outcome: Outcome) {
    match outcome {
        Outcome::Result(bytes) | Outcome::Part(bytes) => tx.finish(Ok(bytes)),
        Outcome::End => {}
        Outcome::Failed(e) => tx.finish(Err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiter() -> Waiter {
        Waiter::single(futures_util::task::noop_waker_ref())
    }

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
        let first = pending.register(waiter()).unwrap();
        lock(&pending.table).next = 0;
        let second = pending.register(waiter()).unwrap();
        assert_eq!(first, *b"0000");
        assert_eq!(second, *b"0001");
    }

    fn poll(pending: &Pending, id: RequestId) -> Poll<Result<Bytes, Error>> {
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        pending.poll_single(id, &mut cx)
    }

    #[test]
    fn a_stream_result_to_a_single_request_is_gathered() {
        let pending = Pending::default();
        let id = pending.register(waiter()).unwrap();
        assert!(poll(&pending, id).is_pending());
        assert!(pending.deliver(id, Outcome::Part(Bytes::from_static(b"ab"))));
        assert!(pending.deliver(id, Outcome::Part(Bytes::from_static(b"c"))));
        assert!(poll(&pending, id).is_pending());
        assert!(pending.deliver(id, Outcome::End));
        assert!(!pending.deliver(id, Outcome::End), "already finished");
        match poll(&pending, id) {
            Poll::Ready(Ok(bytes)) => assert_eq!(bytes, Bytes::from_static(b"abc")),
            other => panic!("expected the gathered parts, got {other:?}"),
        }
        assert_eq!(pending.len(), 0);
    }

    #[test]
    fn close_fails_waiters_and_later_requests() {
        let pending = Pending::default();
        let id = pending.register(waiter()).unwrap();
        assert!(poll(&pending, id).is_pending());
        pending.close(Error::Closed(crate::CloseReason::PeerClosed));
        assert!(matches!(
            poll(&pending, id),
            Poll::Ready(Err(Error::Closed(_)))
        ));
        assert!(pending.register(waiter()).is_err());
    }

    #[test]
    fn a_result_delivered_before_close_is_still_taken() {
        let pending = Pending::default();
        let id = pending.register(waiter()).unwrap();
        assert!(pending.deliver(id, Outcome::Result(Bytes::from_static(b"ok"))));
        pending.close(Error::Closed(crate::CloseReason::PeerClosed));
        assert!(matches!(poll(&pending, id), Poll::Ready(Ok(b)) if b == "ok"));
        assert_eq!(pending.len(), 0);
    }
}
