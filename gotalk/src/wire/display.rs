//! The readable one-line form of a message, for logs and tools:
//! `r 0001 echo 25 {"message":"Hello World"}`.

use std::fmt;

use super::{Header, Message};

/// Shows bytes as text: printable ASCII as is, anything else as `\xNN`, cut after
/// `limit` bytes with `…`.
#[derive(Clone, Copy)]
pub struct Preview<'a> {
    bytes: &'a [u8],
    limit: usize,
}

impl<'a> Preview<'a> {
    /// A preview of at most `limit` bytes.
    pub fn new(bytes: &'a [u8], limit: usize) -> Self {
        Self { bytes, limit }
    }
}

impl fmt::Display for Preview<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = &self.bytes[..self.bytes.len().min(self.limit)];
        for &b in shown {
            match b {
                b'\\' => f.write_str("\\\\")?,
                0x20..=0x7e => fmt::Write::write_char(f, char::from(b))?,
                _ => write!(f, "\\x{b:02x}")?,
            }
        }
        if shown.len() < self.bytes.len() {
            f.write_str("…")?;
        }
        Ok(())
    }
}

/// How many payload bytes the one-line form shows.
const PREVIEW_BYTES: usize = 64;

impl Header<'_> {
    /// Writes `TYPE [ID] [NAME] [fields] SIZE` for a payload of `size` bytes.
    pub(crate) fn fmt_line(&self, size: usize, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Write::write_char(f, char::from(self.message_type().byte()))?;
        match self {
            Header::SingleRequest { id, name } | Header::StreamRequest { id, name } => {
                write!(f, " {} {name} {size}", Preview::new(id, 4))
            }
            Header::StreamRequestPart { id }
            | Header::SingleResult { id }
            | Header::StreamResult { id }
            | Header::ErrorResult { id } => write!(f, " {} {size}", Preview::new(id, 4)),
            Header::RetryResult { id, wait_ms } => {
                write!(f, " {} wait={wait_ms}ms {size}", Preview::new(id, 4))
            }
            Header::Notification { name } => write!(f, " {name} {size}"),
            Header::Heartbeat { load, time } => write!(f, " load={load} time={time}"),
            Header::ProtocolError { code } => write!(f, " {code}"),
        }
    }
}

impl fmt::Display for Message {
    /// The readable one-line form: type, ID, name, size and a preview of the payload.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Line(self.header(), self.payload()).fmt(f)
    }
}

/// An outgoing message's one-line form for logs, from its header and payload (what
/// `Message`'s `Display` shows for a parsed one).
pub(crate) struct Line<'a>(pub Header<'a>, pub &'a [u8]);

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt_line(self.1.len(), f)?;
        if !self.1.is_empty() {
            write!(f, " {}", Preview::new(self.1, PREVIEW_BYTES))?;
        }
        Ok(())
    }
}
