//! Streams: the caller's [`StreamWriter`] and [`ResultStream`], the handler's
//! [`RequestChunks`]. (Their JSON forms, `next_json` and friends, are in `typed.rs`.)

use std::{
    fmt,
    pin::Pin,
    task::{Context, Poll},
};

use super::{chunks::ChunkReceiver, Sock};
use crate::{
    error::Error,
    wire::{Header, Name, RequestId},
};
use bytes::Bytes;
use futures_core::Stream;

/// The chunks of a stream request, as its handler reads them: a `Stream` of
/// `Result<Bytes, Error>` that ends when the peer ends the request stream. If the
/// connection closes first, the last item is the [`Error::Closed`] that says so.
pub struct RequestChunks {
    op: Name,
    rx: ChunkReceiver,
}

impl fmt::Debug for RequestChunks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestChunks")
            .field("op", &self.op)
            .finish()
    }
}

impl RequestChunks {
    pub(super) fn new(op: Name, rx: ChunkReceiver) -> Self {
        Self { op, rx }
    }

    /// The next chunk, or `None` at the end of the request stream.
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, Error>> {
        std::future::poll_fn(|cx| self.rx.poll_recv(cx)).await
    }

    /// The operation these chunks are for.
    pub(crate) fn op(&self) -> &Name {
        &self.op
    }
}

impl Stream for RequestChunks {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// The results of a request read as a stream: one item per StreamResult part (or one
/// for a single result), ending after the last. An ErrorResult or RetryResult is an `Err`
/// item, and so is the connection closing before the end.
///
/// Dropping it before the end forgets the request: later parts are discarded.
pub struct ResultStream {
    sock: Sock,
    id: RequestId,
    op: Box<str>,
    rx: ChunkReceiver,
    done: bool,
}

impl fmt::Debug for ResultStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResultStream")
            .field("op", &self.op)
            .field("done", &self.done)
            .finish()
    }
}

impl ResultStream {
    pub(super) fn new(sock: Sock, id: RequestId, op: &str, rx: ChunkReceiver) -> Self {
        Self {
            sock,
            id,
            op: op.into(),
            rx,
            done: false,
        }
    }

    /// The next result chunk, or `None` after the last.
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, Error>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// The operation these results are for.
    pub(crate) fn op(&self) -> &str {
        &self.op
    }

    /// Reads every remaining chunk; stops at the first error.
    pub async fn collect_chunks(mut self) -> Result<Vec<Bytes>, Error> {
        let mut all = Vec::new();
        while let Some(chunk) = self.next_chunk().await {
            all.push(chunk?);
        }
        Ok(all)
    }
}

impl Stream for ResultStream {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let item = std::task::ready!(self.rx.poll_recv(cx));
        match &item {
            None | Some(Err(_)) => self.done = true,
            Some(Ok(_)) => {}
        }
        Poll::Ready(item)
    }
}

impl Drop for ResultStream {
    fn drop(&mut self) {
        // Given up before the end: the peer may stop producing (our extension).
        if !self.done && self.sock.pending().remove(self.id) {
            super::extension::send_cancel(&self.sock, self.id);
        }
    }
}

/// The sending half of a stream request: each [`send`](Self::send) is one StreamRequestPart,
/// [`finish`](Self::finish) ends the request stream. Dropped unfinished, it ends the
/// stream itself so the peer's handler is not left waiting.
pub struct StreamWriter {
    sock: Sock,
    id: RequestId,
    op: Box<str>,
    finished: bool,
}

impl fmt::Debug for StreamWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamWriter")
            .field("op", &self.op)
            .field("id", &crate::wire::Preview::new(&self.id, 4).to_string())
            .field("finished", &self.finished)
            .finish()
    }
}

impl StreamWriter {
    pub(super) fn new(sock: Sock, id: RequestId, op: &str) -> Self {
        Self {
            sock,
            id,
            op: op.into(),
            finished: false,
        }
    }

    /// Sends one chunk. An empty chunk is skipped: on the wire it would end the stream.
    pub async fn send(&mut self, chunk: impl Into<Bytes>) -> Result<(), Error> {
        let chunk = chunk.into();
        if chunk.is_empty() {
            return Ok(());
        }
        self.sock
            .send(Header::StreamRequestPart { id: self.id }, &chunk)
            .await
    }

    /// The operation this stream request is for.
    pub(crate) fn op(&self) -> &str {
        &self.op
    }

    /// Ends the request stream.
    pub async fn finish(mut self) -> Result<(), Error> {
        self.finished = true;
        self.sock
            .send(Header::StreamRequestPart { id: self.id }, &Bytes::new())
            .await
    }
}

impl Drop for StreamWriter {
    fn drop(&mut self) {
        if !self.finished {
            self.sock
                .send_now(Header::StreamRequestPart { id: self.id }, b"");
        }
    }
}
