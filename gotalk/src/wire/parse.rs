//! Parsing: one message from the front of a buffer, without copying its payload.

use std::fmt;

use bytes::{Buf, Bytes, BytesMut};

use super::{hex, Message, MessageType, Name, ProtocolErrorCode, RequestId, VERSION};

/// Why [`parse`] returned no message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The buffer holds the start of a valid message; at least `needed` bytes in total are
    /// required before it can be parsed. Nothing was consumed.
    Incomplete {
        /// The total number of bytes the message needs at least.
        needed: usize,
    },
    /// The bytes are not a valid message: the connection must answer
    /// [`ProtocolErrorCode::INVALID`] and close.
    Invalid(Invalid),
}

/// What is wrong with an invalid message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// The type byte is not one of `rspRSEenhf`.
    UnknownType(u8),
    /// A number field holds a byte that is not a hex digit.
    NotHex {
        /// Which field, e.g. `payload size`.
        field: &'static str,
        /// The offending byte.
        byte: u8,
    },
    /// A name is not UTF-8.
    NameNotUtf8,
    /// The declared payload size is over the configured maximum.
    PayloadTooLarge {
        /// The declared size.
        size: u32,
        /// The configured maximum.
        max: u32,
    },
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownType(b) => {
                write!(
                    f,
                    "unknown message type {:?}",
                    char::from(*b).escape_default().to_string()
                )
            }
            Self::NotHex { field, byte } => write!(
                f,
                "{field} has a non-hex byte {:?}",
                char::from(*byte).escape_default().to_string()
            ),
            Self::NameNotUtf8 => f.write_str("name is not valid UTF-8"),
            Self::PayloadTooLarge { size, max } => {
                write!(
                    f,
                    "payload of {size} bytes is over the limit of {max} bytes"
                )
            }
        }
    }
}

impl std::error::Error for Invalid {}

impl From<Invalid> for ParseError {
    fn from(invalid: Invalid) -> Self {
        Self::Invalid(invalid)
    }
}

/// Why the peer's protocol version was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionError {
    /// Fewer than two bytes are buffered.
    Incomplete,
    /// The two bytes are not `01`.
    Unsupported([u8; 2]),
}

impl fmt::Display for VersionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Incomplete => f.write_str("incomplete protocol version"),
            // A TLS record (alert or handshake) where the version should be.
            Self::Unsupported([0x15 | 0x16, 0x03]) => {
                f.write_str("the peer speaks TLS, not plain Gotalk: connect with TLS")
            }
            Self::Unsupported(v) => write!(
                f,
                "unsupported protocol version {:?} (we speak \"01\")",
                String::from_utf8_lossy(v)
            ),
        }
    }
}

impl std::error::Error for VersionError {}

/// Checks the peer's two-byte protocol version at the start of `buf`.
pub fn parse_version(buf: &[u8]) -> Result<(), VersionError> {
    match buf {
        [a, b, ..] if [*a, *b] == *VERSION => Ok(()),
        [a, b, ..] => Err(VersionError::Unsupported([*a, *b])),
        _ => Err(VersionError::Incomplete),
    }
}

/// The fields of a header, located in the buffer.
#[cfg_attr(test, derive(Debug, PartialEq, Eq))]
struct Parsed {
    kind: MessageType,
    id: RequestId,
    /// Where the name is, as `start..end` in the buffer (empty when there is none).
    name: (usize, usize),
    wait_ms: u32,
    load: u16,
    time: u32,
    code: u32,
    header_len: usize,
    payload_len: usize,
}

/// Reads fields left to right, checking each as soon as its bytes are there so that
/// invalid input is rejected early instead of waiting for bytes that cannot help.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn need(&self, n: usize) -> Result<(), ParseError> {
        if self.buf.len() < self.pos + n {
            return Err(ParseError::Incomplete {
                needed: self.pos + n,
            });
        }
        Ok(())
    }

    fn id(&mut self) -> Result<RequestId, ParseError> {
        self.need(4)?;
        let mut id = [0; 4];
        id.copy_from_slice(&self.buf[self.pos..self.pos + 4]);
        self.pos += 4;
        Ok(id)
    }

    fn hex(&mut self, width: usize, field: &'static str) -> Result<u32, ParseError> {
        let end = (self.pos + width).min(self.buf.len());
        let available = &self.buf[self.pos..end];
        // One pass: a bad digit is an error even before the field is complete.
        let Some(value) = hex::parse(available) else {
            let byte = available
                .iter()
                .copied()
                .find(|b| !b.is_ascii_hexdigit())
                .unwrap_or_default();
            return Err(Invalid::NotHex { field, byte }.into());
        };
        self.need(width)?;
        self.pos += width;
        Ok(value)
    }

    fn name(&mut self) -> Result<(usize, usize), ParseError> {
        let len = self.hex(3, "name length")? as usize;
        self.need(len)?;
        let range = (self.pos, self.pos + len);
        let name = &self.buf[range.0..range.1];
        if !name.is_ascii() && std::str::from_utf8(name).is_err() {
            return Err(Invalid::NameNotUtf8.into());
        }
        self.pos += len;
        Ok(range)
    }

    fn size(&mut self, max_payload: u32) -> Result<usize, ParseError> {
        let size = self.hex(8, "payload size")?;
        if size > max_payload {
            return Err(Invalid::PayloadTooLarge {
                size,
                max: max_payload,
            }
            .into());
        }
        Ok(size as usize)
    }
}

