//! The WebSocket frame rules (RFC 6455 section 5) as our endpoint applies them, tried
//! with frames written byte by byte: fragments and control frames between them, pings
//! answered, closes echoed, and every kind of bad frame failing the connection with the
//! close code RFC 6455 names, while the server goes on serving others.

#![cfg(feature = "websocket")]

use std::{net::SocketAddr, time::Duration};

use gotalk::{ws, Config};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::timeout,
};

mod support;
use support::{server_handlers as handlers, ws_frame as frame, ws_upgrade, SECOND};

const MASK: [u8; 4] = [0x1f, 0x2e, 0x3d, 0x4c];

async fn serve(endpoint: ws::Endpoint) -> ws::WebServer {
    ws::WebServer::bind("127.0.0.1:0", endpoint, None)
        .await
        .unwrap()
}

/// A socket after the opening handshake, with no `Origin` (a program, not a page).
async fn open(addr: SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let head = ws_upgrade(&mut tcp, addr, "/gotalk/").await.unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // RFC 6455 4.2.2's example key and its answer.
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
    tcp
}

fn binary(payload: &[u8]) -> Vec<u8> {
    frame(0x82, Some(MASK), payload)
}

/// The next frame from the server: its first byte and its payload (never masked).
async fn next_frame(tcp: &mut TcpStream) -> (u8, Vec<u8>) {
    timeout(SECOND * 5, async {
        let first = tcp.read_u8().await.unwrap();
        let second = tcp.read_u8().await.unwrap();
        assert_eq!(second & 0x80, 0, "a server's frames are not masked");
        let len = match second & 0x7f {
            126 => tcp.read_u16().await.unwrap() as usize,
            127 => tcp.read_u64().await.unwrap() as usize,
            n => n as usize,
        };
        let mut payload = vec![0; len];
        tcp.read_exact(&mut payload).await.unwrap();
        (first, payload)
    })
    .await
    .expect("a frame within 5 s")
}

/// Trades versions.
async fn versions(tcp: &mut TcpStream) {
    assert_eq!(next_frame(tcp).await, (0x82, b"01".to_vec()));
    tcp.write_all(&binary(b"01")).await.unwrap();
}

/// The server's close frame, its code, and the end of the stream after it.
async fn expect_close(tcp: &mut TcpStream, code: u16) {
    let (first, payload) = next_frame(tcp).await;
    assert_eq!(first, 0x88, "a close frame");
    assert_eq!(payload[..2], code.to_be_bytes(), "close code");
    let mut rest = Vec::new();
    timeout(SECOND * 5, tcp.read_to_end(&mut rest))
        .await
        .expect("the server closes the connection")
        .unwrap();
}

#[tokio::test]
async fn fragments_with_control_frames_between_them_are_one_byte_stream() {
    let server = serve(ws::Endpoint::new(Config::accepting().handlers(handlers()))).await;
    let mut tcp = open(server.local_addr()).await;
    versions(&mut tcp).await;
    // A request in a text message of three fragments, a ping between two of them.
    let mut bytes = frame(0x01, Some(MASK), b"r0001005gr");
    bytes.extend(frame(0x89, Some([9, 8, 7, 6]), b"are you there"));
    bytes.extend(frame(0x00, Some([1, 2, 3, 4]), b"eet0000"));
    bytes.extend(frame(0x80, Some([0, 0, 0, 0]), b"0004\"Bo\""));
    // Then an unsolicited pong, which is ignored.
    bytes.extend(frame(0x8A, Some(MASK), b""));
    // Written a byte at a time: heads and masks cut anywhere.
    for byte in bytes {
        tcp.write_all(&[byte]).await.unwrap();
    }
    assert_eq!(
        next_frame(&mut tcp).await,
        (0x8A, b"are you there".to_vec())
    );
    assert_eq!(
        next_frame(&mut tcp).await,
        (0x82, b"R00010000000a".to_vec())
    );
    assert_eq!(next_frame(&mut tcp).await, (0x82, b"\"Hello Bo\"".to_vec()));
    // A close is echoed with its code, and the connection ends.
    tcp.write_all(&frame(0x88, Some(MASK), &1001u16.to_be_bytes()))
        .await
        .unwrap();
    expect_close(&mut tcp, 1001).await;
}

#[tokio::test]
async fn a_large_payload_crosses_in_frames_of_every_length_encoding() {
    let server = serve(ws::Endpoint::new(Config::accepting().handlers(handlers()))).await;
    let mut tcp = open(server.local_addr()).await;
    versions(&mut tcp).await;
    for size in [125usize, 126, 65_535, 65_536, 300_000] {
        let text = "x".repeat(size - 2);
        let payload = format!("\"{text}\"");
        let header = format!("r0001005bytes{size:08x}");
        let mut bytes = binary(header.as_bytes());
        // The payload in fragments of 1000 bytes.
        let chunks: Vec<_> = payload.as_bytes().chunks(1000).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let opcode = if i == 0 { 0x02 } else { 0x00 };
            let fin = if i + 1 == chunks.len() { 0x80 } else { 0 };
            bytes.extend(frame(fin | opcode, Some(MASK), chunk));
        }
        tcp.write_all(&bytes).await.unwrap();
        assert_eq!(
            next_frame(&mut tcp).await,
            (0x82, format!("R0001{size:08x}").into_bytes())
        );
        let (first, echoed) = next_frame(&mut tcp).await;
        assert_eq!(first, 0x82);
        assert!(echoed == payload.as_bytes(), "size {size}: echoed intact");
    }
}

