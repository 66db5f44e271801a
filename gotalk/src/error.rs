//! The one public error type, and why a connection closed.

use std::{fmt, io, sync::Arc, time::Duration};

use crate::wire::{NameError, ProtocolErrorCode};

/// Which side of a connection did something.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// This process.
    Local,
    /// The other end of the connection.
    Peer,
}

/// Why a connection closed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum CloseReason {
    /// This side closed it ([`Sock::close`](crate::Sock::close) or a finished
    /// [`shutdown`](crate::Sock::shutdown)).
    Local,
    /// The peer closed its end of the stream.
    PeerClosed,
    /// A protocol error ended the connection: sent by us (`by: Local`, with what we saw in
    /// `detail`) or received from the peer (`by: Peer`).
    ProtocolError {
        /// The protocol error code.
        code: ProtocolErrorCode,
        /// Who sent it.
        by: Side,
        /// What was wrong, when we sent it (empty when the peer did).
        detail: String,
    },
    /// Reading or writing the stream failed.
    Io(Arc<io::Error>),
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local => f.write_str("closed by this side"),
            Self::PeerClosed => f.write_str("closed by the peer"),
            Self::ProtocolError {
                code,
                by: Side::Peer,
                ..
            } => write!(f, "the peer sent protocol error: {code}"),
            Self::ProtocolError {
                code,
                by: Side::Local,
                detail,
            } => {
                write!(f, "protocol error: {code}")?;
                if !detail.is_empty() {
                    write!(f, ": {detail}")?;
                }
                Ok(())
            }
            Self::Io(e) => write!(f, "i/o error: {e}"),
        }
    }
}

/// Everything that can go wrong with a call, a notification or a connection.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Error {
    /// The peer answered with an ErrorResult: the request itself is at fault (unknown
    /// operation, bad input, the handler's own error). Displays as the peer's text.
    Remote(String),
    /// The peer answered with a RetryResult: it cannot serve the request now. Retry after
    /// `wait` (or use [`CallOptions::retries`](crate::CallOptions::retries)).
    ///
    /// A handler may also return this error to answer with a RetryResult itself.
    Retry {
        /// How long to wait before retrying.
        wait: Duration,
        /// The peer's reason, e.g. `request rate limit`.
        reason: String,
    },
    /// The connection closed before the answer came.
    Closed(CloseReason),
    /// No answer within the call's timeout.
    Timeout {
        /// The operation called.
        op: String,
        /// The timeout that passed.
        after: Duration,
    },
    /// An operation or notification name that the wire cannot carry.
    InvalidName(NameError),
    /// A payload over 4 GiB - 1.
    PayloadTooLarge(usize),
    /// A value could not be serialized as JSON.
    Encode {
        /// The operation or notification name.
        op: String,
        /// serde_json's message.
        message: String,
    },
    /// A payload could not be deserialized from JSON into the expected type.
    Decode {
        /// The operation or notification name.
        op: String,
        /// serde_json's message.
        message: String,
    },
    /// Connecting or listening failed.
    Io(Arc<io::Error>),
    /// A [`Reconnecting`](crate::Reconnecting) client has no connection now, and got none
    /// within the wait it was given.
    NotConnected {
        /// Why the last attempt to connect failed, if one did.
        last_failure: Option<String>,
    },
}

impl Error {
    /// An error carrying a message, as a handler returns it: sent as an ErrorResult with
    /// exactly this text.
    pub fn message(text: impl Into<String>) -> Self {
        Self::Remote(text.into())
    }

    /// A RetryResult answer for a handler to return: the caller should try again after `wait`.
    pub fn retry(wait: Duration, reason: impl Into<String>) -> Self {
        Self::Retry {
            wait,
            reason: reason.into(),
        }
    }

