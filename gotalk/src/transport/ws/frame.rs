//! WebSocket frames (RFC 6455 section 5): their heads, read and written, and masking.

use std::fmt;

/// Opcodes (RFC 6455 5.2).
pub(super) const CONTINUATION: u8 = 0x0;
pub(super) const TEXT: u8 = 0x1;
pub(super) const BINARY: u8 = 0x2;
pub(super) const CLOSE: u8 = 0x8;
pub(super) const PING: u8 = 0x9;
pub(super) const PONG: u8 = 0xA;

/// The longest head: 2 bytes, a 64-bit length and a mask.
pub(super) const MAX_HEAD: usize = 14;
/// The longest payload of a control frame (RFC 6455 5.5).
pub(super) const MAX_CONTROL: usize = 125;

/// Close codes (RFC 6455 7.4.1).
pub(super) const NORMAL: u16 = 1000;
pub(super) const PROTOCOL_ERROR: u16 = 1002;
pub(super) const TOO_BIG: u16 = 1009;

/// A frame's head, read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Head {
    pub fin: bool,
    pub opcode: u8,
    pub mask: Option<[u8; 4]>,
    pub len: u64,
    /// The bytes the head took.
    pub size: usize,
}

impl Head {
    pub fn is_control(&self) -> bool {
        self.opcode & 0x8 != 0
    }
}

/// A frame the peer should not have sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum FrameError {
    /// A reserved bit set: we negotiate no extension (e.g. compression).
    ReservedBits,
    /// An opcode RFC 6455 does not define.
    UnknownOpcode(u8),
    /// A control frame longer than 125 bytes or fragmented.
    BadControl,
    /// A client frame without a mask, or a server frame with one.
    Masking { want_masked: bool },
    /// A continuation frame with no message to continue, or a new message before the
    /// last one ended.
    Fragments,
    /// A message longer than the limit.
    TooBig { limit: usize },
}

