//! The readable log of `listen` and `trace`: every message that passes, one line each.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use gotalk::wire::{Conversation, DecodeError, Decoded, Message, Preview};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The time of day (UTC) with milliseconds, for log lines.
pub fn now() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let (secs, ms) = (since.as_secs() % 86_400, since.subsec_millis());
    format!(
        "{:02}:{:02}:{:02}.{ms:03}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// A message of our protocol extension (EXTENSIONS.md) in words: `extension cancel
/// 0001`, `extension deadline 0001 5000 ms`, `extension hello: cancel deadline`.
fn extension(msg: &Message) -> Option<String> {
    let Message::Notification { name, payload } = msg else {
        return None;
    };
    let what = name.as_str().strip_prefix(gotalk::RESERVED_PREFIX)?;
    let text = Preview::new(payload, 64);
    Some(match what {
        "hello" => format!("extension hello: {text}"),
        "deadline" => format!("extension deadline {text} ms"),
        _ => format!("extension {what} {text}"),
    })
}

/// Decodes one direction of a connection as it passes and prints every message.
pub struct Log {
    label: String,
    buf: BytesMut,
    conversation: Conversation,
    broken: bool,
}

impl Log {
    pub fn new(label: String) -> Self {
        Self {
            label,
            buf: BytesMut::new(),
            // A trace shows what passes, whatever size it declares.
            conversation: Conversation::new(u32::MAX),
            broken: false,
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        if self.broken {
            return;
        }
        self.buf.extend_from_slice(bytes);
        loop {
            match self.conversation.decode(&mut self.buf) {
                Ok(Decoded::Version) => println!("{} {} version 01", now(), self.label),
                // A message's names are the peer's: shown escaped (payloads are
                // previews, escaped already).
                Ok(Decoded::Message(msg)) => {
                    let text = extension(&msg).unwrap_or_else(|| msg.to_string());
                    println!("{} {} {}", now(), self.label, crate::safe::line(&text));
                }
                Err(DecodeError::Incomplete { .. }) => return,
                Err(e) => return self.give_up(&e.to_string()),
            }
        }
    }

    fn give_up(&mut self, why: &str) {
        let why = crate::safe::line(why);
        println!("{} {} not Gotalk from here on: {why}", now(), self.label);
        self.broken = true;
        self.buf = BytesMut::new();
    }
}

/// Copies one direction of a connection, logging every message that passes.
pub async fn relay(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut log: Log,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let copied = async {
        loop {
            let n = from.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            log.feed(&buf[..n]);
            to.write_all(&buf[..n]).await?;
            to.flush().await?;
        }
    }
    .await;
    // However reading ended (the peer closed, or reset the connection), the other side
    // is told: it would otherwise wait on a stream nobody writes to any more.
    let _ = to.shutdown().await;
    copied
}