/// Reads the first `N` bytes at `at`, if they are there.
#[inline]
fn field<const N: usize>(buf: &[u8], at: usize) -> Option<&[u8; N]> {
    buf.get(at..at + N)?.try_into().ok()
}

/// The common case quickly: the complete header of a request, a result or a notification,
/// with an ASCII name and a valid size. Anything else (an incomplete or invalid header,
/// the rarer types) is `None` and goes through [`Cursor`], which tells exactly what is
/// missing or wrong.
#[inline(always)]
fn parse_header_fast(buf: &[u8], max_payload: u32) -> Option<Parsed> {
    // The name as `start..end` (as `Cursor::name` has it; `0..0` for none), and where the
    // size follows.
    let kind = MessageType::from_byte(*buf.first()?)?;
    let (id, name, size_at) = match kind {
        MessageType::SingleRequest | MessageType::StreamRequest => {
            let len = hex::parse(field::<3>(buf, 5)?)? as usize;
            (*field::<4>(buf, 1)?, (8, 8 + len), 8 + len)
        }
        MessageType::SingleResult
        | MessageType::StreamResult
        | MessageType::ErrorResult
        | MessageType::StreamRequestPart => (*field::<4>(buf, 1)?, (0, 0), 5),
        MessageType::Notification => {
            let len = hex::parse(field::<3>(buf, 1)?)? as usize;
            ([0; 4], (4, 4 + len), 4 + len)
        }
        _ => return None,
    };
    if !buf.get(name.0..name.1)?.is_ascii() {
        return None;
    }
    let size = hex::parse8(field::<8>(buf, size_at)?)?;
    if size > max_payload {
        return None;
    }
    Some(Parsed {
        kind,
        id,
        name,
        wait_ms: 0,
        load: 0,
        time: 0,
        code: 0,
        header_len: size_at + 8,
        payload_len: size as usize,
    })
}

#[inline]
fn parse_header(buf: &[u8], max_payload: u32) -> Result<Parsed, ParseError> {
    if buf.is_empty() {
        // Between messages: what every read of a connection ends with.
        return Err(ParseError::Incomplete { needed: 1 });
    }
    match parse_header_fast(buf, max_payload) {
        Some(parsed) => Ok(parsed),
        None => parse_header_careful(buf, max_payload),
    }
}

/// Reads a header field by field, so that an incomplete header says how many bytes it
/// needs and an invalid one what is wrong with it as soon as the bytes show it.
#[cold]
#[inline(never)]
fn parse_header_careful(buf: &[u8], max_payload: u32) -> Result<Parsed, ParseError> {
    let Some(&type_byte) = buf.first() else {
        return Err(ParseError::Incomplete { needed: 1 });
    };
    let kind = MessageType::from_byte(type_byte).ok_or(Invalid::UnknownType(type_byte))?;
    let mut cur = Cursor { buf, pos: 1 };
    let mut p = Parsed {
        kind,
        id: [0; 4],
        name: (0, 0),
        wait_ms: 0,
        load: 0,
        time: 0,
        code: 0,
        header_len: 0,
        payload_len: 0,
    };
    match kind {
        MessageType::SingleRequest | MessageType::StreamRequest => {
            p.id = cur.id()?;
            p.name = cur.name()?;
            p.payload_len = cur.size(max_payload)?;
        }
        MessageType::StreamRequestPart
        | MessageType::SingleResult
        | MessageType::StreamResult
        | MessageType::ErrorResult => {
            p.id = cur.id()?;
            p.payload_len = cur.size(max_payload)?;
        }
        MessageType::RetryResult => {
            p.id = cur.id()?;
            p.wait_ms = cur.hex(8, "retry wait")?;
            p.payload_len = cur.size(max_payload)?;
        }
        MessageType::Notification => {
            p.name = cur.name()?;
            p.payload_len = cur.size(max_payload)?;
        }
        MessageType::Heartbeat => {
            p.load = cur.hex(4, "heartbeat load")? as u16;
            p.time = cur.hex(8, "heartbeat time")?;
        }
        MessageType::ProtocolError => p.code = cur.hex(8, "protocol error code")?,
    }
    p.header_len = cur.pos;
    Ok(p)
}

