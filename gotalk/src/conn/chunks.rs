//! The channel that carries stream chunks from the reader to the code consuming them (a
//! stream request's handler, or a caller reading a stream result), bounded in bytes.
//!
//! While the consumer has [`Limits::stream_buffer`] bytes waiting, the reader waits
//! before handing it more, and so reads nothing more from the peer: TCP carries the
//! backpressure back to the sender, and memory stays bounded however fast it sends.
//! Errors and the end bypass the bound (they are small and final). The chunks waiting
//! also count as held against the connection's byte budgets (`budget.rs`).
//!
//! [`Limits::stream_buffer`]: crate::Limits::stream_buffer

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use tokio::sync::{mpsc, Semaphore};

use super::budget::Budgets;
use crate::Error;

/// An item and what it costs: against the channel's room (`u32`, 0 for the last item)
/// and, for a chunk, its length against the connection's budgets.
type Item = (Result<Bytes, Error>, u32);

/// A channel that lets at most `budget` bytes of chunks wait for the receiver, counted
/// as held in `budgets` while they wait.
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
    /// What a chunk of `len` bytes counts against the budget: a chunk larger than the
    /// whole budget counts as the budget, so that it can always go once the rest is read.
    fn cost(&self, len: usize) -> u32 {
        u32::try_from(len).unwrap_or(u32::MAX).min(self.budget)
    }

    /// Sends a chunk if there is room for it now; hands it back if not.
    pub(super) fn try_send(&self, chunk: Bytes) -> Result<(), Result<Bytes, Gone>> {
        let cost = self.cost(chunk.len());
        match self.room.try_acquire_many(cost) {
            Ok(permit) => {
                permit.forget();
                self.enqueue(chunk, cost).map_err(Err)
            }
            Err(tokio::sync::TryAcquireError::NoPermits) => Err(Ok(chunk)),
            Err(tokio::sync::TryAcquireError::Closed) => Err(Err(Gone)),
        }
    }

    /// Sends a chunk once there is room for it.
    pub(super) async fn send(&self, chunk: Bytes) -> Result<(), Gone> {
        let cost = self.cost(chunk.len());
        self.room
            .acquire_many(cost)
            .await
            .map_err(|_| Gone)?
            .forget();
        self.enqueue(chunk, cost)
    }

    /// Puts a chunk whose room was taken into the channel, counted as held.
    fn enqueue(&self, chunk: Bytes, cost: u32) -> Result<(), Gone> {
        let len = chunk.len();
        self.budgets.hold(len);
        self.tx.send((Ok(chunk), cost)).map_err(|_| {
            self.budgets.release(len);
            Gone
        })
    }

    /// Sends the last item (an error, or a single result), whatever the room.
    pub(super) fn finish(&self, item: Result<Bytes, Error>) {
        let _ = self.tx.send((item, 0));
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

    /// Gives back the room and the budget an item took.
    fn taken(&self, (chunk, cost): Item) -> Result<Bytes, Error> {
        if cost > 0 {
            self.room.add_permits(cost as usize);
            if let Ok(bytes) = &chunk {
                self.budgets.release(bytes.len());
            }
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

    async fn recv(rx: &mut ChunkReceiver) -> Option<Result<Bytes, Error>> {
        std::future::poll_fn(|cx| rx.poll_recv(cx)).await
    }

    #[tokio::test]
    async fn a_full_channel_makes_the_sender_wait_until_chunks_are_taken() {
        let budgets = Arc::new(Budgets::new(usize::MAX, None));
        let (tx, mut rx) = channel(10, budgets.clone());
        tx.try_send(Bytes::from_static(b"123456")).unwrap();
        let refused = tx.try_send(Bytes::from_static(b"7890a")).unwrap_err();
        let chunk = refused.unwrap();
        let waiting = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send(chunk).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "no room until a chunk is taken");
        assert_eq!(budgets.held(), 6, "what waits is held");
        assert_eq!(recv(&mut rx).await.unwrap().unwrap(), "123456");
        waiting.await.unwrap().unwrap();
        assert_eq!(recv(&mut rx).await.unwrap().unwrap(), "7890a");
        // A chunk larger than the whole budget still goes through an empty channel.
        tx.try_send(Bytes::from(vec![0u8; 100])).unwrap();
        tx.finish(Err(Error::message("end")));
        assert_eq!(recv(&mut rx).await.unwrap().unwrap().len(), 100);
        assert!(recv(&mut rx).await.unwrap().is_err());
        tx.try_send(Bytes::from_static(b"left")).unwrap();
        drop(rx);
        assert_eq!(budgets.held(), 0, "a dropped receiver holds nothing");
    }

    #[tokio::test]
    async fn a_dropped_receiver_releases_a_waiting_sender() {
        let (tx, rx) = channel(4, Arc::new(Budgets::new(usize::MAX, None)));
        tx.try_send(Bytes::from_static(b"1234")).unwrap();
        let waiting = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send(Bytes::from_static(b"5")).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(rx);
        assert!(waiting.await.unwrap().is_err());
        assert!(matches!(
            tx.try_send(Bytes::from_static(b"6")),
            Err(Err(Gone))
        ));
    }
}
