//! A WebSocket over a byte stream whose handshake is done, as the byte stream a
//! [`Sock`](crate::Sock) speaks over: frames are read and written here, not by a
//! WebSocket library.
//!
//! Why not a library's messages: a WebSocket library hands each message over as an
//! object of its own, and a byte stream made of those objects copies every payload out of
//! them into the connection's buffer, on top of the library's own copies and a wake-up
//! per message. Over tungstenite's (measured, `BENCHMARKS.md`) Gotalk over WebSocket ran
//! at a third to two thirds of Gotalk over TCP, and each idle socket kept a 128 KiB read
//! buffer. Here a read goes straight into the connection's buffer, where payloads are
//! unmasked in place and the heads between them removed; a write frames the stream into
//! one buffer (a server's large payloads go from the connection's buffers), sent with one
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
    sync::Arc,
    task::{ready, Context, Poll},
};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::frame;
use crate::{
    conn::{PeerReadsStream, BATCH_MAX},
    Config, Sock,
};
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
            writer: FrameWriter::new(role == Role::Client, PeerReadsStream::default()),
            spill: BytesMut::new(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Send + Unpin + 'static> WsSocket<S> {
    /// Starts Gotalk over the socket. The connection announces that it reads messages as
    /// one byte stream when the socket takes messages of `BATCH_MAX` bytes, and the socket
    /// batches what it writes once the peer announces the same.
    pub(crate) fn adopt(self, peer: String, config: Arc<Config>) -> Sock {
        let framing =
            (self.reader.max_message() >= BATCH_MAX).then(|| self.writer.framing().clone());
        Sock::adopt_over(self, peer, config, framing)
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

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// The frames of a stream: each one's payload, unmasked.
    fn frames(mut raw: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while !raw.is_empty() {
            let head = frame::parse_head(raw).unwrap().unwrap();
            assert_eq!(head.opcode, frame::BINARY);
            let mut payload = raw[head.size..head.size + head.len as usize].to_vec();
            if let Some(mask) = head.mask {
                frame::apply_mask(&mut payload, mask, 0);
            }
            out.push(payload);
            raw = &raw[head.size + head.len as usize..];
        }
        out
    }

    const STREAM: &[u8] = b"01r0001005greet00000004\"Bo\"n004ping00000000R00010000000a\"Hello Bo\"";

    fn cut_as_gotalk_js_reads() -> Vec<Vec<u8>> {
        [
            &b"01"[..],
            b"r0001005greet00000004",
            b"\"Bo\"",
            b"n004ping00000000",
            b"R00010000000a",
            b"\"Hello Bo\"",
        ]
        .map(<[u8]>::to_vec)
        .to_vec()
    }

    /// What `socket` sends of `stream` written `step` bytes at a time, and flushed.
    async fn sent(
        mut socket: WsSocket<tokio::io::DuplexStream>,
        mut theirs: tokio::io::DuplexStream,
        stream: &[u8],
        step: usize,
    ) -> Vec<u8> {
        for part in stream.chunks(step) {
            socket.write_all(part).await.unwrap();
        }
        socket.flush().await.unwrap();
        drop(socket);
        let mut raw = Vec::new();
        theirs.read_to_end(&mut raw).await.unwrap();
        raw
    }

    #[tokio::test]
    async fn the_stream_is_cut_where_gotalk_js_needs_however_it_is_written() {
        for step in [1, 2, 3, 7, STREAM.len()] {
            let (ours, theirs) = tokio::io::duplex(1 << 16);
            let socket = WsSocket::new(ours, Role::Client, 1 << 20);
            let raw = sent(socket, theirs, STREAM, step).await;
            assert_eq!(
                frames(&raw),
                cut_as_gotalk_js_reads(),
                "written {step} at a time"
            );
        }
    }

    /// A socket of `role` over `io` whose peer has announced that it reads a stream.
    fn batching(io: tokio::io::DuplexStream, role: Role) -> WsSocket<tokio::io::DuplexStream> {
        let socket = WsSocket::new(io, role, 1 << 20);
        socket.writer.framing().set();
        socket
    }

    #[tokio::test]
    async fn once_the_peer_reads_a_stream_small_pieces_share_frames_and_large_ones_do_not() {
        let big = vec![b'x'; 20_000];
        let mut stream = STREAM.to_vec();
        stream.extend_from_slice(format!("r0002005bytes{:08x}", big.len()).as_bytes());
        stream.extend_from_slice(&big);
        // 300 small messages: more than one batch holds.
        for i in 0..300 {
            stream.extend_from_slice(format!("n004ping{:08x}", i % 16).as_bytes());
            stream.extend_from_slice(&b"0123456789abcdef"[..i % 16]);
        }
        for step in [1, 7, 1000, stream.len()] {
            let (ours, theirs) = tokio::io::duplex(1 << 20);
            let raw = sent(batching(ours, Role::Client), theirs, &stream, step).await;
            let frames = frames(&raw);
            assert_eq!(frames.concat(), stream, "written {step} at a time");
            assert!(frames
                .iter()
                .all(|f| (f.len() <= BATCH_MAX && !f.is_empty()) || f == &big));
            assert!(
                frames.contains(&big),
                "the large payload has a frame of its own"
            );
            if step == stream.len() {
                // Written at once: the version and the small messages before the large
                // payload in one frame, then the payload, then batches as full as allowed.
                assert_eq!(frames[0], [STREAM, b"r0002005bytes00004e20"].concat());
                assert_eq!(frames[1], big);
                assert_eq!(frames[2].len(), BATCH_MAX);
                assert!(frames.len() < 10, "{} frames", frames.len());
            }
        }
    }

    #[tokio::test]
    async fn a_batch_under_126_bytes_has_the_short_head() {
        for role in [Role::Client, Role::Server] {
            let (ours, theirs) = tokio::io::duplex(1 << 16);
            let raw = sent(batching(ours, role), theirs, b"01n004ping00000000", 18).await;
            let head = frame::parse_head(&raw).unwrap().unwrap();
            assert_eq!(
                (head.len, head.size),
                (18, if role == Role::Client { 6 } else { 2 })
            );
            assert_eq!(raw.len(), head.size + 18, "{role:?}");
        }
    }

    #[tokio::test]
    async fn batched_frames_read_back_whatever_the_read_size() {
        for (from, to) in [(Role::Client, Role::Server), (Role::Server, Role::Client)] {
            let (a, b) = tokio::io::duplex(64);
            one_way(batching(a, from), WsSocket::new(b, to, 1 << 20)).await;
        }
    }

    #[tokio::test]
    async fn what_a_client_writes_a_server_reads_whatever_the_read_size() {
        let (client, server) = tokio::io::duplex(64);
        let client = WsSocket::new(client, Role::Client, 1 << 20);
        let server = WsSocket::new(server, Role::Server, 1 << 20);
        one_way(client, server).await;
    }

    #[tokio::test]
    async fn what_a_server_writes_a_client_reads_through_a_socket_often_full() {
        // The server's large payloads go from the caller's buffers; a socket of 64 bytes
        // takes them a little at a time, and what it does not take is kept in order.
        let (client, server) = tokio::io::duplex(64);
        let client = WsSocket::new(client, Role::Client, 1 << 20);
        let server = WsSocket::new(server, Role::Server, 1 << 20);
        one_way(server, client).await;
    }

    /// Sends a stream with small and large messages from `from` to `to`, in writes of
    /// several slices, and reads it in reads of every size.
    async fn one_way(
        mut from: WsSocket<tokio::io::DuplexStream>,
        mut to: WsSocket<tokio::io::DuplexStream>,
    ) {
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut stream = STREAM.to_vec();
        stream.extend_from_slice(format!("r0002005bytes{:08x}", big.len()).as_bytes());
        stream.extend_from_slice(&big);
        stream.extend_from_slice(format!("r0003005bytes{:08x}", big.len()).as_bytes());
        stream.extend_from_slice(&big);
        let sent = stream.clone();
        let writer = tokio::spawn(async move {
            // Several slices in each write, as the connection writes.
            let mut rest = &sent[..];
            while !rest.is_empty() {
                let (a, b) = rest.split_at(rest.len().min(40_000));
                let (b, c) = b.split_at(b.len().min(70_000));
                let slices = [
                    io::IoSlice::new(a),
                    io::IoSlice::new(b),
                    io::IoSlice::new(c),
                ];
                let n = from.write_vectored(&slices).await.unwrap();
                rest = &rest[n..];
            }
            from.shutdown().await.unwrap();
        });
        let mut got = Vec::new();
        let mut buf = vec![0; 333];
        loop {
            // Reads of every size, below and above the room frames need.
            let size = 1 + got.len() % buf.len();
            let n = to.read(&mut buf[..size]).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        writer.await.unwrap();
        assert!(got == stream, "{} of {} bytes", got.len(), stream.len());
    }
}
