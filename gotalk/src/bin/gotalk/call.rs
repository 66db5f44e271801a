//! `gotalk call` and `gotalk notify`.

use std::io::Write;

use bytes::Bytes;
use tokio::io::AsyncBufReadExt;

use crate::{
    addr::{connect, TlsArgs},
    Failure,
};

fn print_result(bytes: &[u8], raw: bool) {
    let pretty = (!raw)
        .then(|| serde_json::from_slice::<serde_json::Value>(bytes).ok())
        .flatten()
        .and_then(|v| serde_json::to_string_pretty(&v).ok());
    let mut out = std::io::stdout().lock();
    let _ = match pretty {
        Some(text) => writeln!(out, "{text}"),
        None => out.write_all(bytes).and_then(|()| writeln!(out)),
    };
    let _ = out.flush();
}

/// Sends a request (or, with `stream`, a stream request fed from stdin) and prints its
/// results.
pub async fn call(
    addr: &str,
    op: &str,
    payload: Option<String>,
    raw: bool,
    stream: bool,
    tls: &TlsArgs,
) -> Result<(), Failure> {
    let sock = connect(addr, tls).await?;
    let payload = Bytes::from(payload.unwrap_or_default());
    if !stream {
        let result = sock.request_raw(op, payload).await?;
        print_result(&result, raw);
        sock.shutdown().await;
        return Ok(());
    }
    let (mut writer, mut results) = sock.stream_request(op, payload).await?;
    // Each line goes out as soon as it is read, so stdin can be a live source.
    let sender = async move {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Some(line) = lines
            .next_line()
            .await
            .map_err(|e| Failure(4, format!("reading stdin: {e}")))?
        {
            writer.send(line).await?;
        }
        writer.finish().await?;
        Ok::<_, Failure>(())
    };
    let receiver = async {
        while let Some(chunk) = futures_util::StreamExt::next(&mut results).await {
            print_result(&chunk?, raw);
        }
        Ok::<_, Failure>(())
    };
    let (sent, received) = tokio::join!(sender, receiver);
    sent?;
    received?;
    sock.shutdown().await;
    Ok(())
}

/// Sends a notification.
pub async fn notify(
    addr: &str,
    name: &str,
    payload: Option<String>,
    tls: &TlsArgs,
) -> Result<(), Failure> {
    let sock = connect(addr, tls).await?;
    sock.notify_raw(name, payload.unwrap_or_default()).await?;
    sock.shutdown().await;
    Ok(())
}
