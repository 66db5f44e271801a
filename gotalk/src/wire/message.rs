//! The messages of protocol version 1, one variant per type byte.

use std::fmt;

use bytes::Bytes;

/// A request ID: four opaque bytes chosen by the requester and copied back by the responder.
pub type RequestId = [u8; 4];

/// One Gotalk message. Payloads are [`Bytes`]: parsing slices them out of the read buffer
/// without copying.
///
/// The fields are the protocol's own: `id` is the request ID (chosen by the requester,
/// copied into every result), `name` the operation or notification name, `payload` the
/// bytes after the header.
#[allow(missing_docs)] // the fields, described above, are the same in every variant
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// `r`: a request answered by one result (or a stream of results).
    SingleRequest {
        id: RequestId,
        name: Name,
        payload: Bytes,
    },
    /// `s`: opens a stream request and carries its first chunk.
    StreamRequest {
        id: RequestId,
        name: Name,
        payload: Bytes,
    },
    /// `p`: a further chunk of a stream request; an empty one ends the stream.
    StreamRequestPart { id: RequestId, payload: Bytes },
    /// `R`: the result of a request.
    SingleResult { id: RequestId, payload: Bytes },
    /// `S`: one part of a stream result; an empty one ends the stream.
    StreamResult { id: RequestId, payload: Bytes },
    /// `E`: the request failed; the payload is the error text. Not to be retried as-is.
    ErrorResult { id: RequestId, payload: Bytes },
    /// `e`: the responder cannot serve the request now; retry after `wait_ms` milliseconds.
    RetryResult {
        id: RequestId,
        wait_ms: u32,
        payload: Bytes,
    },
    /// `n`: a one-way message, never answered.
    Notification { name: Name, payload: Bytes },
    /// `h`: the sender's load (0 idle .. 0xffff overloaded) and clock (UNIX seconds).
    Heartbeat { load: u16, time: u32 },
    /// `f`: the last message a side sends before it closes the connection.
    ProtocolError { code: ProtocolErrorCode },
}

/// The type byte of a message; the variants are named as in [`Message`].
#[allow(missing_docs)] // each variant is documented on the `Message` variant of the same name
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    SingleRequest,
    StreamRequest,
    StreamRequestPart,
    SingleResult,
    StreamResult,
    ErrorResult,
    RetryResult,
    Notification,
    Heartbeat,
    ProtocolError,
}

impl MessageType {
    /// The type for a type byte, `None` for a byte that is not a message type.
    pub fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            b'r' => Self::SingleRequest,
            b's' => Self::StreamRequest,
            b'p' => Self::StreamRequestPart,
            b'R' => Self::SingleResult,
            b'S' => Self::StreamResult,
            b'E' => Self::ErrorResult,
            b'e' => Self::RetryResult,
            b'n' => Self::Notification,
            b'h' => Self::Heartbeat,
            b'f' => Self::ProtocolError,
            _ => return None,
        })
    }

    /// The byte that starts a message of this type.
    pub fn byte(self) -> u8 {
        match self {
            Self::SingleRequest => b'r',
            Self::StreamRequest => b's',
            Self::StreamRequestPart => b'p',
            Self::SingleResult => b'R',
            Self::StreamResult => b'S',
            Self::ErrorResult => b'E',
            Self::RetryResult => b'e',
            Self::Notification => b'n',
            Self::Heartbeat => b'h',
            Self::ProtocolError => b'f',
        }
    }
}

impl Message {
    /// This message's type.
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

    /// The payload, empty for the types that carry none.
    pub fn payload(&self) -> &Bytes {
        static EMPTY: Bytes = Bytes::from_static(b"");
        match self {
            Self::SingleRequest { payload, .. }
            | Self::StreamRequest { payload, .. }
            | Self::StreamRequestPart { payload, .. }
            | Self::SingleResult { payload, .. }
            | Self::StreamResult { payload, .. }
            | Self::ErrorResult { payload, .. }
            | Self::RetryResult { payload, .. }
            | Self::Notification { payload, .. } => payload,
            Self::Heartbeat { .. } | Self::ProtocolError { .. } => &EMPTY,
        }
    }
}

/// An operation or notification name: UTF-8, at most [`MAX_NAME_LEN`](super::MAX_NAME_LEN)
/// bytes. Parsed names share the read buffer; static names cost no allocation.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Name(Bytes);

/// Why a string cannot be a [`Name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameError {
    /// Longer than 4095 bytes.
    TooLong(usize),
    /// Not valid UTF-8.
    NotUtf8,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong(len) => write!(f, "name is {len} bytes long; the limit is 4095"),
            Self::NotUtf8 => f.write_str("name is not valid UTF-8"),
        }
    }
}

impl std::error::Error for NameError {}

impl Name {
    /// A name from any UTF-8 text of at most 4095 bytes.
    pub fn new(name: &str) -> Result<Self, NameError> {
        Self::check_len(name.len())?;
        Ok(Self(Bytes::copy_from_slice(name.as_bytes())))
    }

    /// A name from a `'static` string, without allocating.
    pub fn from_static(name: &'static str) -> Result<Self, NameError> {
        Self::check_len(name.len())?;
        Ok(Self(Bytes::from_static(name.as_bytes())))
    }

    /// A name from bytes already checked, without checking them again.
    ///
    /// # Safety
    ///
    /// `bytes` must be valid UTF-8 (and at most [`MAX_NAME_LEN`](super::MAX_NAME_LEN)
    /// long): [`as_str`](Self::as_str) hands them out as `&str` unchecked.
    pub(crate) unsafe fn from_checked(bytes: Bytes) -> Self {
        debug_assert!(std::str::from_utf8(&bytes).is_ok());
        Self(bytes)
    }

    /// A copy of `name` that shares no memory with it (a name read from the peer is a
    /// slice of the read buffer, which it would keep alive).
    pub(crate) fn copy_of(name: &Name) -> Self {
        Self(Bytes::copy_from_slice(&name.0))
    }

    fn check_len(len: usize) -> Result<(), NameError> {
        if len > super::MAX_NAME_LEN {
            return Err(NameError::TooLong(len));
        }
        Ok(())
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor takes a `&str`, or (`from_checked`, an `unsafe fn`)
        // bytes its caller guarantees are UTF-8, and the bytes never change. (Checking again here showed in
        // profiles: names are read on every request.)
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// The name's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::ops::Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

/// The code of a [`Message::ProtocolError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProtocolErrorCode(pub u32);

impl ProtocolErrorCode {
    /// 0: closed because of an abnormal condition (a fault).
    pub const ABNORMAL: Self = Self(0);
    /// 1: the peer's protocol version is not supported.
    pub const UNSUPPORTED: Self = Self(1);
    /// 2: an invalid message (unknown type, malformed header, part for an unknown stream,
    /// a frame over the size limit).
    pub const INVALID: Self = Self(2);
    /// 3: nothing was read within the read timeout.
    pub const TIMEOUT: Self = Self(3);

    /// What the code means, in a few words.
    pub fn description(self) -> &'static str {
        match self.0 {
            0 => "abnormal condition",
            1 => "unsupported protocol version",
            2 => "invalid message",
            3 => "read timeout",
            _ => "unknown protocol error",
        }
    }
}

impl fmt::Display for ProtocolErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {})", self.description(), self.0)
    }
}