#[tokio::test]
async fn bad_frames_fail_the_connection_with_the_code_rfc_6455_names() {
    let endpoint =
        ws::Endpoint::new(Config::accepting().handlers(handlers())).max_message_size(1000);
    let server = serve(endpoint).await;
    let cases: [(&str, Vec<u8>, u16); 7] = [
        ("unmasked", frame(0x82, None, b"r0001"), 1002),
        ("reserved bit", frame(0xC2, Some(MASK), b"r0001"), 1002),
        ("unknown opcode", frame(0x83, Some(MASK), b"r0001"), 1002),
        ("fragmented ping", frame(0x09, Some(MASK), b"x"), 1002),
        ("long ping", frame(0x89, Some(MASK), &[b'x'; 126]), 1002),
        (
            "stray continuation",
            frame(0x80, Some(MASK), b"r0001"),
            1002,
        ),
        (
            "too big in fragments",
            [
                frame(0x02, Some(MASK), &[b' '; 600]),
                frame(0x80, Some(MASK), &[b' '; 600]),
            ]
            .concat(),
            1009,
        ),
    ];
    for (name, bytes, code) in cases {
        let mut tcp = open(server.local_addr()).await;
        versions(&mut tcp).await;
        tcp.write_all(&bytes).await.unwrap();
        // The server may first say what is wrong at the Gotalk level; the close follows.
        let (mut first, mut payload) = next_frame(&mut tcp).await;
        while first == 0x82 {
            (first, payload) = next_frame(&mut tcp).await;
        }
        assert_eq!(first, 0x88, "{name}: a close frame");
        assert_eq!(payload[..2], code.to_be_bytes(), "{name}: close code");
    }
    // And it goes on serving.
    let client = ws::connect(&format!("ws://{}/gotalk/", server.local_addr()))
        .await
        .unwrap();
    let greeting: String = client.request("greet", "after").await.unwrap();
    assert_eq!(greeting, "Hello after");
}

#[tokio::test]
async fn a_stream_read_a_byte_at_a_time_loses_nothing() {
    let server = serve(ws::Endpoint::new(Config::accepting().handlers(handlers()))).await;
    let url = format!("ws://{}/gotalk/", server.local_addr());
    let mut stream = ws::connect_stream(&url, None).await.unwrap();
    stream
        .write_all(b"01r0001005greet00000004\"Al\"")
        .await
        .unwrap();
    stream.flush().await.unwrap();
    let want = b"01R00010000000a\"Hello Al\"";
    let mut got = Vec::new();
    while got.len() < want.len() {
        let mut byte = [0u8; 1];
        timeout(Duration::from_secs(5), stream.read_exact(&mut byte))
            .await
            .unwrap()
            .unwrap();
        got.push(byte[0]);
    }
    assert_eq!(got, want);
}

/// A socket to `endpoint` after versions and our announcement that we read its messages as
/// a stream.
async fn announce_reading_a_stream(endpoint: ws::Endpoint) -> (ws::WebServer, TcpStream) {
    let server = serve(endpoint).await;
    let mut tcp = open(server.local_addr()).await;
    versions(&mut tcp).await;
    tcp.write_all(&binary(
        b"n00cgotalk:hello00000019cancel deadline ws-stream",
    ))
    .await
    .unwrap();
    (server, tcp)
}

#[tokio::test]
async fn a_client_that_reads_a_stream_gets_messages_together_and_large_payloads_apart() {
    let endpoint = ws::Endpoint::new(Config::accepting().handlers(handlers()));
    let (_server, mut tcp) = announce_reading_a_stream(endpoint).await;
    // The answer comes as one message, header and payload together (gotalk.js, which does
    // not announce it, gets them apart).
    assert_eq!(
        next_frame(&mut tcp).await,
        (
            0x82,
            b"n00cgotalk:hello00000019cancel deadline ws-stream".to_vec()
        )
    );
    // A result and its payload share a message.
    tcp.write_all(&binary(b"r0001005greet00000004\"Bo\""))
        .await
        .unwrap();
    assert_eq!(
        next_frame(&mut tcp).await,
        (0x82, b"R00010000000a\"Hello Bo\"".to_vec())
    );
    // A large payload has a message of its own, after its header's.
    let payload = format!("\"{}\"", "x".repeat(40_000));
    let mut request = format!("r0002005bytes{:08x}", payload.len()).into_bytes();
    request.extend_from_slice(payload.as_bytes());
    tcp.write_all(&binary(&request)).await.unwrap();
    assert_eq!(
        next_frame(&mut tcp).await,
        (0x82, format!("R0002{:08x}", payload.len()).into_bytes())
    );
    let (first, echoed) = next_frame(&mut tcp).await;
    assert_eq!(first, 0x82);
    assert!(echoed == payload.as_bytes(), "echoed intact");
}

#[tokio::test]
async fn a_server_with_a_message_limit_under_a_batch_does_not_offer_to_read_a_stream() {
    let endpoint =
        ws::Endpoint::new(Config::accepting().handlers(handlers())).max_message_size(1000);
    let (_server, mut tcp) = announce_reading_a_stream(endpoint).await;
    assert_eq!(
        next_frame(&mut tcp).await,
        (0x82, b"n00cgotalk:hello0000000f".to_vec())
    );
    assert_eq!(
        next_frame(&mut tcp).await,
        (0x82, b"cancel deadline".to_vec())
    );
}