/// The header and payload lengths of the message at the front of `buf`, once its header
/// is complete (the payload need not be there yet). For transports that must know where
/// messages end, such as WebSocket, which sends headers and payloads as messages of
/// their own.
#[cfg(feature = "websocket")]
pub(crate) fn frame_lengths(buf: &[u8]) -> Result<(usize, usize), ParseError> {
    let p = parse_header(buf, u32::MAX)?;
    Ok((p.header_len, p.payload_len))
}

/// Parses one message from the front of `buf`, consuming it.
///
/// The payload (and name) are split off the buffer as `Bytes` without copying. A payload
/// declared larger than `max_payload` is [`Invalid`]; otherwise a message whose bytes have not
/// all arrived is [`ParseError::Incomplete`] and nothing is consumed or allocated.
pub fn parse(buf: &mut BytesMut, max_payload: u32) -> Result<Message, ParseError> {
    parse_with(buf, max_payload, |_| None)
}

/// [`parse`], where `known` may give the name from elsewhere (a reader that keeps the
/// names it sees often), which saves splitting it off the buffer.
#[inline]
pub(crate) fn parse_with(
    buf: &mut BytesMut,
    max_payload: u32,
    known: impl FnOnce(&str) -> Option<Name>,
) -> Result<Message, ParseError> {
    let p = parse_header(buf, max_payload)?;
    let total = p.header_len + p.payload_len;
    if buf.len() < total {
        return Err(ParseError::Incomplete { needed: total });
    }
    // The header is skipped in the buffer (the name split off it, unless `known` has it)
    // and what follows is the payload: one split for a message without a name.
    let (start, end) = p.name;
    let name = if end > start {
        // SAFETY: `parse_header` checked that the name is UTF-8 (else `NameNotUtf8`).
        let text = unsafe { std::str::from_utf8_unchecked(&buf[start..end]) };
        match known(text) {
            Some(name) => {
                buf.advance(p.header_len);
                name
            }
            None => {
                buf.advance(start);
                let name = buf.split_to(end - start).freeze();
                buf.advance(p.header_len - end);
                // SAFETY: UTF-8 (above), and its length came from three hex digits (at
                // most 4095).
                unsafe { Name::from_checked(name) }
            }
        }
    } else {
        buf.advance(p.header_len);
        // SAFETY: empty.
        unsafe { Name::from_checked(Bytes::new()) }
    };
    let payload = match p.payload_len {
        0 => Bytes::new(),
        len => buf.split_to(len).freeze(),
    };
    let id = p.id;
    Ok(match p.kind {
        MessageType::SingleRequest => Message::SingleRequest { id, name, payload },
        MessageType::StreamRequest => Message::StreamRequest { id, name, payload },
        MessageType::StreamRequestPart => Message::StreamRequestPart { id, payload },
        MessageType::SingleResult => Message::SingleResult { id, payload },
        MessageType::StreamResult => Message::StreamResult { id, payload },
        MessageType::ErrorResult => Message::ErrorResult { id, payload },
        MessageType::RetryResult => Message::RetryResult {
            id,
            wait_ms: p.wait_ms,
            payload,
        },
        MessageType::Notification => Message::Notification { name, payload },
        MessageType::Heartbeat => Message::Heartbeat {
            load: p.load,
            time: p.time,
        },
        MessageType::ProtocolError => Message::ProtocolError {
            code: ProtocolErrorCode(p.code),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the fast path reads, the careful one reads the same; on every prefix of
    /// every kind of message, and with every byte of them replaced by bytes that matter.
    #[test]
    fn the_fast_path_agrees_with_the_careful_one() {
        let messages: [&[u8]; 12] = [
            b"r0001005hello00000003abc",
            b"s00ff000000000000",
            b"pz00900000001x",
            b"R000100000000",
            b"S00010000000Fxxxxxxxxxxxxxxx",
            b"E0001000000021x",
            b"e00010000ffff00000000",
            b"n004ping00000002hi",
            "n006h\u{e9}llo00000000".as_bytes(),
            b"h00ff0000abcd",
            b"f00000003",
            b"r0001fff",
        ];
        let replacements = [b'0', b'9', b'a', b'F', b'g', b'G', b' ', 0xff, b'r'];
        let mut checked = 0;
        for message in messages {
            let mut variants = vec![message.to_vec()];
            for at in 0..message.len() {
                for &b in &replacements {
                    let mut v = message.to_vec();
                    v[at] = b;
                    variants.push(v);
                }
            }
            for v in &variants {
                for end in 0..=v.len() {
                    for max in [u32::MAX, 2] {
                        let buf = &v[..end];
                        if let Some(fast) = parse_header_fast(buf, max) {
                            assert_eq!(Ok(fast), parse_header_careful(buf, max), "{buf:?}");
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 1000, "the fast path was taken {checked} times");
    }
}