    /// The protocol error code, if a protocol error ended the connection.
    pub fn protocol_error(&self) -> Option<ProtocolErrorCode> {
        match self {
            Self::Closed(CloseReason::ProtocolError { code, .. }) => Some(*code),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Remote(text) => f.write_str(text),
            Self::Retry { wait, reason } => {
                write!(f, "{reason} (retry after {} ms)", wait.as_millis())
            }
            Self::Closed(reason) => write!(f, "connection closed: {reason}"),
            Self::Timeout { op, after } => {
                write!(
                    f,
                    "request {op:?} got no answer within {} ms",
                    after.as_millis()
                )
            }
            Self::InvalidName(e) => write!(f, "invalid name: {e}"),
            Self::PayloadTooLarge(len) => {
                write!(
                    f,
                    "payload of {len} bytes is over the protocol's 4 GiB limit"
                )
            }
            Self::Encode { op, message } => write!(f, "cannot encode JSON for {op:?}: {message}"),
            Self::Decode { op, message } => write!(f, "cannot decode JSON for {op:?}: {message}"),
            Self::Io(e) => write!(f, "i/o error: {e}"),
            Self::NotConnected { last_failure: None } => {
                f.write_str("not connected (reconnecting)")
            }
            Self::NotConnected {
                last_failure: Some(e),
            } => write!(
                f,
                "not connected (reconnecting; the last attempt failed: {e})"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e.as_ref()),
            Self::Closed(CloseReason::Io(e)) => Some(e.as_ref()),
            Self::InvalidName(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Self::Io(Arc::new(e))
    }
}

impl From<NameError> for Error {
    fn from(e: NameError) -> Self {
        Self::InvalidName(e)
    }
}

/// What a generated client's call returns for a method declared `-> Result<T, E>` with an
/// error type of the service's own: the handler's error as it returned it, or the call's
/// own failure.
///
/// The handler's `E` travels as JSON in the ErrorResult (an error that serializes to a
/// JSON string travels as that string's text), so a peer that is not ours reads it as
/// text. The caller gets [`Remote`](Self::Remote) when the text decodes into `E` (`E:
/// DeserializeOwned`); anything else, including the text of a peer's own error such as
/// an unknown operation, is [`Rpc`](Self::Rpc)`(`[`Error::Remote`]`(text))`.
///
/// ```
/// # use gotalk::{CallError, Error};
/// #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
/// enum KvError { NotFound { key: String } }
/// # impl std::fmt::Display for KvError {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("not found") }
/// # }
/// fn explain(result: Result<String, CallError<KvError>>) -> String {
///     match result {
///         Ok(value) => value,
///         Err(CallError::Remote(KvError::NotFound { key })) => format!("no {key}"),
///         Err(CallError::Rpc(e)) => format!("call failed: {e}"),
///     }
/// }
/// # assert_eq!(explain(Err(CallError::Rpc(Error::message("x")))), "call failed: x");
/// ```
#[derive(Clone, Debug)]
pub enum CallError<E> {
    /// The handler answered with its own error.
    Remote(E),
    /// The call failed otherwise: connection, timeout, retry, encoding, or an error text
    /// that is not an `E` (see [`Error`]).
    Rpc(Error),
}

impl<E> CallError<E> {
    /// The handler's own error, if that is what this is.
    pub fn remote(&self) -> Option<&E> {
        match self {
            Self::Remote(e) => Some(e),
            Self::Rpc(_) => None,
        }
    }

    /// The handler's own error, if that is what this is.
    pub fn into_remote(self) -> Option<E> {
        match self {
            Self::Remote(e) => Some(e),
            Self::Rpc(_) => None,
        }
    }
}

impl<E> From<Error> for CallError<E> {
    fn from(e: Error) -> Self {
        Self::Rpc(e)
    }
}

/// For `?` in a function that returns [`Error`]: the handler's error becomes
/// [`Error::Remote`] with its text.
impl<E: fmt::Display> From<CallError<E>> for Error {
    fn from(e: CallError<E>) -> Self {
        match e {
            CallError::Remote(e) => Error::Remote(e.to_string()),
            CallError::Rpc(e) => e,
        }
    }
}

impl<E: fmt::Display> fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Remote(e) => e.fmt(f),
            Self::Rpc(e) => e.fmt(f),
        }
    }
}

impl<E: fmt::Display + fmt::Debug> std::error::Error for CallError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Remote(_) => None,
            Self::Rpc(e) => Some(e),
        }
    }
}
