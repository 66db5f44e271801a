//! The `tokio_util` codec over [`parse`] and [`Header::encode`].

use std::{fmt, io};

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use super::{
    Conversation, DecodeError, Decoded, EncodeError, Invalid, Message, VersionError,
    DEFAULT_MAX_PAYLOAD,
};

/// Reads and writes Gotalk messages with a maximum payload size. A frame declaring a
/// larger payload is an error the connection answers with protocol error 2.
///
/// [`Codec::new`] reads messages only (the version was dealt with before);
/// [`Codec::conversation`] reads the peer's version first. Encoding writes messages only:
/// write [`VERSION`](super::VERSION) yourself first.
#[derive(Clone, Copy, Debug)]
pub struct Codec {
    conversation: Conversation,
}

impl Codec {
    /// A codec for messages after the version handshake, refusing payloads over
    /// `max_payload` bytes.
    pub fn new(max_payload: u32) -> Self {
        Self {
            conversation: Conversation::after_version(max_payload),
        }
    }

    /// A codec for a whole direction of a conversation: it checks the peer's version
    /// (an unsupported one is [`CodecError::Version`]), then reads messages.
    pub fn conversation(max_payload: u32) -> Self {
        Self {
            conversation: Conversation::new(max_payload),
        }
    }

    /// The largest payload this codec accepts.
    pub fn max_payload(&self) -> u32 {
        self.conversation.max_payload()
    }
}

impl Default for Codec {
    /// A codec with the default limit of 16 MiB per payload.
    fn default() -> Self {
        Self::new(DEFAULT_MAX_PAYLOAD)
    }
}

/// An error of [`Codec`].
#[derive(Debug)]
#[non_exhaustive]
pub enum CodecError {
    /// The peer's protocol version is not ours ([`Codec::conversation`] only).
    Version(VersionError),
    /// The peer sent an invalid message.
    Invalid(Invalid),
    /// A message could not be encoded.
    Encode(EncodeError),
    /// The underlying stream failed.
    Io(io::Error),
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Version(e) => e.fmt(f),
            Self::Invalid(e) => write!(f, "invalid message: {e}"),
            Self::Encode(e) => write!(f, "cannot encode message: {e}"),
            Self::Io(e) => write!(f, "i/o error: {e}"),
        }
    }
}

impl std::error::Error for CodecError {}

impl From<io::Error> for CodecError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Makes room for the rest of an incomplete frame of `needed` bytes, without trusting
/// the size its header declares: the buffer grows by at most what has actually arrived,
/// 64 KiB, or `credit` (the largest frame this peer has already delivered in full),
/// whichever is most. A header that declares a huge payload with nothing behind it thus
/// costs 64 KiB, not the declared size, while a peer that keeps sending large frames has
/// each one's room reserved in one step (no regrowing and recopying as it arrives).
pub(crate) fn reserve_for(buf: &mut BytesMut, needed: usize, credit: usize) {
    let room = room_for(buf.len(), needed, credit);
    buf.reserve(room - buf.len());
}

/// The capacity [`reserve_for`] grows a buffer holding `len` bytes to.
pub(crate) fn room_for(len: usize, needed: usize, credit: usize) -> usize {
    const MIN_GROWTH: usize = 64 * 1024;
    let missing = needed.saturating_sub(len);
    len + missing.min(len.max(MIN_GROWTH).max(credit))
}

impl Decoder for Codec {
    type Item = Message;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, CodecError> {
        loop {
            return match self.conversation.decode(src) {
                Ok(Decoded::Version) => continue,
                Ok(Decoded::Message(msg)) => Ok(Some(msg)),
                Err(DecodeError::Incomplete { needed }) => {
                    reserve_for(src, needed, 0);
                    Ok(None)
                }
                Err(DecodeError::Version(e)) => Err(CodecError::Version(e)),
                Err(DecodeError::Invalid(e)) => Err(CodecError::Invalid(e)),
            };
        }
    }
}

impl Encoder<&Message> for Codec {
    type Error = CodecError;

    fn encode(&mut self, msg: &Message, dst: &mut BytesMut) -> Result<(), CodecError> {
        msg.encode(dst).map_err(CodecError::Encode)
    }
}

impl Encoder<Message> for Codec {
    type Error = CodecError;

    fn encode(&mut self, msg: Message, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.encode(&msg, dst)
    }
}
