//! Writing: the byte stream cut into frames where gotalk.js needs the cuts (the version,
//! each header, each non-empty payload: PROTOCOL.md 4), masked when we are the client.
//! Once the peer has announced that it reads messages as one byte stream (ours do), the
//! version, headers and small payloads go together in frames of up to `BATCH_MAX` bytes
//! instead: one head and one mask for many messages. A large payload keeps a frame of its
//! own either way, so that it is written and read where it lies.

use std::{
    io,
    pin::Pin,
    task::{ready, Context, Poll},
};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncWrite;

use super::super::frame::{
    self, apply_mask, extend_masked, write_head, Masks, MAX_CONTROL, MAX_HEAD,
};
use crate::{
    conn::{PeerReadsStream, BATCH_MAX},
    wire::{self, ParseError},
};

/// Framed bytes not yet sent are capped at this before writes wait for the socket. The
/// connection counts them as written (no budget does), so the cap is what a peer that
/// does not read can make each WebSocket hold here: a read's size, which takes one system
/// call to send.
const MAX_PENDING: usize = 64 * 1024;
/// A buffer of framed bytes larger than this is freed once sent, so that a connection
/// that once sent a large payload does not keep its room.
const KEEP: usize = 16 * 1024;
/// A part of a server's frame at least this large is written from the caller's buffer.
const DIRECT: usize = 16 * 1024;
/// The most such parts one write takes.
const MAX_DIRECT: usize = 32;

/// Where the outgoing byte stream is, between cuts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cut {
    /// The two bytes of the version, one message.
    Version,
    /// A message header, one message.
    Header,
}

/// The room a batch's head is given: its length in two bytes (the batch is under 64 KiB)
/// and a mask.
const BATCH_HEAD: usize = 4 + 4;

/// The writing half's state.
pub(super) struct FrameWriter {
    /// We are the client: every frame is masked.
    masked: bool,
    /// Set by the connection when the peer announces that it reads a stream.
    peer_reads_stream: PeerReadsStream,
    /// It has: small pieces go into batches.
    batching: bool,
    /// Where the open batch's head goes in `out`: the batch runs to the end of `out`, and
    /// its head is written, and its bytes masked, when it closes.
    batch_at: Option<usize>,
    /// Bytes of a small payload still to go into batches.
    batch_left: usize,
    /// Framed bytes to send, in order.
    out: BytesMut,
    /// The next cut, when no frame is open.
    cut: Cut,
    /// Bytes of the version or of a header, gathered until it is whole.
    gathering: BytesMut,
    /// The payload length declared by the last header, still to frame.
    payload_due: usize,
    /// The frame whose head is in `out` and whose bytes are still coming, with its mask.
    frame_left: usize,
    mask: [u8; 4],
    mask_at: usize,
    masks: Masks,
    /// Control frames waiting for the open frame to end.
    control: BytesMut,
    /// The pong for the latest ping, framed, waiting for everything before it to be sent.
    /// RFC 6455 (5.5.3) lets a pong answer only the most recent ping: a peer that pings
    /// without reading gets one pong, not one per ping piling up here.
    pong: BytesMut,
    /// Our close frame is queued: nothing may follow it.
    closed: bool,
}

impl FrameWriter {
    pub(super) fn new(masked: bool, peer_reads_stream: PeerReadsStream) -> Self {
        Self {
            masked,
            peer_reads_stream,
            batching: false,
            batch_at: None,
            batch_left: 0,
            out: BytesMut::new(),
            cut: Cut::Version,
            gathering: BytesMut::new(),
            payload_due: 0,
            frame_left: 0,
            mask: [0; 4],
            mask_at: 0,
            masks: Masks::new(),
            control: BytesMut::new(),
            pong: BytesMut::new(),
            closed: false,
        }
    }

    /// The switch the connection sets when the peer reads a stream.
    pub(super) fn framing(&self) -> &PeerReadsStream {
        &self.peer_reads_stream
    }