impl FrameError {
    /// The close code that answers it.
    pub fn close_code(&self) -> u16 {
        match self {
            Self::TooBig { .. } => TOO_BIG,
            _ => PROTOCOL_ERROR,
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ReservedBits => f.write_str("websocket frame with reserved bits set"),
            Self::UnknownOpcode(op) => write!(f, "websocket frame with unknown opcode {op:#x}"),
            Self::BadControl => {
                f.write_str("websocket control frame fragmented or longer than 125 bytes")
            }
            Self::Masking { want_masked: true } => {
                f.write_str("websocket frame from a client without a mask")
            }
            Self::Masking { want_masked: false } => {
                f.write_str("websocket frame from a server with a mask")
            }
            Self::Fragments => f.write_str("websocket fragments out of order"),
            Self::TooBig { limit } => {
                write!(
                    f,
                    "websocket message larger than the limit of {limit} bytes"
                )
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// Reads a head from the start of `buf`: `None` while it is incomplete.
#[inline]
pub(super) fn parse_head(buf: &[u8]) -> Result<Option<Head>, FrameError> {
    let [b0, b1, rest @ ..] = buf else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(FrameError::ReservedBits);
    }
    let (fin, opcode, masked) = (b0 & 0x80 != 0, b0 & 0x0F, b1 & 0x80 != 0);
    if !matches!(opcode, CONTINUATION | TEXT | BINARY | CLOSE | PING | PONG) {
        return Err(FrameError::UnknownOpcode(opcode));
    }
    let (len, extended) = match b1 & 0x7F {
        126 => match rest.first_chunk::<2>() {
            Some(n) => (u64::from(u16::from_be_bytes(*n)), 2),
            None => return Ok(None),
        },
        // The most significant bit must be 0; taken as is, such a length is over any
        // limit and refused as too big.
        127 => match rest.first_chunk::<8>() {
            Some(n) => (u64::from_be_bytes(*n), 8),
            None => return Ok(None),
        },
        n => (u64::from(n), 0),
    };
    let mask = if masked {
        match rest[extended..].first_chunk::<4>() {
            Some(m) => Some(*m),
            None => return Ok(None),
        }
    } else {
        None
    };
    let head = Head {
        fin,
        opcode,
        mask,
        len,
        size: 2 + extended + if masked { 4 } else { 0 },
    };
    if head.is_control() && (!fin || len > MAX_CONTROL as u64) {
        return Err(FrameError::BadControl);
    }
    Ok(Some(head))
}

/// Writes the head of a final frame into `out`; returns its size.
#[inline]
pub(super) fn write_head(
    out: &mut [u8; MAX_HEAD],
    opcode: u8,
    mask: Option<[u8; 4]>,
    len: usize,
) -> usize {
    out[0] = 0x80 | opcode;
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut size = if len < 126 {
        out[1] = mask_bit | len as u8;
        2
    } else if let Ok(len) = u16::try_from(len) {
        out[1] = mask_bit | 126;
        out[2..4].copy_from_slice(&len.to_be_bytes());
        4
    } else {
        out[1] = mask_bit | 127;
        out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    if let Some(mask) = mask {
        out[size..size + 4].copy_from_slice(&mask);
        size += 4;
    }
    size
}

/// XORs `data` with the mask, starting at byte `offset` of the frame's payload.
#[inline]
pub(super) fn apply_mask(data: &mut [u8], mask: [u8; 4], offset: usize) {
    let key = rotated(mask, offset);
    if data.len() >= BLOCK {
        return mask_long(data, key);
    }
    // Short (a header, a small payload): four bytes at a time, then what is left.
    let mut words = data.chunks_exact_mut(4);
    for four in &mut words {
        xor_four(four, key);
    }
    for (byte, k) in words.into_remainder().iter_mut().zip(key) {
        *byte ^= k;
    }
}

/// [`apply_mask`] for `BLOCK` bytes or more, with the key already rotated: with vectors
/// twice as wide where the CPU has them (x86-64's baseline has 16-byte vectors only).
#[inline(never)]
fn mask_long(data: &mut [u8], key: [u8; 4]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { avx2::mask(data, key) };
    }
    mask_blocks(data, key);
}

/// The loop of [`mask_long`], inlined into each of its versions.
#[inline(always)]
fn mask_blocks(data: &mut [u8], key: [u8; 4]) {
    // Eight bytes at a time (the mask twice), in blocks of a fixed size that the compiler
    // turns into vector instructions.
    let wide = widen(key);
    let mut blocks = data.chunks_exact_mut(BLOCK);
    for block in &mut blocks {
        for bytes in block.chunks_exact_mut(8) {
            xor_word(bytes, wide);
        }
    }
    // What is left: under `BLOCK` bytes, at a multiple of four, so the key lines up.
    let mut words = blocks.into_remainder().chunks_exact_mut(4);
    for four in &mut words {
        xor_four(four, key);
    }
    for (byte, k) in words.into_remainder().iter_mut().zip(key) {
        *byte ^= k;
    }
}

/// The key twice, to mask eight bytes at a time.
#[inline(always)]
fn widen(key: [u8; 4]) -> u64 {
    u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ])
}

/// XORs four bytes with the key.
#[inline(always)]
fn xor_four(bytes: &mut [u8], key: [u8; 4]) {
    let word = u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    bytes.copy_from_slice(&(word ^ u32::from_ne_bytes(key)).to_ne_bytes());
}

/// XORs eight bytes with `wide`.
#[inline(always)]
fn xor_word(bytes: &mut [u8], wide: u64) {
    let mut word = [0; 8];
    word.copy_from_slice(bytes);
    bytes.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
}

/// Appends `data` to `out` masked, as [`apply_mask`] would leave it. Where the CPU has
/// AVX2, whole blocks are masked as they are copied, one pass instead of two; with
/// 16-byte vectors that pays only for large payloads, so elsewhere the bytes are copied,
/// then masked in place (`BENCHMARKS.md`, WebSocket).
pub(super) fn extend_masked(out: &mut bytes::BytesMut, data: &[u8], mask: [u8; 4], offset: usize) {
    let fused = extend_masked_blocks(out, data, rotated(mask, offset));
    let at = out.len();
    out.extend_from_slice(&data[fused..]);
    // `fused` is a multiple of four: the mask lines up as it did at `offset`.
    apply_mask(&mut out[at..], mask, offset);
}

/// Appends the whole blocks at the front of `data` masked with `key`, where the CPU can do
/// it in one pass; returns how many bytes it appended.
fn extend_masked_blocks(out: &mut bytes::BytesMut, data: &[u8], key: [u8; 4]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        let fused = data.len() / BLOCK * BLOCK;
        if fused > 0 {
            out.reserve(data.len());
            let at = out.len();
            let room = &mut out.spare_capacity_mut()[..fused];
            // SAFETY: the CPU has AVX2 (checked above), and `mask_into` writes every byte
            // of `room` (a whole number of blocks), which lies within the capacity.
            unsafe {
                avx2::mask_into(room, &data[..fused], key);
                out.set_len(at + fused);
            }
        }
        return fused;
    }
    let _ = (out, data, key);
    0
}

