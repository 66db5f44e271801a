//! Streams: the caller's [`StreamWriter`] and [`ResultStream`], the handler's
//! [`RequestChunks`].

use std::{
    fmt,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use futures_core::Stream;
use serde::{de::DeserializeOwned, Serialize};

use super::chunks::ChunkReceiver;
use crate::{
    typed,
    wire::{Header, Name, RequestId},
    Error, Sock,
};

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
    pub(crate) fn new(op: Name, rx: ChunkReceiver) -> Self {
        Self { op, rx }
    }

    /// The next chunk, or `None` at the end of the request stream.
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, Error>> {
        std::future::poll_fn(|cx| self.rx.poll_recv(cx)).await
    }

    /// The next chunk decoded from JSON, or `None` at the end of the request stream.
    pub async fn next_json<T: DeserializeOwned>(&mut self) -> Option<Result<T, Error>> {
        let chunk = self.next_chunk().await?;
        Some(chunk.and_then(|bytes| typed::decode(&self.op, &bytes)))
    }
}

impl RequestChunks {
    /// The chunks decoded from JSON, as a `Stream` of `T`.
    pub fn json<T: DeserializeOwned>(
        self,
    ) -> impl Stream<Item = Result<T, Error>> + Send + 'static {
        let op = self.op.clone();
        futures_util::StreamExt::map(self, move |chunk| {
            chunk.and_then(|bytes| typed::decode(&op, &bytes))
        })
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
    pub(crate) fn new(sock: Sock, id: RequestId, op: &str, rx: ChunkReceiver) -> Self {
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

    /// The next result chunk decoded from JSON, or `None` after the last.
    pub async fn next_json<T: DeserializeOwned>(&mut self) -> Option<Result<T, Error>> {
        let chunk = self.next_chunk().await?;
        Some(chunk.and_then(|bytes| typed::decode(&self.op, &bytes)))
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
        if !self.done {
            self.sock.inner.pending.remove(self.id);
        }
    }
}

/// The sending half of a stream request: each [`send`](Self::send) is one StreamRequestPart,
/// [`finish`](Self::finish) ends the request stream. Dropped unfinished, it ends the
/// stream itself so the peer's handler is not left waiting.
pub struct StreamWriter {
    sock: Sock,
    id: RequestId,
    finished: bool,
}

impl fmt::Debug for StreamWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamWriter")
            .field("id", &crate::wire::Preview::new(&self.id, 4).to_string())
            .field("finished", &self.finished)
            .finish()
    }
}

impl StreamWriter {
    pub(crate) fn new(sock: Sock, id: RequestId) -> Self {
        Self {
            sock,
            id,
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
            .push(Header::StreamRequestPart { id: self.id }, &chunk)
            .await
    }

    /// Sends `value` as one JSON chunk.
    pub async fn send_json<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let chunk = typed::encode("stream request", value)?;
        self.send(chunk).await
    }

    /// Ends the request stream.
    pub async fn finish(mut self) -> Result<(), Error> {
        self.finished = true;
        self.sock
            .push(Header::StreamRequestPart { id: self.id }, &Bytes::new())
            .await
    }
}

impl Drop for StreamWriter {
    fn drop(&mut self) {
        if !self.finished {
            self.sock
                .push_now(Header::StreamRequestPart { id: self.id }, b"");
        }
    }
}