    /// Takes bytes of the stream, as many as fit under the cap. They are sent by
    /// [`poll_send`](Self::poll_send) (a flush), or here once the cap is reached; a
    /// server's large payloads go here, from the caller's buffers, with what is framed
    /// before each, in one system call.
    pub(super) fn poll_write<S: AsyncWrite + ?Sized>(
        &mut self,
        mut io: Pin<&mut S>,
        cx: &mut Context<'_>,
        slices: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.out.len() >= MAX_PENDING {
            ready!(self.poll_send(io.as_mut(), cx))?;
        }
        let mut took = 0;
        let mut direct = Vec::new();
        'slices: for slice in slices {
            let mut data = &slice[..];
            while !data.is_empty() {
                let n = if self.goes_direct(data) {
                    if direct.len() == MAX_DIRECT {
                        break 'slices;
                    }
                    let part = &data[..data.len().min(self.frame_left)];
                    self.close_batch();
                    direct.push((self.out.split().freeze(), part));
                    self.frame_left -= part.len();
                    if self.frame_left == 0 {
                        self.control_now();
                    }
                    part.len()
                } else if self.out.len() >= MAX_PENDING {
                    break 'slices;
                } else {
                    self.frame(data)?
                };
                (data, took) = (&data[n..], took + n);
            }
        }
        if !direct.is_empty() {
            self.write_direct(io, cx, &direct)?;
        }
        Poll::Ready(Ok(took))
    }

    /// Whether `data` goes to the socket from the caller's buffer rather than through
    /// ours: a large part of an unmasked frame (a server's) need not be copied.
    #[inline]
    fn goes_direct(&self, data: &[u8]) -> bool {
        !self.masked && self.frame_left.min(data.len()) >= DIRECT
    }

    /// Writes large parts of frames, each after what was framed before it, in one system
    /// call. What the socket does not take now is copied ahead of what `out` holds: the
    /// caller's buffers are not ours beyond this call (only a socket that is full, whose
    /// peer is slower than we are, costs the copy).
    fn write_direct<S: AsyncWrite + ?Sized>(
        &mut self,
        io: Pin<&mut S>,
        cx: &mut Context<'_>,
        direct: &[(Bytes, &[u8])],
    ) -> io::Result<()> {
        let pieces: Vec<&[u8]> = direct
            .iter()
            .flat_map(|(framed, part)| [&framed[..], part])
            .filter(|piece| !piece.is_empty())
            .collect();
        let slices: Vec<_> = pieces.iter().map(|piece| io::IoSlice::new(piece)).collect();
        let mut written = match io.poll_write_vectored(cx, &slices) {
            Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(e)) => return Err(e),
            Poll::Pending => 0,
        };
        let mut left = BytesMut::new();
        for piece in pieces {
            let sent = written.min(piece.len());
            written -= sent;
            left.extend_from_slice(&piece[sent..]);
        }
        if !left.is_empty() {
            left.extend_from_slice(&self.out);
            self.out = left;
        }
        Ok(())
    }

    /// Frames the front of `data`; returns how many bytes it took.
    fn frame(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.closed && self.frame_left == 0 {
            // RFC 6455 5.5.1: no data frame after a close frame.
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "websocket closed: no more data may be sent",
            ));
        }
        if self.frame_left > 0 {
            let n = data.len().min(self.frame_left);
            self.push_data(&data[..n]);
            self.frame_left -= n;
            if self.frame_left == 0 {
                self.control_now();
            }
            return Ok(n);
        }
        if self.batch_left > 0 {
            let n = data.len().min(self.batch_left);
            self.batch_push(&data[..n]);
            self.batch_left -= n;
            return Ok(n);
        }
        if self.payload_due > 0 {
            let len = std::mem::take(&mut self.payload_due);
            if self.batches(len) {
                self.batch_left = len;
            } else {
                self.open_frame(len);
            }
            return Ok(0);
        }
        // A version or a header goes as one frame: whole in `data`, or gathered over
        // writes that cut it.
        if self.gathering.is_empty() {
            if let Some(len) = self.measure(data)? {
                self.whole_frame(&data[..len]);
                // Its payload too, if it is here and not one to send from `data` itself.
                let due = self.payload_due;
                if due > 0 && data.len() - len >= due && (self.masked || due < DIRECT) {
                    self.payload_due = 0;
                    self.whole_frame(&data[len..len + due]);
                    return Ok(len + due);
                }
                return Ok(len);
            }
            self.gathering.extend_from_slice(data);
            return Ok(data.len());
        }
        let had = self.gathering.len();
        self.gathering.extend_from_slice(data);
        let gathered = std::mem::take(&mut self.gathering);
        match self.measure(&gathered)? {
            // Longer than what was gathered before, which was not whole.
            Some(len) => {
                self.whole_frame(&gathered[..len]);
                Ok(len - had)
            }
            None => {
                self.gathering = gathered;
                Ok(data.len())
            }
        }
    }

    /// Queues a version, a header or a payload that is all here: as a frame of its own,
    /// or in a batch.
    fn whole_frame(&mut self, bytes: &[u8]) {
        if self.batches(bytes.len()) {
            self.batch_push(bytes);
        } else {
            self.open_frame(bytes.len());
            self.push_data(bytes);
            self.frame_left = 0;
        }
        self.cut = Cut::Header;
        self.control_now();
    }

    /// Whether a piece of `len` bytes goes into a batch: the peer reads a stream and the
    /// piece is small.
    fn batches(&mut self, len: usize) -> bool {
        if !self.batching && self.peer_reads_stream.get() {
            self.batching = true;
        }
        self.batching && len < DIRECT
    }

    /// Appends bytes to batches: the open one while it has room, then new ones.
    fn batch_push(&mut self, mut bytes: &[u8]) {
        let room = self.batch_room();
        while !bytes.is_empty() {
            let at = match self.batch_at {
                Some(at) if self.out.len() - at - room < BATCH_MAX => at,
                _ => {
                    self.close_batch();
                    self.batch_at = Some(self.out.len());
                    self.out.extend_from_slice(&[0; BATCH_HEAD][..room]);
                    self.out.len() - room
                }
            };
            let n = bytes.len().min(BATCH_MAX - (self.out.len() - at - room));
            self.out.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
    }

    /// The room a batch's head is given.
    fn batch_room(&self) -> usize {
        if self.masked {
            BATCH_HEAD
        } else {
            BATCH_HEAD - 4
        }
    }

    /// Masks the open batch, if any, in one pass, and writes its head. A batch under 126
    /// bytes has a shorter head than the room it was given (RFC 6455 wants the shortest):
    /// its bytes move up to it.
    fn close_batch(&mut self) {
        let Some(at) = self.batch_at.take() else {
            return;
        };
        let room = self.batch_room();
        let data_at = at + room;
        let len = self.out.len() - data_at;
        let mask = self.masked.then(|| self.masks.next());
        if let Some(mask) = mask {
            apply_mask(&mut self.out[data_at..], mask, 0);
        }
        let mut head = [0; MAX_HEAD];
        let size = write_head(&mut head, frame::BINARY, mask, len);
        if size < room {
            let end = self.out.len();
            self.out.copy_within(data_at..end, at + size);
            self.out.truncate(end - (room - size));
        }
        self.out[at..at + size].copy_from_slice(&head[..size]);
    }

    /// The length of the version or header at the front of `bytes`, once it is whole.
    fn measure(&mut self, bytes: &[u8]) -> io::Result<Option<usize>> {
        match self.cut {
            Cut::Version => Ok((bytes.len() >= 2).then_some(2)),
            Cut::Header => match wire::frame_lengths(bytes) {
                Ok((header, payload)) => {
                    self.payload_due = payload;
                    Ok(Some(header))
                }
                Err(ParseError::Incomplete { .. }) => Ok(None),
                // Only our own connection writes here: this is a bug, not bad input.
                Err(ParseError::Invalid(e)) => {
                    Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
                }
            },
        }
    }

    /// Queues the head of a data frame of `len` bytes, which the next bytes fill.
    fn open_frame(&mut self, len: usize) {
        self.close_batch();
        self.mask = if self.masked {
            self.masks.next()
        } else {
            [0; 4]
        };
        let mut head = [0; MAX_HEAD];
        let size = write_head(
            &mut head,
            frame::BINARY,
            self.masked.then_some(self.mask),
            len,
        );
        self.out.extend_from_slice(&head[..size]);
        self.frame_left = len;
        self.mask_at = 0;
    }

    fn push_data(&mut self, data: &[u8]) {
        if self.masked {
            extend_masked(&mut self.out, data, self.mask, self.mask_at);
            self.mask_at = (self.mask_at + data.len()) % 4;
        } else {
            self.out.extend_from_slice(data);
        }
    }

    /// Queues a control frame: now if no data frame is open, else when it ends.
    pub(super) fn queue_control(&mut self, opcode: u8, payload: &[u8]) {
        if self.closed {
            return;
        }
        let payload = &payload[..payload.len().min(MAX_CONTROL)];
        let mask = self.masked.then(|| self.masks.next());
        let mut head = [0; MAX_HEAD];
        let size = write_head(&mut head, opcode, mask, payload.len());
        let into = if opcode == frame::PONG {
            // Replaces the pong still waiting, if any.
            self.pong.clear();
            &mut self.pong
        } else {
            if opcode == frame::CLOSE {
                // The pong waiting goes before the close: nothing may follow that.
                let pong = std::mem::take(&mut self.pong);
                self.control.extend_from_slice(&pong);
            }
            &mut self.control
        };
        let at = into.len();
        into.extend_from_slice(&head[..size]);
        into.extend_from_slice(payload);
        if let Some(mask) = mask {
            apply_mask(&mut into[at + size..], mask, 0);
        }
        self.closed = opcode == frame::CLOSE;
        self.control_now();
    }

    /// Moves waiting control frames to the output, if no data frame is open; the pong
    /// waiting only once everything before it is sent.
    fn control_now(&mut self) {
        if self.frame_left != 0 {
            return;
        }
        if !self.control.is_empty() {
            self.close_batch();
            self.out.extend_from_slice(&self.control);
            self.control.clear();
        }
        if !self.pong.is_empty() && self.out.is_empty() {
            std::mem::swap(&mut self.out, &mut self.pong);
        }
    }

    /// Whether our close frame is queued.
    pub(super) fn closed(&self) -> bool {
        self.closed
    }

    /// Sends every framed byte; `Pending` until the socket has taken them all.
    pub(super) fn poll_send<S: AsyncWrite + ?Sized>(
        &mut self,
        mut io: Pin<&mut S>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        self.close_batch();
        loop {
            while !self.out.is_empty() {
                match ready!(io.as_mut().poll_write(cx, &self.out))? {
                    0 => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    n => self.out.advance(n),
                }
            }
            // A pong that waited for what was before it goes now.
            self.control_now();
            if self.out.is_empty() {
                break;
            }
        }
        if self.out.capacity() > KEEP {
            self.out = BytesMut::new();
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frames in `raw`: opcode and payload (a server's, unmasked).
    fn frames(mut raw: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        while !raw.is_empty() {
            let head = frame::parse_head(raw).unwrap().unwrap();
            let end = head.size + head.len as usize;
            out.push((head.opcode, raw[head.size..end].to_vec()));
            raw = &raw[end..];
        }
        out
    }

    #[tokio::test]
    async fn pings_unanswered_while_output_waits_get_one_pong_for_the_latest() {
        let mut writer = FrameWriter::new(false, PeerReadsStream::default());
        writer.queue_control(frame::PONG, b"1");
        // The socket took nothing yet: these wait, and only the latest is kept.
        for n in 2..=1000 {
            writer.queue_control(frame::PONG, n.to_string().as_bytes());
        }
        assert!(writer.out.len() < 16, "one pong framed, not a thousand");
        let mut sent = Vec::new();
        std::future::poll_fn(|cx| writer.poll_send(std::pin::Pin::new(&mut sent), cx))
            .await
            .unwrap();
        assert_eq!(
            frames(&sent),
            [
                (frame::PONG, b"1".to_vec()),
                (frame::PONG, b"1000".to_vec())
            ]
        );
        // A pong still waiting goes before a close, and nothing after it.
        writer.queue_control(frame::PONG, b"a");
        writer.queue_control(frame::PONG, b"b");
        writer.queue_control(frame::CLOSE, &frame::NORMAL.to_be_bytes());
        writer.queue_control(frame::PONG, b"c");
        let mut sent = Vec::new();
        std::future::poll_fn(|cx| writer.poll_send(std::pin::Pin::new(&mut sent), cx))
            .await
            .unwrap();
        let opcodes: Vec<u8> = frames(&sent).into_iter().map(|(op, _)| op).collect();
        assert_eq!(opcodes, [frame::PONG, frame::PONG, frame::CLOSE]);
    }
}
