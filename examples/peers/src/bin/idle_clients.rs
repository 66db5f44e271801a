//! Opens many idle gotalk connections: `idle_clients ADDR COUNT [SECONDS]`. Each sends the
//! protocol version, reads the server's, and then stays silent; once all are open it
//! prints `open N` and holds them for SECONDS (default 10) so the server's memory can be
//! read (see `idle.sh`). ADDR is `HOST:PORT` for TCP, or a `ws://` URL for WebSocket
//! (through tungstenite, a client that is not ours).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7100".into());
    let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let hold: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(10);
    if addr.starts_with("ws://") {
        let mut conns = Vec::with_capacity(count);
        for i in 0..count {
            conns.push(open_ws(&addr, i).await);
        }
        println!("open {}", conns.len());
        tokio::time::sleep(Duration::from_secs(hold)).await;
        return;
    }
    let mut conns = Vec::with_capacity(count);
    for i in 0..count {
        let mut stream = match tokio::net::TcpStream::connect(&addr).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("connection {i} failed: {e}");
                std::process::exit(1);
            }
        };
        let mut version = [0u8; 2];
        let handshake = async {
            stream.write_all(b"01").await?;
            stream.read_exact(&mut version).await
        };
        if let Err(e) = handshake.await {
            eprintln!("handshake {i} failed: {e}");
            std::process::exit(1);
        }
        if &version != b"01" {
            eprintln!("connection {i}: unexpected version {version:?}");
            std::process::exit(1);
        }
        conns.push(stream);
    }
    println!("open {}", conns.len());
    tokio::time::sleep(Duration::from_secs(hold)).await;
}

/// A WebSocket that has traded versions with the server.
async fn open_ws(
    url: &str,
    i: usize,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let fail = |what: String| -> ! {
        eprintln!("websocket {i}: {what}");
        std::process::exit(1)
    };
    let (mut ws, _) = match tokio_tungstenite::connect_async(url).await {
        Ok(ws) => ws,
        Err(e) => fail(format!("connect failed: {e}")),
    };
    if let Err(e) = ws.send(Message::binary(&b"01"[..])).await {
        fail(format!("sending the version failed: {e}"));
    }
    match ws.next().await {
        Some(Ok(Message::Binary(version))) if &version[..] == b"01" => ws,
        other => fail(format!("expected the version, got {other:?}")),
    }
}
