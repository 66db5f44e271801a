//! A WebSocket over a byte stream whose handshake is done, as the byte stream a
//! [`Sock`](crate::Sock) speaks over: frames are read and written here, not by a
//! WebSocket library.
//!
//! Why not a library's messages: every library we measured (`BENCHMARKS.md`) hands each
//! message over as an object of its own, and a byte stream over those objects copies each
//! payload two or three times on its way and spends a wake-up per message; Gotalk over
//! WebSocket then ran at a third to two thirds of Gotalk over TCP. Here a read goes
//! straight into the connection's buffer, where payloads are unmasked in place and the
//! heads between them removed; a write frames the stream into one buffer, sent with one
//! system call per flush. The handshake stays with hyper, and the frame rules are RFC 6455
//! section 5: heads with reserved bits or unknown opcodes, unmasked client frames (masked
//! server frames), control frames fragmented or over 125 bytes, continuations out of
//! order and messages over the size limit fail the connection with a close frame; pings
//! are answered, and a close is echoed. Text messages are taken as the same bytes as
//! binary ones (PROTOCOL.md 4) without a UTF-8 check of their own: their bytes are Gotalk
//! headers, checked by the Gotalk decoder, and payloads, checked as JSON by whoever decodes
//! them.

mod read;
mod write;

use std::{
    io,
    pin::Pin,
    task::{ready, Context, Poll},
};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::frame;
use read::{Control, FrameReader};
use write::FrameWriter;

/// Which end of the WebSocket we are: a client masks what it sends, a server requires it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Client,
    Server,
}

/// A WebSocket over `S`, as `AsyncRead` + `AsyncWrite` of the byte stream it carries.
pub(crate) struct WsSocket<S> {
    io: S,
    reader: FrameReader,
    writer: FrameWriter,
    /// Data read for a caller whose buffer had too little room (rare: see `poll_read`).
    spill: BytesMut,
}

impl<S> WsSocket<S> {
    /// `max_message`: the largest WebSocket message accepted from the peer, in bytes.
    pub(crate) fn new(io: S, role: Role, max_message: usize) -> Self {
        Self {
            io,
            reader: FrameReader::new(role == Role::Server, max_message),
            writer: FrameWriter::new(role == Role::Client),
            spill: BytesMut::new(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsSocket<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.spill.is_empty() {
            let n = this.spill.len().min(buf.remaining());
            buf.put_slice(&this.spill[..n]);
            this.spill.advance(n);
            return Poll::Ready(Ok(()));
        }
        let writer = &mut this.writer;
        let mut answer = |control| match control {
            Control::Ping(payload) => writer.queue_control(frame::PONG, &payload),
            Control::Close(code) => {
                let code = code.map(u16::to_be_bytes);
                writer.queue_control(frame::CLOSE, code.as_ref().map_or(&[][..], |c| &c[..]));
            }
            Control::Fail(code) => writer.queue_control(frame::CLOSE, &code.to_be_bytes()),
        };
        let read = if buf.remaining() >= FrameReader::MIN_ROOM {
            this.reader
                .poll_read(Pin::new(&mut this.io), cx, buf, &mut answer)
        } else {
            // The frames need room to be stripped in: they are read into a buffer of
            // ours, and what the caller's cannot take waits in `spill`.
            let mut room = [0; 2 * FrameReader::MIN_ROOM];
            let mut ours = ReadBuf::new(&mut room);
            let read = this
                .reader
                .poll_read(Pin::new(&mut this.io), cx, &mut ours, &mut answer);
            let n = ours.filled().len().min(buf.remaining());
            buf.put_slice(&ours.filled()[..n]);
            this.spill.extend_from_slice(&ours.filled()[n..]);
            read
        };
        // Answers to pings and closes go now: an idle connection may write nothing else.
        if let Poll::Ready(Err(e)) = this.writer.poll_send(Pin::new(&mut this.io), cx) {
            tracing::debug!("websocket: answering a control frame failed: {e}");
        }
        read
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsSocket<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.writer
            .poll_write(Pin::new(&mut this.io), cx, &[io::IoSlice::new(data)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        slices: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.writer.poll_write(Pin::new(&mut this.io), cx, slices)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.writer.poll_send(Pin::new(&mut this.io), cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.writer.closed() {
            this.writer
                .queue_control(frame::CLOSE, &frame::NORMAL.to_be_bytes());
        }
        ready!(this.writer.poll_send(Pin::new(&mut this.io), cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}
