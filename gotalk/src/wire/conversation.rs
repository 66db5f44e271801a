//! "The version, then messages": one direction of a conversation, decoded.
//!
//! Every reader of a Gotalk byte stream needs this, and it is written once, here: the
//! connection's reader, the CLI's trace log and [`Codec`](super::Codec) all decode
//! through a [`Conversation`].

use std::fmt;

use bytes::{Buf, BytesMut};

use super::{
    parse::parse_with, parse_version, Invalid, Message, Name, ParseError, VersionError, VERSION,
};

/// One direction of a conversation: the peer's two-byte version first, then messages.
///
/// ```
/// use bytes::{Buf, BytesMut};
/// use gotalk::wire::{Conversation, Decoded, DecodeError};
///
/// let mut conversation = Conversation::new(1024);
/// let mut buf = BytesMut::from(&b"01h000254d7de9ar0001"[..]);
/// assert!(matches!(conversation.decode(&mut buf), Ok(Decoded::Version)));
/// assert!(matches!(conversation.decode(&mut buf), Ok(Decoded::Message(_))));
/// assert!(matches!(conversation.decode(&mut buf), Err(DecodeError::Incomplete { .. })));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Conversation {
    max_payload: u32,
    version_seen: bool,
}

/// What [`Conversation::decode`] took from the front of the buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// The peer's version, `01`.
    Version,
    /// A message.
    Message(Message),
}

/// Why [`Conversation::decode`] took nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// At least `needed` bytes in total are required; nothing was consumed.
    Incomplete {
        /// The total number of bytes the version or message needs at least.
        needed: usize,
    },
    /// The peer's version is not ours: answer protocol error 1 and close.
    Version(VersionError),
    /// An invalid message: answer protocol error 2 and close.
    Invalid(Invalid),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Incomplete { needed } => write!(f, "incomplete: {needed} bytes needed"),
            Self::Version(e) => e.fmt(f),
            Self::Invalid(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for DecodeError {}

impl Conversation {
    /// A conversation from its start (the version comes first), refusing payloads over
    /// `max_payload` bytes.
    pub fn new(max_payload: u32) -> Self {
        Self {
            max_payload,
            version_seen: false,
        }
    }

    /// A conversation whose version was already read elsewhere: messages only.
    pub fn after_version(max_payload: u32) -> Self {
        Self {
            max_payload,
            version_seen: true,
        }
    }

    /// The largest payload accepted.
    pub fn max_payload(&self) -> u32 {
        self.max_payload
    }

    /// Takes the version or one message from the front of `buf`.
    #[inline]
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, DecodeError> {
        self.decode_with(buf, |_| None)
    }

    /// [`decode`](Self::decode), where `known` may give a message's name from elsewhere
    /// (see `parse_with`).
    #[inline]
    pub(crate) fn decode_with(
        &mut self,
        buf: &mut BytesMut,
        known: impl FnOnce(&str) -> Option<Name>,
    ) -> Result<Decoded, DecodeError> {
        if !self.version_seen {
            return match parse_version(buf) {
                Ok(()) => {
                    buf.advance(VERSION.len());
                    self.version_seen = true;
                    Ok(Decoded::Version)
                }
                Err(VersionError::Incomplete) => Err(DecodeError::Incomplete {
                    needed: VERSION.len(),
                }),
                Err(e) => Err(DecodeError::Version(e)),
            };
        }
        match parse_with(buf, self.max_payload, known) {
            Ok(msg) => Ok(Decoded::Message(msg)),
            Err(ParseError::Incomplete { needed }) => Err(DecodeError::Incomplete { needed }),
            Err(ParseError::Invalid(e)) => Err(DecodeError::Invalid(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_comes_first_then_messages() {
        let mut c = Conversation::new(16);
        let mut buf = BytesMut::from(&b"0"[..]);
        assert_eq!(
            c.decode(&mut buf),
            Err(DecodeError::Incomplete { needed: 2 })
        );
        buf.extend_from_slice(b"1f00000002");
        assert_eq!(c.decode(&mut buf), Ok(Decoded::Version));
        assert!(matches!(
            c.decode(&mut buf),
            Ok(Decoded::Message(Message::ProtocolError { .. }))
        ));
        assert!(buf.is_empty());
    }

    #[test]
    fn another_version_or_a_message_first_is_refused() {
        let mut buf = BytesMut::from(&b"02"[..]);
        assert_eq!(
            Conversation::new(16).decode(&mut buf),
            Err(DecodeError::Version(VersionError::Unsupported(*b"02")))
        );
        let mut buf = BytesMut::from(&b"r0001"[..]);
        assert!(matches!(
            Conversation::new(16).decode(&mut buf),
            Err(DecodeError::Version(_))
        ));
        let mut buf = BytesMut::from(&b"x"[..]);
        assert_eq!(
            Conversation::after_version(16).decode(&mut buf),
            Err(DecodeError::Invalid(Invalid::UnknownType(b'x')))
        );
    }
}
