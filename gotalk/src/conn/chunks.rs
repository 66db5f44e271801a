//! The channel that carries stream chunks from the reader to the code consuming them (a
//! stream request's handler, or a caller reading a stream result), bounded in bytes.
//!
//! While the consumer has [`Limits::stream_buffer`] bytes waiting, the reader waits
//! before handing it more, and so reads nothing more from the peer: TCP carries the
//! backpressure back to the sender, and memory stays bounded however fast it sends.
//! Errors and the end bypass the bound (they are small and final). A chunk waiting keeps
//! the read buffer it is a slice of charged against the connection's byte budgets
//! (`charge.rs`).
//!
//! [`Limits::stream_buffer`]: crate::Limits::stream_buffer

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use tokio::sync::{mpsc, Semaphore};

use super::{budget::Budgets, charge::Kept};
use crate::error::Error;

/// What a chunk waiting in the channel costs besides its bytes (the queue's slot, the
/// chunk's handle): charged while it waits, so that many tiny chunks cost what they
/// take, and counted against the channel's room too.
const QUEUED_CHUNK: usize = 64;

/// An item, what it costs against the channel's room (0 for the last item), and what
/// keeps its memory charged while it waits.
type Item = (Result<Bytes, Error>, u32, Kept);

/// A channel that lets at most `budget` bytes of chunks wait for the receiver; each
/// waiting chunk's slot is charged to `budgets`.
pub(super) fn channel(budget: usize, budgets: Arc<Budgets>) -> (ChunkSender, ChunkReceiver) {
    let budget = u32::try_from(budget.max(1)).unwrap_or(u32::MAX);
    let room = Arc::new(Semaphore::new(budget as usize));
    let (tx, rx) = mpsc::unbounded_channel();
    (
        ChunkSender {
            tx,
            room: room.clone(),
            budget,
            budgets: budgets.clone(),
        },
        ChunkReceiver { rx, room, budgets },
    )
}

/// The receiver is gone: nothing will read what is sent.
#[derive(Debug)]
pub(super) struct Gone;

#[derive(Clone)]
pub(super) struct ChunkSender {
    tx: mpsc::UnboundedSender<Item>,
    room: Arc<Semaphore>,
    budget: u32,
    budgets: Arc<Budgets>,
}

impl ChunkSender {
    /// What a chunk of `len` bytes counts against the channel's room: its bytes and its
    /// slot, but a chunk larger than the whole room counts as the room, so that it can
    /// always go once the rest is read.
    fn cost(&self, len: usize) -> u32 {
        let cost = len.saturating_add(QUEUED_CHUNK);
        u32::try_from(cost).unwrap_or(u32::MAX).min(self.budget)
    }

    /// Sends a chunk (and what keeps it charged) if there is room for it now; hands them
    /// back if not.
    pub(super) fn try_send(
        &self,
        chunk: Bytes,
        kept: Kept,
    ) -> Result<(), Result<(Bytes, Kept), Gone>> {
        let cost = self.cost(chunk.len());
        match self.room.try_acquire_many(cost) {
            Ok(permit) => {
                permit.forget();
                self.enqueue(chunk, cost, kept).map_err(Err)
            }
            Err(tokio::sync::TryAcquireError::NoPermits) => Err(Ok((chunk, kept))),
            Err(tokio::sync::TryAcquireError::Closed) => Err(Err(Gone)),
        }
    }

    /// Sends a chunk once there is room for it.
    pub(super) async fn send(&self, chunk: Bytes, kept: Kept) -> Result<(), Gone> {
        let cost = self.cost(chunk.len());
        self.room
            .acquire_many(cost)
            .await
            .map_err(|_| Gone)?
            .forget();
        self.enqueue(chunk, cost, kept)
    }

    /// Puts a chunk whose room was taken into the channel, its slot charged.
    fn enqueue(&self, chunk: Bytes, cost: u32, kept: Kept) -> Result<(), Gone> {
        self.budgets.hold(QUEUED_CHUNK);
        self.tx.send((Ok(chunk), cost, kept)).map_err(|_| {
            self.budgets.release(QUEUED_CHUNK);
            Gone
        })
    }

