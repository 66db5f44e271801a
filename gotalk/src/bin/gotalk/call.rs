//! `gotalk call` and `gotalk notify`.

use std::{
    io::{IsTerminal, Write},
    time::Duration,
};

use bytes::Bytes;
use tokio::io::AsyncBufReadExt;

use crate::{
    addr::{connect, TlsArgs},
    describe::{self, connect_timed},
    gave_up, Failure,
};

/// Prints a result: pretty JSON (which escapes control characters itself), or the bytes
/// as they are: exactly into a pipe or a file, escaped on a terminal (`safe.rs`).
fn print_result(bytes: &[u8], raw: bool) {
    let pretty = (!raw)
        .then(|| serde_json::from_slice::<serde_json::Value>(bytes).ok())
        .flatten()
        .and_then(|v| serde_json::to_string_pretty(&v).ok());
    let mut out = std::io::stdout().lock();
    let _ = match pretty {
        Some(text) => writeln!(out, "{text}"),
        None if out.is_terminal() => writeln!(out, "{}", crate::safe::bytes(bytes)),
        None => out.write_all(bytes).and_then(|()| writeln!(out)),
    };
    let _ = out.flush();
}

/// Unless `raw`, `text` must be JSON: what a peer's typed handler can read.
pub(crate) fn check_json(text: &str, what: &str, raw: bool) -> Result<(), Failure> {
    if raw {
        return Ok(());
    }
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map(drop)
        .map_err(|e| {
            Failure(
                2,
                format!("{what} is not JSON ({e}); to send it as it is, add --raw"),
            )
        })
}

/// Prints every result as it comes: one for a single result, one per part for a stream
/// of results.
async fn print_results(results: &mut gotalk::ResultStream, raw: bool) -> Result<(), Failure> {
    while let Some(chunk) = futures_util::StreamExt::next(results).await {
        print_result(&chunk?, raw);
    }
    Ok(())
}

/// How `gotalk call` calls.
pub struct Options {
    /// Payloads and results as they are, not JSON.
    pub raw: bool,
    /// A stream request fed from stdin's lines.
    pub stream_request: bool,
    /// The whole exchange's time, from connecting on.
    pub timeout: Duration,
    /// Calls made first on the same connection, in order: (operation, payload).
    pub before: Vec<(String, String)>,
}

/// Sends a request (or, with `stream_request`, a stream request fed from stdin's lines)
/// and prints its results as they come, whether the peer answers with one result or a
/// stream of them. After `timeout`, or on Ctrl-C, it gives up: a peer that speaks our
/// extension (EXTENSIONS.md) is told, and stops working on the request.
pub async fn call(
    addr: &str,
    op: &str,
    payload: Option<String>,
    options: &Options,
    tls: &TlsArgs,
) -> Result<(), Failure> {
    let Options {
        raw,
        stream_request,
        timeout,
        ref before,
    } = *options;
    if let Some(payload) = &payload {
        check_json(payload, "PAYLOAD", raw)?;
    }
    for (before_op, before_payload) in before {
        check_json(
            before_payload,
            &format!("the payload of --before {before_op}"),
            raw,
        )?;
    }
    let (sock, connecting) = tokio::time::timeout(timeout, connect_timed(addr, tls))
        .await
        .map_err(|_| gave_up(timeout))??;
    let calls = async {
        for (before_op, before_payload) in before {
            sock.request_raw(before_op, Bytes::from(before_payload.clone()))
                .await
                .map_err(|e| {
                    let Failure(code, text) = e.into();
                    Failure(code, format!("--before {before_op}: {text}"))
                })?;
        }
        // Asked after the calls made first: a sign-in may give the connection more.
        let input = match raw {
            true => None,
            false => describe::input_check(&sock, connecting, op).await,
        };
        // A stream request's first payload is optional (its parts follow); a request's is
        // its input, and none is read as `null`.
        match (&input, &payload) {
            (Some(input), Some(payload)) => input.check("PAYLOAD", payload)?,
            (Some(input), None) if !stream_request => input.check("PAYLOAD", "")?,
            _ => {}
        }
        let payload = Bytes::from(payload.unwrap_or_default());
        exchange(&sock, op, payload, raw, stream_request, input.as_ref()).await
    };
    let outcome = tokio::select! {
        done = calls => done,
        () = tokio::time::sleep(timeout) => Err(gave_up(timeout)),
        _ = tokio::signal::ctrl_c() => Err(Failure(130, "interrupted".into())),
    };
    // The request, if given up, was dropped with the exchange: its cancel is queued, and
    // goes out before the connection closes (briefly: the peer need not answer).
    let _ = tokio::time::timeout(Duration::from_secs(2), sock.shutdown()).await;
    outcome
}

/// The request (or a stream request fed from stdin's lines) and its results, printed.
pub(crate) async fn exchange(
    sock: &gotalk::Sock,
    op: &str,
    payload: Bytes,
    raw: bool,
    stream_request: bool,
    input: Option<&describe::InputCheck>,
) -> Result<(), Failure> {
    if !stream_request {
        let mut results = sock.request_results(op, payload).await?;
        return print_results(&mut results, raw).await;
    }
    let (mut writer, mut results) = sock.stream_request(op, payload).await?;
    // Each line goes out as soon as it is read, so stdin can be a live source.
    let sender = async move {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        let mut number = 0;
        while let Some(line) = lines
            .next_line()
            .await
            .map_err(|e| Failure(4, format!("reading stdin: {e}")))?
        {
            number += 1;
            let what = format!("line {number} of stdin");
            check_json(&line, &what, raw)?;
            if let Some(input) = input {
                input.check(&what, &line)?;
            }
            writer.send(line).await?;
        }
        writer.finish().await?;
        Ok::<_, Failure>(())
    };
    let (sent, received) = tokio::join!(sender, print_results(&mut results, raw));
    sent?;
    received
}

/// Sends a notification.
pub async fn notify(
    addr: &str,
    name: &str,
    payload: Option<String>,
    raw: bool,
    tls: &TlsArgs,
) -> Result<(), Failure> {
    if let Some(payload) = &payload {
        check_json(payload, "PAYLOAD", raw)?;
    }
    let sock = connect(addr, tls).await?;
    sock.notify_raw(name, payload.unwrap_or_default()).await?;
    sock.shutdown().await;
    Ok(())
}