/// Masks `src`, a whole number of blocks, into `dst` of the same length.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn mask_into_blocks(dst: &mut [std::mem::MaybeUninit<u8>], src: &[u8], key: [u8; 4]) {
    let wide = widen(key);
    for (dst, src) in dst.chunks_exact_mut(BLOCK).zip(src.chunks_exact(BLOCK)) {
        for (dst, src) in dst.chunks_exact_mut(8).zip(src.chunks_exact(8)) {
            let mut word = [0; 8];
            word.copy_from_slice(src);
            let masked = (u64::from_ne_bytes(word) ^ wide).to_ne_bytes();
            for (byte, value) in dst.iter_mut().zip(masked) {
                byte.write(value);
            }
        }
    }
}

/// The masking loops compiled for AVX2.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::mem::MaybeUninit;

    /// [`super::mask_blocks`].
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn mask(data: &mut [u8], key: [u8; 4]) {
        super::mask_blocks(data, key);
    }

    /// [`super::mask_into_blocks`].
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn mask_into(dst: &mut [MaybeUninit<u8>], src: &[u8], key: [u8; 4]) {
        super::mask_into_blocks(dst, src, key);
    }
}

/// The block masks are applied in: a loop over a block of fixed size compiles to vector
/// instructions.
const BLOCK: usize = 64;

/// The mask as it applies from byte `offset` of a payload on: its bytes rotated left.
#[inline]
fn rotated(mask: [u8; 4], offset: usize) -> [u8; 4] {
    let shift = 8 * (offset % 4) as u32;
    u32::from_le_bytes(mask).rotate_right(shift).to_le_bytes()
}

/// The masks of a client's frames. RFC 6455 asks for masks an attacker cannot predict, so
/// that a page's script cannot steer the bytes intermediaries see; a fast generator
/// seeded from the system's randomness (std's hasher keys) for each socket is enough for
/// that.
pub(super) struct Masks(u64);

impl Masks {
    pub(super) fn new() -> Self {
        use std::hash::{BuildHasher, RandomState};
        Self(RandomState::new().hash_one(std::time::SystemTime::now()) | 1)
    }

    /// The next mask (xorshift64*).
    pub(super) fn next(&mut self) -> [u8; 4] {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        ((x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32).to_ne_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_round_trip_at_every_length_encoding() {
        for len in [0, 1, 125, 126, 65_535, 65_536, 4 << 20] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let mut out = [0; MAX_HEAD];
                let size = write_head(&mut out, BINARY, mask, len);
                let head = parse_head(&out[..size]).unwrap().unwrap();
                assert_eq!(
                    head,
                    Head {
                        fin: true,
                        opcode: BINARY,
                        mask,
                        len: len as u64,
                        size
                    }
                );
                // Every shorter prefix is incomplete, not an error.
                for cut in 0..size {
                    assert_eq!(parse_head(&out[..cut]), Ok(None), "len {len} cut {cut}");
                }
            }
        }
    }

    #[test]
    fn bad_heads_are_named() {
        assert_eq!(parse_head(&[0xC2, 0]), Err(FrameError::ReservedBits));
        assert_eq!(parse_head(&[0x83, 0]), Err(FrameError::UnknownOpcode(3)));
        // A ping that is fragmented, and one that is too long.
        assert_eq!(parse_head(&[0x09, 0]), Err(FrameError::BadControl));
        assert_eq!(
            parse_head(&[0x89, 126, 0, 126]),
            Err(FrameError::BadControl)
        );
    }

    #[test]
    fn masking_at_any_offset_matches_the_rfc_definition() {
        let mask = [0x37, 0xFA, 0x21, 0x3D];
        let data: Vec<u8> = (0..10_000).map(|i| (i * 7 % 251) as u8).collect();
        for offset in 0..4 {
            for len in [0, 1, 7, 8, 9, 63, 64, 65, 100, 4095, 4096, 4097, 10_000] {
                let mut masked = data[..len].to_vec();
                apply_mask(&mut masked, mask, offset);
                for (i, byte) in masked.iter().enumerate() {
                    assert_eq!(*byte, data[i] ^ mask[(offset + i) % 4]);
                }
                let mut extended = bytes::BytesMut::from(&b"x"[..]);
                extend_masked(&mut extended, &data[..len], mask, offset);
                assert_eq!(&extended[1..], &masked[..]);
                // The baseline loop too, which a CPU with AVX2 does not run otherwise.
                let mut baseline = data[..len].to_vec();
                mask_blocks(&mut baseline, rotated(mask, offset));
                assert_eq!(baseline, masked);
            }
        }
    }

    #[test]
    fn masks_differ() {
        let mut source = Masks::new();
        let masks: std::collections::HashSet<_> = (0..1000).map(|_| source.next()).collect();
        assert!(masks.len() > 990, "{}", masks.len());
    }
}
