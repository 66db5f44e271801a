//! Reading: frames in, their data out as one byte stream, unmasked and stripped of heads
//! in the caller's own buffer.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::io::{AsyncRead, ReadBuf};

use super::super::frame::{self, apply_mask, parse_head, FrameError, Head, MAX_CONTROL, MAX_HEAD};

/// The most bytes kept between reads: a head and a control frame's payload, cut short.
const CARRY: usize = MAX_HEAD + MAX_CONTROL;
/// A frame at least this large is read as a large one (see `poll_read_io`).
const LARGE: u64 = 16 * 1024;
/// The read that takes the head of a frame after a large one.
const HEAD_READ: usize = 4 * 1024;

/// What a read found besides data, for the writer to answer.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Control {
    /// A ping, to answer with a pong of the same payload.
    Ping(Vec<u8>),
    /// The peer's close, with its code (to echo), if it gave one.
    Close(Option<u16>),
    /// The peer broke the rules: close with this code.
    Fail(u16),
}

/// The reading half's state. It owns no buffer: a read goes into the caller's buffer, where
/// payload bytes are unmasked and moved over the heads between them.
pub(super) struct FrameReader {
    /// Frames must be masked (we are the server) or must not (we are the client).
    want_masked: bool,
    max_message: u64,
    /// Bytes of an incomplete head (or control frame) that ended the last read.
    carry: [u8; CARRY],
    carry_len: usize,
    /// The data frame being read: its payload bytes still to come, and its mask.
    frame_left: u64,
    mask: Option<[u8; 4]>,
    mask_at: usize,
    /// The last data frame was large.
    large_frames: bool,
    /// A data message has begun and its final frame has not come.
    in_message: bool,
    message_len: u64,
    /// The peer closed (a close frame, or the end of the stream).
    pub(super) eof: bool,
    /// An error found after some data was delivered, reported by the next read.
    error: Option<FrameError>,
}

impl FrameReader {
    pub(super) fn new(want_masked: bool, max_message: usize) -> Self {
        Self {
            want_masked,
            max_message: max_message as u64,
            carry: [0; CARRY],
            carry_len: 0,
            frame_left: 0,
            mask: None,
            mask_at: 0,
            large_frames: false,
            in_message: false,
            message_len: 0,
            eof: false,
            error: None,
        }
    }

    /// The largest message taken from the peer.
    pub(super) fn max_message(&self) -> usize {
        usize::try_from(self.max_message).unwrap_or(usize::MAX)
    }

    /// The least room a read needs: a carried control frame and a little more.
    pub(super) const MIN_ROOM: usize = 2 * CARRY;

    /// Reads from `io` into `buf` (which has at least [`MIN_ROOM`](Self::MIN_ROOM) bytes
    /// of room) until some data is delivered, the stream ends, or `io` has nothing.
    /// Control frames found are passed to `control`.
    pub(super) fn poll_read<S: AsyncRead + ?Sized>(
        &mut self,
        mut io: Pin<&mut S>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
        control: &mut impl FnMut(Control),
    ) -> Poll<io::Result<()>> {
        debug_assert!(buf.remaining() >= Self::MIN_ROOM);
        let start = buf.filled().len();
        loop {
            if let Some(e) = self.error.take() {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
            }
            if self.eof {
                return Poll::Ready(Ok(()));
            }
            // What was carried comes first, then what the stream has.
            buf.put_slice(&self.carry[..self.carry_len]);
            let before = buf.filled().len();
            match self.poll_read_io(io.as_mut(), cx, buf) {
                Poll::Ready(Ok(())) => {}
                other => {
                    // Still carried: the copy is undone (the caller ignores what is past
                    // `filled`).
                    buf.set_filled(start);
                    return other;
                }
            }
            if buf.filled().len() == before {
                // The end of the stream: a frame cut short is dropped with it.
                buf.set_filled(start);
                self.carry_len = 0;
                self.eof = true;
                return Poll::Ready(Ok(()));
            }
            self.carry_len = 0;
            let window = &mut buf.filled_mut()[start..];
            let delivered = match self.strip(window, control) {
                Ok(delivered) => delivered,
                Err((delivered, e)) => {
                    control(Control::Fail(e.close_code()));
                    self.eof = true;
                    self.error = Some(e);
                    delivered
                }
            };
            buf.set_filled(start + delivered);
            if delivered > 0 {
                // An end or an error found after the data is reported by the next read.
                return Poll::Ready(Ok(()));
            }
        }
    }

