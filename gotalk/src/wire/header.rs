//! Encoding: a borrowed view of a message's header, written into a buffer.

use std::fmt;

use bytes::{BufMut, BytesMut};

use super::{hex, Message, MessageType, ProtocolErrorCode, RequestId, MAX_NAME_LEN};

/// The header of a message, borrowing its name: what goes on the wire before the payload.
///
/// Encoding goes through this type so that senders can frame a message without first
/// building an owned [`Message`]. Variants and fields mean what they mean on [`Message`].
#[allow(missing_docs)] // each variant is documented on the `Message` variant of the same name
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Header<'a> {
    SingleRequest { id: RequestId, name: &'a str },
    StreamRequest { id: RequestId, name: &'a str },
    StreamRequestPart { id: RequestId },
    SingleResult { id: RequestId },
    StreamResult { id: RequestId },
    ErrorResult { id: RequestId },
    RetryResult { id: RequestId, wait_ms: u32 },
    Notification { name: &'a str },
    Heartbeat { load: u16, time: u32 },
    ProtocolError { code: ProtocolErrorCode },
}

/// Why a message cannot be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The name is longer than 4095 bytes.
    NameTooLong(usize),
    /// The payload is longer than 4 GiB - 1, or given to a type that carries none.
    PayloadTooLarge(usize),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NameTooLong(len) => write!(f, "name is {len} bytes long; the limit is 4095"),
            Self::PayloadTooLarge(len) => {
                write!(f, "payload of {len} bytes does not fit this message")
            }
        }
    }
}

impl std::error::Error for EncodeError {}

impl<'a> Header<'a> {
    /// This header's message type.
    pub fn message_type(&self) -> MessageType {
        match self {
            Self::SingleRequest { .. } => MessageType::SingleRequest,
            Self::StreamRequest { .. } => MessageType::StreamRequest,
            Self::StreamRequestPart { .. } => MessageType::StreamRequestPart,
            Self::SingleResult { .. } => MessageType::SingleResult,
            Self::StreamResult { .. } => MessageType::StreamResult,
            Self::ErrorResult { .. } => MessageType::ErrorResult,
            Self::RetryResult { .. } => MessageType::RetryResult,
            Self::Notification { .. } => MessageType::Notification,
            Self::Heartbeat { .. } => MessageType::Heartbeat,
            Self::ProtocolError { .. } => MessageType::ProtocolError,
        }
    }

    /// The number of bytes [`encode`](Self::encode) writes.
    pub fn encoded_len(&self) -> usize {
        match self {
            Self::SingleRequest { name, .. } | Self::StreamRequest { name, .. } => 16 + name.len(),
            Self::Notification { name } => 12 + name.len(),
            Self::RetryResult { .. } => 21,
            Self::ProtocolError { .. } => 9,
            _ => 13,
        }
    }

    /// Checks that a payload of `payload_len` bytes can follow this header.
    pub fn check(&self, payload_len: usize) -> Result<(), EncodeError> {
        match self {
            Self::SingleRequest { name, .. }
            | Self::StreamRequest { name, .. }
            | Self::Notification { name }
                if name.len() > MAX_NAME_LEN =>
            {
                return Err(EncodeError::NameTooLong(name.len()))
            }
            Self::Heartbeat { .. } | Self::ProtocolError { .. } if payload_len != 0 => {
                return Err(EncodeError::PayloadTooLarge(payload_len))
            }
            _ => {}
        }
        if u32::try_from(payload_len).is_err() {
            return Err(EncodeError::PayloadTooLarge(payload_len));
        }
        Ok(())
    }

    /// Appends the header for a payload of `payload_len` bytes to `dst` (the payload
    /// itself is the caller's to append).
    pub fn encode(&self, payload_len: usize, dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.check(payload_len)?;
        self.encode_checked(payload_len as u32, dst); // checked above
        Ok(())
    }

    /// [`encode`](Self::encode) for a header already [`check`](Self::check)ed.
    #[inline(always)]
    pub(crate) fn encode_checked(&self, size: u32, dst: &mut BytesMut) {
        // Results and requests, the most common by far, inline.
        match *self {
            Self::SingleResult { id }
            | Self::StreamResult { id }
            | Self::ErrorResult { id }
            | Self::StreamRequestPart { id } => {
                encode_id_and_size(self.message_type().byte(), id, size, dst);
            }
            Self::SingleRequest { id, name } | Self::StreamRequest { id, name } => {
                encode_request(self.message_type().byte(), id, name, size, dst);
            }
            _ => self.encode_other(size, dst),
        }
    }

