//! What the integration tests share: the operations a test server offers, and raw peers
//! that read and write bytes on 127.0.0.1. (Each test binary uses a part of it.)

#![allow(dead_code)]

use std::{net::SocketAddr, time::Duration};

use bytes::{Bytes, BytesMut};
use gotalk::{
    wire::{parse, Message, ParseError},
    Config, Error, Handlers, Limits, Listening, Reply, Request, Server, Sock, StreamRequest,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::timeout,
};

pub mod feed;

pub const SECOND: Duration = Duration::from_secs(1);

/// The operations of a test server:
/// - `greet`: `"N"` → `"Hello N"`; `bytes`: the raw payload back; `json`: whether the
///   JSON input is an array.
/// - `sleep`: `ms` → `ms` after sleeping that long (at most 5 s).
/// - `fail`: an ErrorResult `boom`; `busy`: a RetryResult after 7 ms; `panic`: panics.
/// - `ask-client`: asks the caller's `double` for its input and answers that + 1.
/// - `sum` (stream): adds the JSON numbers streamed in; `stream-echo` (stream): every
///   chunk back as a stream result; `count`: `n` → a stream result of `0` .. `n - 1`.
pub fn server_handlers() -> Handlers {
    Handlers::new()
        .handle("greet", |name: String| async move {
            Ok::<_, Error>(format!("Hello {name}"))
        })
        .handle("sleep", |ms: u64| async move {
            tokio::time::sleep(Duration::from_millis(ms.min(5000))).await;
            Ok::<_, Error>(ms)
        })
        .handle("json", |value: serde_json::Value| async move {
            Ok::<_, Error>(value.is_array())
        })
        .handle("fail", |_: ()| async move { Err::<(), _>("boom") })
        .handle("busy", |_: ()| async move {
            Err::<(), _>(Error::retry(Duration::from_millis(7), "try later"))
        })
        .handle("panic", |_: ()| async move {
            if true {
                panic!("handler went wrong");
            }
            Ok::<(), Error>(())
        })
        .handle_raw("bytes", |req: Request| async move {
            Ok::<_, Error>(req.payload)
        })
        .handle_with_sock("ask-client", |sock: Sock, n: i64| async move {
            let doubled: i64 = sock.request("double", &n).await?;
            Ok::<_, Error>(doubled + 1)
        })
        .handle_stream("sum", |mut req: StreamRequest| async move {
            let mut total = 0i64;
            while let Some(n) = req.chunks.next_json::<i64>().await {
                match n {
                    Ok(n) => total += n,
                    Err(e) => return Reply::Error(e.to_string()),
                }
            }
            Reply::Result(Bytes::from(total.to_string()))
        })
        .handle_stream("stream-echo", |req: StreamRequest| async move {
            Reply::stream(req.chunks)
        })
        .handle_reply("count", |req: Request| async move {
            let n: usize = serde_json::from_slice(&req.payload).unwrap_or(0);
            Reply::stream(futures_util::stream::iter(
                (0..n).map(|i| Ok(Bytes::from(i.to_string()))),
            ))
        })
}

/// What a test client offers the server: `double`.
pub fn client_handlers() -> Handlers {
    Handlers::new().handle("double", |n: i64| async move { Ok::<_, Error>(n * 2) })
}

/// A TCP server on a free port of 127.0.0.1.
pub async fn start(config: Config) -> Listening<SocketAddr> {
    Server::new(config).listen_tcp("127.0.0.1:0").await.unwrap()
}

/// A server of `server_handlers` with `limits`.
pub async fn start_limited(limits: Limits) -> Listening<SocketAddr> {
    start(
        Config::accepting()
            .handlers(server_handlers())
            .limits(limits),
    )
    .await
}

/// A raw TCP peer that has exchanged versions.
pub async fn raw_peer(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"01").await.unwrap();
    let mut version = [0; 2];
    stream.read_exact(&mut version).await.unwrap();
    assert_eq!(&version, b"01");
    stream
}

/// Exactly `n` bytes from the peer (within 5 s).
pub async fn read_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    timeout(SECOND * 5, stream.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    buf
}

/// At least `n` bytes from the peer (within 5 s).
pub async fn read_at_least(peer: &mut TcpStream, n: usize) -> BytesMut {
    let mut out = BytesMut::new();
    while out.len() < n {
        let mut chunk = [0u8; 256];
        let got = timeout(SECOND * 5, peer.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(got > 0, "the peer closed early");
        out.extend_from_slice(&chunk[..got]);
    }
    out
}

/// Everything the peer sends until it closes, which it must within 5 s.
pub async fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    let mut rest = Vec::new();
    let _ = timeout(SECOND * 5, stream.read_to_end(&mut rest))
        .await
        .expect("connection closes");
    rest
}

/// Everything the peer sends until it closes or `wait` passes.
pub async fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = timeout(wait, stream.read_to_end(&mut out)).await;
    out
}

/// Parses a whole stream of messages; panics on anything that is not one.
pub fn messages(bytes: &[u8]) -> Vec<Message> {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while !buf.is_empty() {
        match parse(&mut buf, u32::MAX) {
            Ok(msg) => out.push(msg),
            Err(ParseError::Incomplete { .. }) => panic!("truncated output: {buf:?}"),
            Err(ParseError::Invalid(e)) => panic!("invalid output ({e}): {buf:?}"),
        }
    }
    out
}

/// A fresh connection to `addr` is served.
pub async fn still_serves(addr: SocketAddr) {
    let client = gotalk::tcp::connect(addr).await.unwrap();
    let greeting: String = timeout(SECOND * 5, client.request("greet", "again"))
        .await
        .expect("a fresh connection is served")
        .unwrap();
    assert_eq!(greeting, "Hello again");
}

/// A WebSocket frame as a client writes it: `first` is its first byte (the FIN bit and
/// the opcode), its payload masked with `mask` unless that is `None`.
pub fn ws_frame(first: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(bit | n as u8),
        n if n < 65_536 => {
            out.push(bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(mask) => {
            out.extend_from_slice(&mask);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// The WebSocket opening handshake on `tcp` for `path` at `addr`, with no `Origin` (a
/// program, not a page), with RFC 6455 4.2.2's example key; returns the server's response
/// head.
pub async fn ws_upgrade(
    tcp: &mut TcpStream,
    addr: SocketAddr,
    path: &str,
) -> std::io::Result<String> {
    let upgrade = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    tcp.write_all(upgrade.as_bytes()).await?;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await?);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}