    /// Sends the last item (an error, or a single result), whatever the room.
    pub(super) fn finish(&self, item: Result<Bytes, Error>) {
        let _ = self.tx.send((item, 0, Kept::Nothing));
    }
}

pub(super) struct ChunkReceiver {
    rx: mpsc::UnboundedReceiver<Item>,
    room: Arc<Semaphore>,
    budgets: Arc<Budgets>,
}

impl ChunkReceiver {
    pub(super) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|item| item.map(|item| self.taken(item)))
    }

    /// Gives back the room an item took. What kept it charged is dropped: the consumer
    /// has it now (a payload that keeps its buffer alive past this is the consumer's).
    fn taken(&self, (chunk, cost, _kept): Item) -> Result<Bytes, Error> {
        if cost > 0 {
            self.room.add_permits(cost as usize);
            self.budgets.release(QUEUED_CHUNK);
        }
        chunk
    }
}

impl Drop for ChunkReceiver {
    fn drop(&mut self) {
        // A sender waiting for room learns at once that nobody will read, and what
        // waited here is no longer held.
        self.room.close();
        self.rx.close();
        while let Ok(item) = self.rx.try_recv() {
            let _ = self.taken(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::conn::{budget::Budgets, charge::Charge};

    async fn recv(rx: &mut ChunkReceiver) -> Option<Result<Bytes, Error>> {
        std::future::poll_fn(|cx| rx.poll_recv(cx)).await
    }

    /// What keeps `bytes` charged in `budgets`.
    fn charged(budgets: &Arc<Budgets>, bytes: usize) -> Kept {
        budgets.hold(bytes);
        Kept::Own(Charge::held(budgets, bytes))
    }

    #[tokio::test]
    async fn a_full_channel_makes_the_sender_wait_until_chunks_are_taken() {
        let budgets = Arc::new(Budgets::new(usize::MAX, None));
        let (tx, mut rx) = channel(10 + 2 * QUEUED_CHUNK, budgets.clone());
        tx.try_send(Bytes::from_static(b"123456"), charged(&budgets, 6))
            .unwrap();
        let refused = tx
            .try_send(Bytes::from_static(b"7890a"), charged(&budgets, 5))
            .unwrap_err();
        let (chunk, kept) = refused.unwrap();
        let waiting = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send(chunk, kept).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "no room until a chunk is taken");
        assert_eq!(
            budgets.held(),
            11 + QUEUED_CHUNK,
            "what waits stays charged, with its slot"
        );
        assert_eq!(recv(&mut rx).await.unwrap().unwrap(), "123456");
        waiting.await.unwrap().unwrap();
        assert_eq!(
            budgets.held(),
            5 + QUEUED_CHUNK,
            "what was taken is the consumer's"
        );
        assert_eq!(recv(&mut rx).await.unwrap().unwrap(), "7890a");
        // A chunk larger than the whole budget still goes through an empty channel.
        tx.try_send(Bytes::from(vec![0u8; 100]), Kept::Nothing)
            .unwrap();
        tx.finish(Err(Error::message("end")));
        assert_eq!(recv(&mut rx).await.unwrap().unwrap().len(), 100);
        assert!(recv(&mut rx).await.unwrap().is_err());
        tx.try_send(Bytes::from_static(b"left"), charged(&budgets, 4))
            .unwrap();
        drop(rx);
        assert_eq!(
            budgets.held(),
            0,
            "a dropped receiver keeps nothing charged"
        );
    }

    #[tokio::test]
    async fn a_dropped_receiver_releases_a_waiting_sender() {
        let (tx, rx) = channel(4 + QUEUED_CHUNK, Arc::new(Budgets::new(usize::MAX, None)));
        tx.try_send(Bytes::from_static(b"1234"), Kept::Nothing)
            .unwrap();
        let waiting = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send(Bytes::from_static(b"5"), Kept::Nothing).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(rx);
        assert!(waiting.await.unwrap().is_err());
        assert!(matches!(
            tx.try_send(Bytes::from_static(b"6"), Kept::Nothing),
            Err(Err(Gone))
        ));
    }
}
