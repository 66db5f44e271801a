//! A WebSocket of another library (tungstenite's, or axum's in an app's own handler) as
//! the byte stream a [`Sock`](crate::Sock) speaks over. Our endpoint and client do not use
//! it: they read and write frames themselves, which costs a fraction of this (see
//! `socket.rs`).
//!
//! Incoming, binary and text messages are read as one byte stream, so a header and its
//! payload may arrive together or split (PROTOCOL.md 4). Outgoing, the byte stream is cut
//! where the protocol requires: the version is one message, every header is one message,
//! and a non-empty payload is the next message on its own, as gotalk.js reads them.

use std::{
    io,
    pin::Pin,
    task::{ready, Context, Poll},
};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::wire::{self, ParseError};

/// What the adapter needs of a WebSocket library's message type.
pub trait WsMessage: Sized {
    /// A binary message.
    fn binary(data: Bytes) -> Self;
    /// What an incoming message means for the byte stream.
    fn into_incoming(self) -> Incoming;
}

/// An incoming WebSocket message, as the byte stream sees it.
#[derive(Debug)]
pub enum Incoming {
    /// Bytes of the stream (a binary or text message).
    Data(Bytes),
    /// Nothing for the stream (ping, pong: the library answers pings itself).
    Skip,
    /// The peer closed the WebSocket: the end of the stream.
    Close,
}

impl WsMessage for tokio_tungstenite::tungstenite::Message {
    fn binary(data: Bytes) -> Self {
        Self::Binary(data)
    }

    fn into_incoming(self) -> Incoming {
        match self {
            Self::Binary(data) => Incoming::Data(data),
            Self::Text(text) => Incoming::Data(Bytes::from(text)),
            Self::Close(_) => Incoming::Close,
            Self::Ping(_) | Self::Pong(_) | Self::Frame(_) => Incoming::Skip,
        }
    }
}

impl WsMessage for axum::extract::ws::Message {
    fn binary(data: Bytes) -> Self {
        Self::Binary(data)
    }

    fn into_incoming(self) -> Incoming {
        match self {
            Self::Binary(data) => Incoming::Data(data),
            Self::Text(text) => Incoming::Data(Bytes::from(text)),
            Self::Close(_) => Incoming::Close,
            Self::Ping(_) | Self::Pong(_) => Incoming::Skip,
        }
    }
}

/// Bytes written but not yet sent are capped at this before writes wait for the socket.
const MAX_PENDING: usize = 256 * 1024;

/// A WebSocket (any `Stream` + `Sink` of [`WsMessage`]s) as `AsyncRead` + `AsyncWrite`.
pub struct WsStream<S> {
    ws: S,
    /// What is left of the last incoming message.
    incoming: Bytes,
    /// Outgoing bytes not yet cut into messages.
    outgoing: BytesMut,
    /// The version goes out as a message of its own before anything else.
    version_sent: bool,
    /// The payload length of the message whose header was sent last, still to send.
    payload_due: usize,
    /// The peer's close (or the end of the connection) was read.
    eof: bool,
    /// A read error, reported once the bytes read before it are taken.
    error: Option<io::Error>,
}

impl<S> WsStream<S> {
    /// Wraps a WebSocket whose handshake is done.
    pub fn new(ws: S) -> Self {
        Self {
            ws,
            incoming: Bytes::new(),
            outgoing: BytesMut::new(),
            version_sent: false,
            payload_due: 0,
            eof: false,
            error: None,
        }
    }

    /// The next complete piece of the outgoing stream to send as one message, if any.
    fn next_piece(&mut self) -> io::Result<Option<Bytes>> {
        let take = if !self.version_sent {
            if self.outgoing.len() < 2 {
                return Ok(None);
            }
            self.version_sent = true;
            2
        } else if true {
            if self.outgoing.is_empty() {
                return Ok(None);
            }
            self.outgoing.len()
        } else if self.payload_due > 0 {
            if self.outgoing.len() < self.payload_due {
                return Ok(None);
            }
            std::mem::take(&mut self.payload_due)
        } else {
            match wire::frame_lengths(&self.outgoing) {
                Ok((header, payload)) => {
                    self.payload_due = payload;
                    header
                }
                Err(ParseError::Incomplete { .. }) => return Ok(None),
                Err(ParseError::Invalid(e)) => {
                    // Only our own connection writes here: this is a bug, not bad input.
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string()));
                }
            }
        };
        Ok(Some(self.outgoing.split_to(take).freeze()))
    }
}

impl<S, M, E> WsStream<S>
where
    S: Stream<Item = Result<M, E>> + Sink<M, Error = E> + Unpin,
    M: WsMessage,
    E: std::error::Error + Send + Sync + 'static,
{
    /// Sends every complete piece of the outgoing stream (as far as the sink takes them).
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(io_error)?;
            let Some(piece) = self.next_piece()? else {
                return Poll::Ready(Ok(()));
            };
            Pin::new(&mut self.ws)
                .start_send(M::binary(piece))
                .map_err(io_error)?;
        }
    }
}

fn io_error<E: std::error::Error + Send + Sync + 'static>(e: E) -> io::Error {
    io::Error::other(e)
}

impl<S, M, E> AsyncRead for WsStream<S>
where
    S: Stream<Item = Result<M, E>> + Unpin,
    M: WsMessage,
    E: std::error::Error + Send + Sync + 'static,
{
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let start = buf.filled().len();
        // Fills `buf` with every message already received, not one: a header is a message
        // of its own, and a read that returned one would make the connection write after
        // every message (it decides when to write by the reads it makes).
        loop {
            if !this.incoming.is_empty() {
                let n = this.incoming.len().min(buf.remaining());
                buf.put_slice(&this.incoming[..n]);
                this.incoming.advance(n);
                if buf.remaining() == 0 {
                    return Poll::Ready(Ok(()));
                }
            }
            let delivered = buf.filled().len() > start;
            if let Some(e) = this.error.take() {
                if delivered {
                    this.error = Some(e);
                    return Poll::Ready(Ok(()));
                }
                return Poll::Ready(Err(e));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            match Pin::new(&mut this.ws).poll_next(cx) {
                Poll::Pending if delivered => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(msg))) => match msg.into_incoming() {
                    Incoming::Data(data) => this.incoming = data,
                    Incoming::Skip => {}
                    Incoming::Close => this.eof = true,
                },
                // Kept until the bytes before it are read.
                Poll::Ready(Some(Err(e))) => this.error = Some(io_error(e)),
                Poll::Ready(None) => this.eof = true,
            }
        }
    }
}

impl<S, M, E> AsyncWrite for WsStream<S>
where
    S: Stream<Item = Result<M, E>> + Sink<M, Error = E> + Unpin,
    M: WsMessage,
    E: std::error::Error + Send + Sync + 'static,
{
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.outgoing.len() >= MAX_PENDING {
            // Once everything complete is sent, what is left is the start of a payload
            // larger than the cap: it must be taken in whole to become a message.
            ready!(this.poll_send(cx))?;
        }
        this.outgoing.extend_from_slice(data);
        // Sends what is complete now; a sink that is not ready keeps the rest for later.
        if let Poll::Ready(Err(e)) = this.poll_send(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.ws).poll_flush(cx).map_err(io_error)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.ws).poll_close(cx).map_err(io_error)
    }
}
