//! Our outstanding requests: who waits for the result with which request ID.
//!
//! The IDs are ours, so the table needs no hashing: an ID is a counter, and its waiter
//! sits at the counter modulo the table's size (a power of two). An ID whose slot is taken
//! (by a request still outstanding since the counter last passed it) is skipped, and the
//! table doubles when half full, so it holds at most four slots per outstanding request.
//! A result whose ID is not in its slot, or is not one of our IDs at all, finds nobody.

use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};

use super::{chunks::ChunkSender, signal::Signal};
use crate::{
    error::Error,
    sync::{lock, Mutex},
    wire::RequestId,
};

/// Request IDs are four printable characters (`0000`, `0001`, … `____`) so that they read
/// well in traces; 64⁴ ≈ 16.7 M of them before the counter wraps.
const ID_ALPHABET: &[u8; 64] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_";

/// The counter values are 24 bits, four digits of six.
const COUNTER_MASK: u32 = 0x00ff_ffff;

fn id_for(counter: u32) -> RequestId {
    let digit = |shift: u32| ID_ALPHABET[((counter >> shift) & 63) as usize];
    [digit(18), digit(12), digit(6), digit(0)]
}

/// The value of each byte as a digit of an ID; `NOT_A_DIGIT` for other bytes.
static ID_DIGIT: [u8; 256] = {
    let mut table = [NOT_A_DIGIT; 256];
    let mut i = 0;
    while i < 64 {
        table[ID_ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};
const NOT_A_DIGIT: u8 = 0x40;

/// The counter an ID was made from (`id_for`'s inverse); `None` for an ID we never make.
fn counter_of(id: RequestId) -> Option<u32> {
    let mut counter = 0u32;
    let mut seen = 0u8;
    for b in id {
        let digit = ID_DIGIT[usize::from(b)];
        seen |= digit;
        counter = (counter << 6) | u32::from(digit & 63);
    }
    (seen & NOT_A_DIGIT == 0).then_some(counter)
}

/// Who waits for a result.
pub(super) enum Waiter {
    /// A single-result caller, which polls its slot here (no channel: one allocation less
    /// per request). If the peer answers with a stream result anyway, its parts are
    /// gathered in `parts` and delivered together when the stream ends (boxed: rare, and
    /// every slot of the table would be larger).
    Single {
        slot: Slot,
        parts: Option<Box<BytesMut>>,
    },
    /// A caller reading results as a stream (a single result is one item).
    Stream { tx: ChunkSender },
}

/// Where a single result waits for its caller.
pub(super) enum Slot {
    /// No result yet; the caller's waker, once it has polled.
    Waiting(Option<Waker>),
    /// The result, until the caller takes it (an error boxed: rare, and every slot of the
    /// table would be larger).
    Done(Result<Bytes, Box<Error>>),
}

impl Waiter {
    /// A waiter for a single result, woken by `waker` when it arrives.
    pub(super) fn single(waker: &Waker) -> Self {
        Self::Single {
            slot: Slot::Waiting(Some(waker.clone())),
            parts: None,
        }
    }
}

pub(super) struct Pending {
    table: Mutex<Table>,
    /// The most bytes of stream parts a single call's result is put together from (the
    /// connection's `max_payload`): a peer streaming more fails the call, not memory.
    max_parts: usize,
    /// Set once the table is closed: this side can make no more calls on the connection
    /// (it closed, or the peer ended its side and can answer none).
    ended: Signal,
}

#[derive(Default)]
struct Table {
    /// Each outstanding request's counter and waiter, at the counter modulo the length
    /// (a power of two, or zero before the first request).
    slots: Vec<Entry>,
    /// How many slots are taken.
    taken: usize,
    next: u32,
    /// Set once the connection closed: later requests fail at once with it.
    closed: Option<Error>,
}

/// A slot of the table. Its fields are written one by one (a tuple in an `Option` was
/// put together on the stack and copied in overlapping pieces, which stalled the copy).
#[derive(Default)]
struct Entry {
    /// The counter of the request waiting here, if `waiter` is there.
    counter: u32,
    waiter: Option<Waiter>,
}

impl Table {
    /// The waiter of `id`'s slot, if `id` is outstanding (`None` in the slot otherwise).
    fn slot(&mut self, id: RequestId) -> Option<&mut Option<Waiter>> {
        let counter = counter_of(id)?;
        let mask = self.slots.len().checked_sub(1)?;
        let entry = &mut self.slots[counter as usize & mask];
        (entry.waiter.is_some() && entry.counter == counter).then_some(&mut entry.waiter)
    }

    fn get(&mut self, id: RequestId) -> Option<&mut Waiter> {
        self.slot(id)?.as_mut()
    }

    fn remove(&mut self, id: RequestId) -> Option<Waiter> {
        let waiter = self.slot(id)?.take()?;
        self.taken -= 1;
        Some(waiter)
    }

    /// Doubles the table. Counters that differ modulo the old length differ modulo the
    /// new one, so every waiter finds a free slot.
    fn grow(&mut self) {
        let len = (self.slots.len() * 2).max(8);
        let old = std::mem::replace(
            &mut self.slots,
            (0..len).map(|_| Entry::default()).collect(),
        );
        for Entry { counter, waiter } in old {
            if waiter.is_some() {
                let entry = &mut self.slots[counter as usize & (len - 1)];
                entry.counter = counter;
                entry.waiter = waiter;
            }
        }
    }
}

/// What a result message means for a waiter.
pub(super) enum Outcome {
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
    /// A table whose single calls put results of at most `max_parts` bytes together from
    /// stream parts.
    pub(super) fn new(max_parts: usize) -> Self {
        Self {
            table: Mutex::default(),
            max_parts,
            ended: Signal::default(),
        }
    }

    /// Whether calls fail at once (see [`close`](Self::close)).
    pub(super) fn is_closed(&self) -> bool {
        self.ended.is_set()
    }

    /// Waits until calls fail at once.
    pub(super) async fn closed(&self) {
        self.ended.wait().await;
    }

    /// Registers a waiter under a fresh request ID.
    pub(super) fn register(&self, waiter: Waiter) -> Result<RequestId, Error> {
        let mut table = lock(&self.table);
        if let Some(e) = &table.closed {
            return Err(e.clone());
        }
        if table.taken * 2 >= table.slots.len() {
            table.grow();
        }
        let mask = table.slots.len() - 1;
        loop {
            let counter = table.next;
            table.next = counter.wrapping_add(1) & COUNTER_MASK;
            let entry = &mut table.slots[counter as usize & mask];
            if entry.waiter.is_none() {
                entry.counter = counter;
                entry.waiter = Some(waiter);
                table.taken += 1;
                return Ok(id_for(counter));
            }
            // Taken by a request still outstanding: take the next counter.
        }
    }

    /// Forgets a waiter (its caller gave up). Returns whether it was still waiting for
    /// its result (then the peer may still be working on the request).
    pub(super) fn remove(&self, id: RequestId) -> bool {
        let removed = lock(&self.table).remove(id);
        !matches!(
            removed,
            None | Some(Waiter::Single {
                slot: Slot::Done(_),
                ..
            })
        )
    }

    /// Delivers a result message. Returns `false` if nobody waits for this ID (a caller
    /// that gave up, or a peer answering a request we never sent).
    pub(super) fn deliver(&self, id: RequestId, outcome: Outcome) -> bool {
        let mut table = lock(&self.table);
        let Some(waiter) = table.get(id) else {
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
            (Waiter::Single { parts, slot }, Outcome::Part(bytes)) => {
                let parts = parts.get_or_insert_default();
                if parts.len() + bytes.len() <= self.max_parts {
                    parts.extend_from_slice(&bytes);
                    return true;
                }
                let too_long = Error::message(format!(
                    "the result's stream parts come to more than max_payload ({} bytes)",
                    self.max_parts
                ));
                **parts = BytesMut::new();
                let Slot::Waiting(waker) =
                    std::mem::replace(slot, Slot::Done(Err(Box::new(too_long))))
                else {
                    unreachable!("matched above");
                };
                drop(table);
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
            (Waiter::Single { slot, parts }, outcome) => {
                let result = match outcome {
                    Outcome::Result(bytes) => Ok(bytes),
                    Outcome::End | Outcome::Part(_) => {
                        Ok(parts.take().map(|p| p.freeze()).unwrap_or_default())
                    }
                    Outcome::Failed(e) => Err(Box::new(e)),
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
                if let Some(Waiter::Stream { tx }) = table.remove(id) {
                    drop(table);
                    finish_stream(&tx, outcome);
                }
            }
        }
        true
    }

    /// The channel of a caller reading results as a stream, to send it a part.
    pub(super) fn stream_sender(&self, id: RequestId) -> Option<ChunkSender> {
        match lock(&self.table).get(id) {
            Some(Waiter::Stream { tx }) => Some(tx.clone()),
            _ => None,
        }
    }

    /// The single result for `id` once it is there (taking it out of the table).
    pub(super) fn poll_single(
        &self,
        id: RequestId,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Bytes, Error>> {
        let mut table = lock(&self.table);
        let table = &mut *table;
        // One look at the slot: a pending result registers the waker, a delivered one is
        // taken out.
        match table.slot(id) {
            Some(
                waiter @ Some(Waiter::Single {
                    slot: Slot::Done(_),
                    ..
                }),
            ) => {
                let Some(Waiter::Single {
                    slot: Slot::Done(result),
                    ..
                }) = waiter.take()
                else {
                    unreachable!("matched above");
                };
                table.taken -= 1;
                Poll::Ready(result.map_err(|e| *e))
            }
            Some(Some(Waiter::Single {
                slot: Slot::Waiting(waker),
                ..
            })) => {
                match waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            // Removed by `close` (or never a single waiter): the connection's error.
            _ => Poll::Ready(Err(table
                .closed
                .clone()
                .unwrap_or(Error::Closed(crate::CloseReason::Local)))),
        }
    }

    /// Fails every waiter with `error`; later registrations fail with it too.
    pub(super) fn close(&self, error: Error) {
        let waiters: Vec<Waiter> = {
            let mut table = lock(&self.table);
            table.closed = Some(error.clone());
            self.ended.set();
            // Results already delivered stay for their callers to take.
            let mut waiting = Vec::new();
            for entry in &mut table.slots {
                if let Some(w) = &entry.waiter {
                    if !matches!(
                        w,
                        Waiter::Single {
                            slot: Slot::Done(_),
                            ..
                        }
                    ) {
                        waiting.extend(entry.waiter.take());
                    }
                }
            }
            table.taken -= waiting.len();
            waiting
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

    pub(super) fn len(&self) -> usize {
        lock(&self.table).taken
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
    fn ids_read_back_as_their_counters() {
        for counter in [0, 1, 63, 64, 4095, 0x12_3456, COUNTER_MASK] {
            assert_eq!(counter_of(id_for(counter)), Some(counter));
        }
        assert_eq!(counter_of(*b"00 0"), None);
        assert_eq!(counter_of(*b"\xff000"), None);
    }

    #[test]
    fn results_for_ids_not_outstanding_find_nobody() {
        let pending = Pending::new(1 << 20);
        let id = pending.register(waiter()).unwrap();
        let answer = || Outcome::Result(Bytes::from_static(b"x"));
        assert!(!pending.deliver(*b"zz z", answer()), "not one of our IDs");
        assert!(!pending.deliver(id_for(1), answer()), "never sent");
        // Same slot, another counter: a result for a request long gone.
        assert!(!pending.deliver(id_for(8), answer()));
        assert!(pending.deliver(id, answer()));
    }

    #[test]
    fn a_second_result_for_a_request_finds_nobody_and_the_first_stays() {
        let pending = Pending::new(1 << 20);
        let id = pending.register(waiter()).unwrap();
        let answer = |b: &'static [u8]| Outcome::Result(Bytes::from_static(b));
        assert!(pending.deliver(id, answer(b"first")));
        assert!(!pending.deliver(id, answer(b"second")));
        assert!(!pending.deliver(id, Outcome::Failed(Error::Remote("third".into()))));
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        match pending.poll_single(id, &mut cx) {
            Poll::Ready(Ok(bytes)) => assert_eq!(&bytes[..], b"first"),
            other => panic!("expected the first result, got {other:?}"),
        }
    }

    #[test]
    fn waiters_survive_growth_and_a_long_outstanding_one_keeps_the_table_small() {
        let pending = Pending::new(1 << 20);
        let long = pending.register(waiter()).unwrap();
        let many: Vec<_> = (0..100)
            .map(|_| pending.register(waiter()).unwrap())
            .collect();
        for &id in &many {
            assert!(pending.deliver(id, Outcome::Result(Bytes::from_static(b"ok"))));
            assert!(matches!(poll(&pending, id), Poll::Ready(Ok(_))));
        }
        // A million short requests pass while one stays outstanding: its slot is skipped,
        // and the table does not grow for it.
        for _ in 0..1_000_000 {
            let id = pending.register(waiter()).unwrap();
            assert!(pending.remove(id));
        }
        assert_eq!(pending.len(), 1);
        assert!(lock(&pending.table).slots.len() <= 256);
        assert!(pending.deliver(long, Outcome::Result(Bytes::from_static(b"late"))));
        assert!(matches!(poll(&pending, long), Poll::Ready(Ok(b)) if b == "late"));
    }

    #[test]
    fn an_outstanding_id_is_skipped_after_wrap() {
        let pending = Pending::new(1 << 20);
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
        let pending = Pending::new(1 << 20);
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
        let pending = Pending::new(1 << 20);
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
        let pending = Pending::new(1 << 20);
        let id = pending.register(waiter()).unwrap();
        assert!(pending.deliver(id, Outcome::Result(Bytes::from_static(b"ok"))));
        pending.close(Error::Closed(crate::CloseReason::PeerClosed));
        assert!(matches!(poll(&pending, id), Poll::Ready(Ok(b)) if b == "ok"));
        assert_eq!(pending.len(), 0);
    }
}
