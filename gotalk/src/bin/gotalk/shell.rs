//! `gotalk shell`: many calls on one connection, a line each, so that a sign-in made by
//! one line holds for the next.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncBufReadExt;

use crate::{
    addr::{connect, TlsArgs},
    call::{check_json, exchange},
    gave_up, Failure,
};

/// One line of input, read.
#[derive(Debug, PartialEq)]
enum Line<'a> {
    /// Nothing to do: blank, or a `#` comment.
    Nothing,
    /// `OP [PAYLOAD]`: a request.
    Call { op: &'a str, payload: &'a str },
    /// `!NAME [PAYLOAD]`: a notification.
    Notify { name: &'a str, payload: &'a str },
}

fn parse(line: &str) -> Line<'_> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Line::Nothing;
    }
    let (word, payload) = match line.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, rest.trim()),
        None => (line, ""),
    };
    match word.strip_prefix('!') {
        Some(name) => Line::Notify { name, payload },
        None => Line::Call { op: word, payload },
    }
}

/// Reads stdin a line at a time and makes each call on one connection, printing its
/// results (or its error, on stderr) before reading the next. A failed call does not
/// end the shell; a closed connection does (exit code 4). Each call gets `timeout`.
pub async fn shell(addr: &str, raw: bool, timeout: Duration, tls: &TlsArgs) -> Result<(), Failure> {
    let sock = tokio::time::timeout(timeout, connect(addr, tls))
        .await
        .map_err(|_| {
            Failure(
                5,
                format!("no connection within {} s", timeout.as_secs_f64()),
            )
        })??;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut failed = false;
    let mut number = 0;
    loop {
        let line = tokio::select! {
            line = lines.next_line() => line.map_err(|e| Failure(4, format!("reading stdin: {e}")))?,
            reason = sock.closed() => return Err(Failure(4, format!("connection closed: {reason}"))),
        };
        let Some(line) = line else { break };
        number += 1;
        let outcome = match parse(&line) {
            Line::Nothing => continue,
            Line::Call { op, payload } => match check_payload(payload, raw) {
                Ok(payload) => call(&sock, op, payload, raw, timeout).await,
                Err(e) => Err(e),
            },
            Line::Notify { name, payload } => match check_payload(payload, raw) {
                Ok(payload) => sock.notify_raw(name, payload).await.map_err(Failure::from),
                Err(e) => Err(e),
            },
        };
        if let Err(Failure(code, text)) = outcome {
            if code == 4 {
                return Err(Failure(code, text));
            }
            failed = true;
            eprintln!("line {number}: {}", crate::safe::text(&text));
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), sock.shutdown()).await;
    if failed {
        return Err(Failure(1, "some calls failed (see above)".into()));
    }
    Ok(())
}

/// A line's payload: JSON unless `raw` (empty is no payload).
fn check_payload(payload: &str, raw: bool) -> Result<Bytes, Failure> {
    if !payload.is_empty() {
        check_json(payload, "the payload", raw)?;
    }
    Ok(Bytes::copy_from_slice(payload.as_bytes()))
}

/// One request: its results printed as they come, within `timeout`.
async fn call(
    sock: &gotalk::Sock,
    op: &str,
    payload: Bytes,
    raw: bool,
    timeout: Duration,
) -> Result<(), Failure> {
    tokio::time::timeout(timeout, exchange(sock, op, payload, raw, false, None))
        .await
        .unwrap_or_else(|_| Err(gave_up(timeout)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_calls_notifications_or_nothing() {
        assert_eq!(parse("  "), Line::Nothing);
        assert_eq!(parse("# a comment"), Line::Nothing);
        assert_eq!(
            parse("whoami"),
            Line::Call {
                op: "whoami",
                payload: ""
            }
        );
        assert_eq!(
            parse("login  \"ana\" "),
            Line::Call {
                op: "login",
                payload: "\"ana\""
            }
        );
        assert_eq!(
            parse("add {\"a\": 1, \"b\": 2}"),
            Line::Call {
                op: "add",
                payload: "{\"a\": 1, \"b\": 2}"
            }
        );
        assert_eq!(
            parse("!news \"hi\""),
            Line::Notify {
                name: "news",
                payload: "\"hi\""
            }
        );
    }
}