    /// One read from `io` into `buf`. After a large frame the next is likely large too,
    /// and the bytes read after its head must move over the head: that read is kept short,
    /// so that little moves and the rest of the frame is read where it belongs.
    fn poll_read_io<S: AsyncRead + ?Sized>(
        &self,
        io: Pin<&mut S>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !(self.large_frames && self.frame_left == 0 && buf.remaining() > HEAD_READ) {
            return io.poll_read(cx, buf);
        }
        let mut part = ReadBuf::new(buf.initialize_unfilled_to(HEAD_READ));
        let read = io.poll_read(cx, &mut part);
        let n = part.filled().len();
        buf.advance(n);
        read
    }

    /// Turns the frames in `window` into their data, moved to its front; returns the data's
    /// length. An incomplete head at the end is carried to the next read.
    fn strip(
        &mut self,
        window: &mut [u8],
        control: &mut impl FnMut(Control),
    ) -> Result<usize, (usize, FrameError)> {
        let (mut read, mut delivered) = (0, 0);
        while read < window.len() {
            if self.frame_left > 0 {
                let n = (window.len() - read).min(self.frame_left.try_into().unwrap_or(usize::MAX));
                if let Some(mask) = self.mask {
                    apply_mask(&mut window[read..read + n], mask, self.mask_at);
                }
                window.copy_within(read..read + n, delivered);
                (read, delivered) = (read + n, delivered + n);
                self.frame_left -= n as u64;
                self.mask_at = (self.mask_at + n) % 4;
                continue;
            }
            if let Some((size, len)) = self.small_whole_frame(&window[read..]) {
                // The common case, short: a small unfragmented data frame, all here.
                let start = read + size;
                if size == 6 {
                    let mask = [
                        window[read + 2],
                        window[read + 3],
                        window[read + 4],
                        window[read + 5],
                    ];
                    apply_mask(&mut window[start..start + len], mask, 0);
                }
                window.copy_within(start..start + len, delivered);
                (read, delivered) = (start + len, delivered + len);
                continue;
            }
            let rest = &window[read..];
            let head = match parse_head(rest) {
                Ok(Some(head)) => head,
                Ok(None) => {
                    self.carry(rest);
                    break;
                }
                Err(e) => return Err((delivered, e)),
            };
            if head.mask.is_some() != self.want_masked {
                let want_masked = self.want_masked;
                return Err((delivered, FrameError::Masking { want_masked }));
            }
            if head.is_control() {
                let end = head.size + head.len as usize;
                if rest.len() < end {
                    self.carry(rest);
                    break;
                }
                let payload = &mut window[read + head.size..read + end];
                if let Some(mask) = head.mask {
                    apply_mask(payload, mask, 0);
                }
                read += end;
                match head.opcode {
                    frame::PING => control(Control::Ping(payload.to_vec())),
                    frame::CLOSE => {
                        let code = payload.first_chunk::<2>().map(|c| u16::from_be_bytes(*c));
                        control(Control::Close(code));
                        self.eof = true;
                        return Ok(delivered);
                    }
                    _ => {} // A pong: nothing to do.
                }
                continue;
            }
            self.begin(&head).map_err(|e| (delivered, e))?;
            read += head.size;
        }
        Ok(delivered)
    }

    /// The head size and payload length of a frame at the front of `rest` that is a whole
    /// binary or text message of under 126 bytes, masked as it should be, and all here;
    /// `None` for anything else (which [`parse_head`] then reads and checks).
    #[inline]
    fn small_whole_frame(&self, rest: &[u8]) -> Option<(usize, usize)> {
        let [b0, b1, ..] = *rest else {
            return None;
        };
        let (masked, len) = (b1 & 0x80 != 0, usize::from(b1 & 0x7F));
        let size = if masked { 6 } else { 2 };
        let fits = (b0 == 0x82 || b0 == 0x81)
            && len < 126
            && masked == self.want_masked
            && !self.in_message
            && rest.len() >= size + len
            && len as u64 <= self.max_message;
        fits.then_some((size, len))
    }

    /// Starts reading a data frame whose head was read.
    fn begin(&mut self, head: &Head) -> Result<(), FrameError> {
        let continues = head.opcode == frame::CONTINUATION;
        if continues != self.in_message {
            return Err(FrameError::Fragments);
        }
        self.message_len = if continues { self.message_len } else { 0 } + head.len;
        if self.message_len > self.max_message {
            let limit = self.max_message as usize;
            return Err(FrameError::TooBig { limit });
        }
        self.in_message = !head.fin;
        self.frame_left = head.len;
        self.large_frames = head.len >= LARGE;
        self.mask = head.mask;
        self.mask_at = 0;
        Ok(())
    }

    fn carry(&mut self, rest: &[u8]) {
        // An incomplete head is shorter than `MAX_HEAD`, an incomplete control frame
        // shorter than `CARRY`: it fits.
        let n = rest.len().min(CARRY);
        self.carry[..n].copy_from_slice(&rest[..n]);
        self.carry_len = n;
    }
}
