//! The wire layer: Gotalk protocol version 1 messages, their parsing and encoding.
//!
//! Pure and synchronous: nothing here does I/O. [`parse`] reads one message from the
//! front of a buffer without copying its payload, [`Conversation`] reads the peer's
//! version and then messages (what every reader of a stream does), [`Header::encode`]
//! writes a header into a buffer, and [`Codec`] puts them behind `tokio_util`'s codec
//! traits.
//!
//! ```
//! use bytes::BytesMut;
//! use gotalk::wire::{Codec, Message};
//! use tokio_util::codec::Decoder;
//!
//! let mut buf = BytesMut::from(&b"r0001004echo00000002{}"[..]);
//! let msg = Codec::default().decode(&mut buf).unwrap().unwrap();
//! assert_eq!(msg.to_string(), "r 0001 echo 2 {}");
//! ```

mod codec;
mod conversation;
mod display;
mod header;
mod hex;
mod message;
mod parse;

#[cfg(test)]
pub(crate) use codec::reserve_for;
pub(crate) use codec::room_for;
pub use codec::{Codec, CodecError};
pub use conversation::{Conversation, DecodeError, Decoded};
pub(crate) use display::Line;
pub use display::Preview;
pub use header::{EncodeError, Header};
pub use message::{Message, MessageType, Name, NameError, ProtocolErrorCode, RequestId};
#[cfg(feature = "websocket")]
pub(crate) use parse::frame_lengths;
pub use parse::{parse, parse_version, Invalid, ParseError, VersionError};

/// The protocol version this crate speaks, as it appears on the wire.
pub const VERSION: &[u8; 2] = b"01";

/// The largest name (operation or notification) in bytes: what `hex3` can express.
pub const MAX_NAME_LEN: usize = 0xfff;

/// The default maximum payload size of one message (16 MiB), see [`Codec::new`].
pub const DEFAULT_MAX_PAYLOAD: u32 = 16 * 1024 * 1024;

#[cfg(test)]
mod tests;