    /// Any header, out of line: `encode_checked` calls it for the rare ones. It frames the
    /// common ones too, with the same helpers, so that it is whole on its own (no arm that
    /// must not be reached).
    fn encode_other(&self, size: u32, dst: &mut BytesMut) {
        let size_digits = hex::eight_digits(size);
        let type_byte = self.message_type().byte();
        let len = self.encoded_len();
        match *self {
            Self::SingleResult { id }
            | Self::StreamResult { id }
            | Self::ErrorResult { id }
            | Self::StreamRequestPart { id } => encode_id_and_size(type_byte, id, size, dst),
            Self::SingleRequest { id, name } | Self::StreamRequest { id, name } => {
                encode_request(type_byte, id, name, size, dst);
            }
            Self::Notification { name } => {
                let [a, b, c] = three_digits(name.len());
                dst.reserve(len);
                dst.extend_from_slice(&[type_byte, a, b, c]);
                dst.extend_from_slice(name.as_bytes());
                dst.extend_from_slice(&size_digits);
            }
            Self::RetryResult { id, wait_ms } => {
                let rest = begin(dst, type_byte, len);
                rest[..4].copy_from_slice(&id);
                rest[4..12].copy_from_slice(&hex::eight_digits(wait_ms));
                rest[12..20].copy_from_slice(&size_digits);
            }
            Self::Heartbeat { load, time } => {
                let rest = begin(dst, type_byte, len);
                hex::write(&mut rest[..4], u32::from(load));
                rest[4..12].copy_from_slice(&hex::eight_digits(time));
            }
            Self::ProtocolError { code } => {
                let rest = begin(dst, type_byte, len);
                rest[..8].copy_from_slice(&hex::eight_digits(code.0));
            }
        }
    }
}

/// A header of a type, an ID and a size: thirteen bytes from the stack.
#[inline(always)]
fn encode_id_and_size(type_byte: u8, id: RequestId, size: u32, dst: &mut BytesMut) {
    let mut out = [type_byte; 13];
    out[1..5].copy_from_slice(&id);
    out[5..].copy_from_slice(&hex::eight_digits(size));
    dst.extend_from_slice(&out);
}

/// A request's header in three pieces: the two of fixed length are stores of a known
/// size, only the name is copied by length.
#[inline(always)]
fn encode_request(type_byte: u8, id: RequestId, name: &str, size: u32, dst: &mut BytesMut) {
    let [a, b, c] = three_digits(name.len());
    dst.reserve(16 + name.len());
    dst.extend_from_slice(&[type_byte, id[0], id[1], id[2], id[3], a, b, c]);
    dst.extend_from_slice(name.as_bytes());
    dst.extend_from_slice(&hex::eight_digits(size));
}

/// A name's length as its three hex digits.
#[inline]
fn three_digits(len: usize) -> [u8; 3] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    [
        DIGITS[(len >> 8) & 15],
        DIGITS[(len >> 4) & 15],
        DIGITS[len & 15],
    ]
}

/// Appends a header of `len` bytes starting with `type_byte` to `dst`; returns the rest
/// of it, to be filled in.
fn begin(dst: &mut BytesMut, type_byte: u8, len: usize) -> &mut [u8] {
    let start = dst.len();
    dst.put_bytes(b'0', len);
    dst[start] = type_byte;
    &mut dst[start + 1..]
}

impl Message {
    /// This message's header, borrowing the name.
    pub fn header(&self) -> Header<'_> {
        match self {
            Self::SingleRequest { id, name, .. } => Header::SingleRequest { id: *id, name },
            Self::StreamRequest { id, name, .. } => Header::StreamRequest { id: *id, name },
            Self::StreamRequestPart { id, .. } => Header::StreamRequestPart { id: *id },
            Self::SingleResult { id, .. } => Header::SingleResult { id: *id },
            Self::StreamResult { id, .. } => Header::StreamResult { id: *id },
            Self::ErrorResult { id, .. } => Header::ErrorResult { id: *id },
            Self::RetryResult { id, wait_ms, .. } => Header::RetryResult {
                id: *id,
                wait_ms: *wait_ms,
            },
            Self::Notification { name, .. } => Header::Notification { name },
            Self::Heartbeat { load, time } => Header::Heartbeat {
                load: *load,
                time: *time,
            },
            Self::ProtocolError { code } => Header::ProtocolError { code: *code },
        }
    }

    /// Appends the whole message, header and payload, to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let payload = self.payload();
        self.header().encode(payload.len(), dst)?;
        dst.extend_from_slice(payload);
        Ok(())
    }

    /// The whole message as bytes (a convenience for tests and tools).
    pub fn to_bytes(&self) -> Result<BytesMut, EncodeError> {
        let mut buf = BytesMut::with_capacity(self.header().encoded_len() + self.payload().len());
        self.encode(&mut buf)?;
        Ok(buf)
    }
}
