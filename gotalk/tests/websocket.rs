//! Gotalk over WebSocket on 127.0.0.1: the endpoint mounted in a web server, the Rust
//! client, the exact message framing (PROTOCOL.md 4), the origin policy and connect hook,
//! the message size limit, and the gotalk.js route (200, ETag, 304, gzip).

#![cfg(feature = "websocket")]

use std::{io::Read, net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use gotalk::{
    ws::{self, OriginPolicy, Refusal},
    Config,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::timeout,
};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::StatusCode, Message};

mod support;
use support::{client_handlers, server_handlers as handlers, SECOND};

async fn serve(endpoint: ws::Endpoint) -> ws::WebServer {
    ws::WebServer::bind("127.0.0.1:0", endpoint, None)
        .await
        .unwrap()
}

fn url(addr: SocketAddr) -> String {
    format!("ws://{addr}/gotalk")
}

#[tokio::test]
async fn rust_client_and_server_call_each_other_over_websocket() {
    let server = serve(ws::Endpoint::new(Config::accepting().handlers(handlers()))).await;
    let mine = client_handlers();
    for path in ["/gotalk", "/gotalk/"] {
        let url = format!("ws://{}{path}", server.local_addr());
        let client = ws::connect_with(&url, Config::dialling().handlers(mine.clone()))
            .await
            .unwrap();
        let greeting: String = client.request("greet", "web").await.unwrap();
        assert_eq!(greeting, "Hello web");
        let answer: i64 = client.request("ask-client", &21).await.unwrap();
        assert_eq!(answer, 43, "the server called the client back");
        let (mut writer, mut results) = client.stream_request("stream-echo", "a").await.unwrap();
        writer.send("b").await.unwrap();
        writer.finish().await.unwrap();
        let mut got = Vec::new();
        while let Some(chunk) = timeout(SECOND * 5, results.next()).await.unwrap() {
            got.push(chunk.unwrap());
        }
        assert_eq!(got, ["a", "b"]);
        let big = Bytes::from(vec![b'x'; 3 << 20]);
        let (writer, mut results) = client
            .stream_request("stream-echo", big.clone())
            .await
            .unwrap();
        writer.finish().await.unwrap();
        assert_eq!(results.next().await.unwrap().unwrap(), big);
        client.close();
    }
}

async fn raw(
    addr: SocketAddr,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>> {
    let mut request = url(addr).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", format!("http://{addr}").parse().unwrap());
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

async fn next_binary(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
) -> Vec<u8> {
    loop {
        match timeout(SECOND * 5, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            Message::Binary(data) => return data.to_vec(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a binary message, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn framing_is_exactly_version_header_payload_and_input_is_a_byte_stream() {
    let server = serve(ws::Endpoint::new(Config::accepting().handlers(handlers()))).await;
    let mut ws = raw(server.local_addr()).await;
    assert_eq!(
        next_binary(&mut ws).await,
        b"01",
        "the version is a message of its own"
    );
    ws.send(Message::binary(&b"01"[..])).await.unwrap();
    // A header and its payload in one message.
    ws.send(Message::binary(&b"r0001005greet00000004\"Bo\""[..]))
        .await
        .unwrap();
    assert_eq!(next_binary(&mut ws).await, b"R00010000000a");
    assert_eq!(next_binary(&mut ws).await, b"\"Hello Bo\"");
    // A header split over two messages, one of them text, and the payload on its own.
    ws.send(Message::text("r0002005gr")).await.unwrap();
    ws.send(Message::binary(&b"eet00000004"[..])).await.unwrap();
    ws.send(Message::text("\"Al\"")).await.unwrap();
    // An empty stream result goes out as a header alone.
    ws.send(Message::binary(
        &b"s000300bstream-echo00000000p000300000000"[..],
    ))
    .await
    .unwrap();
    let mut rest = Vec::new();
    for _ in 0..3 {
        rest.push(next_binary(&mut ws).await);
    }
    assert!(rest.contains(&b"R00020000000a".to_vec()), "{rest:?}");
    assert!(rest.contains(&b"\"Hello Al\"".to_vec()), "{rest:?}");
    assert!(rest.contains(&b"S000300000000".to_vec()), "{rest:?}");
}

async fn http_status(addr: SocketAddr, origin: Option<&str>, cookie: Option<&str>) -> StatusCode {
    let mut request = url(addr).into_client_request().unwrap();
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
    }
    if let Some(cookie) = cookie {
        request
            .headers_mut()
            .insert("cookie", cookie.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((_, response)) => response.status(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status(),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn the_origin_policy_and_the_connect_hook_decide_who_may_open_a_socket() {
    // By default only pages of the server's own origin (the Host header's host and port),
    // and programs that send no origin (browsers always send one).
    let server = serve(ws::Endpoint::new(Config::accepting())).await;
    let addr = server.local_addr();
    assert_eq!(
        http_status(addr, None, None).await,
        StatusCode::SWITCHING_PROTOCOLS
    );
    let go_style = format!("http://{addr}/");
    assert_eq!(
        http_status(addr, Some(&go_style), None).await,
        StatusCode::SWITCHING_PROTOCOLS,
        "an origin is compared as an origin: a trailing slash is tolerated"
    );
    assert_eq!(
        http_status(addr, Some("null"), None).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        http_status(addr, Some("https://anywhere.example"), None).await,
        StatusCode::FORBIDDEN,
        "a page of another site is refused: it would act with the user's cookies"
    );
    let other_port = format!("http://127.0.0.1:{}", addr.port() + 1);
    assert_eq!(
        http_status(addr, Some(&other_port), None).await,
        StatusCode::FORBIDDEN
    );
    let own = format!("http://{addr}");
    assert_eq!(
        http_status(addr, Some(&own), None).await,
        StatusCode::SWITCHING_PROTOCOLS
    );

    // Any page at all only when asked for.
    let open =
        serve(ws::Endpoint::new(Config::accepting()).origins(OriginPolicy::RequirePresent)).await;
    assert_eq!(
        http_status(open.local_addr(), Some("https://anywhere.example"), None).await,
        StatusCode::SWITCHING_PROTOCOLS
    );
    assert_eq!(
        http_status(open.local_addr(), None, None).await,
        StatusCode::FORBIDDEN,
        "RequirePresent refuses a missing origin"
    );

    let listed = serve(
        ws::Endpoint::new(Config::accepting())
            .origins(OriginPolicy::AllowList(vec!["https://app.example".into()]))
            .on_connect(|req| match req.cookie("session") {
                Some("good") => Ok(()),
                _ => Err(Refusal::new(StatusCode::UNAUTHORIZED, "sign in first")),
            }),
    )
    .await;
    let addr = listed.local_addr();
    assert_eq!(
        http_status(addr, Some("https://evil.example"), Some("session=good")).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        http_status(addr, Some("https://app.example"), Some("a=1; session=bad")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        http_status(addr, Some("https://app.example"), Some("a=1; session=good")).await,
        StatusCode::SWITCHING_PROTOCOLS
    );
    let own = format!("http://{addr}");
    assert_eq!(
        http_status(addr, Some(&own), Some("session=good")).await,
        StatusCode::SWITCHING_PROTOCOLS,
        "the list adds to the server's own origin"
    );
}

#[tokio::test]
async fn a_message_over_the_size_limit_closes_the_socket() {
    let endpoint =
        ws::Endpoint::new(Config::accepting().handlers(handlers())).max_message_size(64 * 1024);
    let server = serve(endpoint.clone()).await;
    let mut ws = raw(server.local_addr()).await;
    assert_eq!(next_binary(&mut ws).await, b"01");
    ws.send(Message::binary(&b"01"[..])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(endpoint.connections().len(), 1);
    let _ = ws.send(Message::binary(vec![b'r'; 100 * 1024])).await;
    let closed = timeout(SECOND * 5, async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the socket is closed");
    timeout(SECOND * 5, async {
        while !endpoint.connections().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the connection is forgotten");
}

/// A bare HTTP/1.1 GET: status, headers (lower-case names) and body.
async fn get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    timeout(SECOND * 5, stream.read_to_end(&mut response))
        .await
        .unwrap()
        .unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(response[..split].to_vec()).unwrap();
    let mut body = response[split + 4..].to_vec();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v == "chunked")
    {
        body = dechunk(&body);
    }
    (status, headers, body)
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&body[..line_end]).unwrap().trim(), 16)
                .unwrap();
        body = &body[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn gotalk_d_ts_is_served_beside_gotalk_js() {
    let server = serve(ws::Endpoint::new(Config::accepting())).await;
    let addr = server.local_addr();
    let (status, headers, body) = get(addr, "/gotalk/gotalk.d.ts", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body, ws::GOTALK_DTS.as_bytes());
    assert!(ws::GOTALK_DTS.contains("class Sock"), "the declarations");
    let etag = header(&headers, "etag").unwrap().to_string();
    let (status, _, _) = get(addr, "/gotalk/gotalk.d.ts", &[("If-None-Match", &etag)]).await;
    assert_eq!(status, 304);
    let (_, js, _) = get(addr, "/gotalk/gotalk.js", &[]).await;
    assert_ne!(header(&js, "etag"), Some(etag.as_str()), "a tag of its own");
}

#[tokio::test]
async fn gotalk_js_is_served_with_etag_304_and_gzip() {
    let server = serve(ws::Endpoint::new(Config::accepting())).await;
    let addr = server.local_addr();
    let (status, headers, body) = get(addr, "/gotalk/gotalk.js", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body, ws::GOTALK_JS.as_bytes());
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/javascript; charset=utf-8")
    );
    assert_eq!(header(&headers, "vary"), Some("Accept-Encoding"));
    assert!(header(&headers, "cache-control")
        .unwrap()
        .contains("max-age="));
    let etag = header(&headers, "etag").unwrap().to_string();

    let (status, headers, body) = get(addr, "/gotalk/gotalk.js", &[("If-None-Match", &etag)]).await;
    assert_eq!(status, 304);
    assert!(body.is_empty());
    assert_eq!(header(&headers, "etag"), Some(etag.as_str()));
    let weak_in_list = format!("\"nope\", W/{etag}");
    let (status, _, _) = get(
        addr,
        "/gotalk/gotalk.js",
        &[("If-None-Match", &weak_in_list)],
    )
    .await;
    assert_eq!(status, 304);
    let (status, _, _) = get(addr, "/gotalk/gotalk.js", &[("If-None-Match", "\"nope\"")]).await;
    assert_eq!(status, 200);

    let (status, headers, body) = get(
        addr,
        "/gotalk/gotalk.js",
        &[("Accept-Encoding", "gzip, deflate")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-encoding"), Some("gzip"));
    let mut js = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut js)
        .unwrap();
    assert_eq!(js, ws::GOTALK_JS);
    assert!(body.len() < ws::GOTALK_JS.len());
}

/// A `wss://` Gotalk server: TLS with a certificate made for `localhost`, then the
/// WebSocket handshake, then a `Sock` over it.
async fn tls_server() -> (SocketAddr, rcgen::CertifiedKey<rcgen::KeyPair>) {
    use tokio_rustls::rustls;
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(ws) = tokio_tungstenite::accept_async(tls).await else {
                    return;
                };
                let sock = gotalk::Sock::adopt(
                    ws::WsStream::new(ws),
                    "wss",
                    Config::accepting().handlers(handlers()),
                );
                sock.closed().await;
            });
        }
    });
    (addr, cert)
}

#[tokio::test]
async fn wss_verifies_the_server_against_the_roots_given() {
    let (addr, cert) = tls_server().await;
    let url = format!("wss://localhost:{}/", addr.port());
    // Trusting the server's certificate: requests work.
    let mut roots = ws::rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let tls = gotalk::tls::client_config(roots).unwrap();
    let client = ws::connect_tls(&url, Config::dialling(), tls)
        .await
        .unwrap();
    let greeting: String = client.request("greet", "tls").await.unwrap();
    assert_eq!(greeting, "Hello tls");
    // With the web's roots, a self-signed certificate is refused, and says why.
    let err = ws::connect(&url).await.unwrap_err().to_string();
    assert!(err.contains("certificate"), "{err}");
}

#[tokio::test]
async fn garbage_over_websocket_gets_a_protocol_error_and_the_server_goes_on() {
    let endpoint = ws::Endpoint::new(Config::accepting().handlers(handlers()));
    let server = serve(endpoint.clone()).await;
    // Garbage inside well-formed WebSocket messages: protocol error 2, then the close.
    let mut ws = raw(server.local_addr()).await;
    assert_eq!(next_binary(&mut ws).await, b"01");
    ws.send(Message::binary(&b"01"[..])).await.unwrap();
    ws.send(Message::binary(&b"zzzz not gotalk"[..]))
        .await
        .unwrap();
    assert_eq!(next_binary(&mut ws).await, b"f00000002");
    // Garbage where WebSocket frames should be: the socket is dropped.
    let mut tcp = TcpStream::connect(server.local_addr()).await.unwrap();
    let upgrade = format!(
        "GET /gotalk HTTP/1.1\r\nHost: {0}\r\nOrigin: http://{0}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        server.local_addr()
    );
    tcp.write_all(upgrade.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");
    let _ = tcp.write_all(&[0xff; 64]).await;
    let mut rest = Vec::new();
    let closed = timeout(SECOND * 5, tcp.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the server closes the socket");
    timeout(SECOND * 5, async {
        while !endpoint.connections().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("both connections are forgotten");
    let client = ws::connect(&url(server.local_addr())).await.unwrap();
    let greeting: String = client.request("greet", "still here").await.unwrap();
    assert_eq!(greeting, "Hello still here");
}

/// A web server whose HTTP side is bounded tightly, so the bounds show quickly.
async fn bounded(header_read_timeout: Duration, max_connections: usize) -> ws::WebServer {
    let limits = ws::HttpLimits::default()
        .header_read_timeout(header_read_timeout)
        .max_connections(max_connections);
    let endpoint = ws::Endpoint::new(Config::accepting().handlers(handlers()));
    ws::WebServer::bind_with("127.0.0.1:0", endpoint, None, limits)
        .await
        .unwrap()
}

const GET_SCRIPT: &[u8] = b"GET /gotalk/gotalk.js HTTP/1.1\r\nHost: x\r\n\r\n";

#[tokio::test]
async fn silent_dribbling_and_idle_http_connections_are_closed_at_the_header_timeout() {
    let server = bounded(Duration::from_millis(300), 16).await;
    let addr = server.local_addr();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(GET_SCRIPT).await.unwrap();
    let mut dribbling = TcpStream::connect(addr).await.unwrap();
    let (mut dribbled_in, mut dribbled_out) = dribbling.split();
    let dribble = async {
        for byte in GET_SCRIPT {
            if dribbled_out.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let mut seen = Vec::new();
    let closed = async { timeout(SECOND * 5, dribbled_in.read_to_end(&mut seen)).await };
    let (_, closed) = tokio::join!(dribble, closed);
    assert!(
        closed.is_ok(),
        "a header dribbled a byte at a time is cut off"
    );
    assert!(!seen.starts_with(b"HTTP/1.1 200"), "and never answered");

    let mut rest = Vec::new();
    timeout(SECOND * 5, silent.read_to_end(&mut rest))
        .await
        .expect("a silent connection is closed")
        .unwrap();
    let mut answered = Vec::new();
    timeout(SECOND * 5, idle.read_to_end(&mut answered))
        .await
        .expect("an idle keep-alive connection is closed after its response")
        .unwrap();
    assert!(answered.starts_with(b"HTTP/1.1 200"));
}

#[tokio::test]
async fn past_the_cap_http_connections_wait_and_sockets_do_not_count() {
    let server = bounded(Duration::from_millis(500), 2).await;
    let addr = server.local_addr();
    // Sockets leave the HTTP side once upgraded: three fit where two HTTP connections do.
    let mut socks = Vec::new();
    for _ in 0..3 {
        let sock = ws::connect(&url(addr)).await.unwrap();
        let greeting: String = sock.request("greet", "ws").await.unwrap();
        assert_eq!(greeting, "Hello ws");
        socks.push(sock);
    }
    // Two silent HTTP connections take both slots: a third waits unanswered…
    let _silent = [
        TcpStream::connect(addr).await.unwrap(),
        TcpStream::connect(addr).await.unwrap(),
    ];
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut third = TcpStream::connect(addr).await.unwrap();
    third.write_all(GET_SCRIPT).await.unwrap();
    let mut first = [0u8; 12];
    assert!(
        timeout(Duration::from_millis(200), third.read_exact(&mut first))
            .await
            .is_err(),
        "not served while the slots are taken"
    );
    // …until the header timeout frees them.
    timeout(SECOND * 5, third.read_exact(&mut first))
        .await
        .expect("served once a slot is free")
        .unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let greeting: String = socks[0].request("greet", "still").await.unwrap();
    assert_eq!(greeting, "Hello still", "the sockets were never held up");
}

/// The inspector page only where it was asked for, loading gotalk.js from the endpoint's
/// mount; and the endpoint's connections describe themselves only with
/// `Config::describe` (the page says so otherwise).
#[tokio::test]
async fn the_inspector_page_is_served_only_when_asked_for() {
    let plain = serve(ws::Endpoint::new(Config::accepting())).await;
    let (status, _, _) = get(plain.local_addr(), "/inspector", &[]).await;
    assert_eq!(status, 404);
    let endpoint = ws::Endpoint::new(Config::accepting().describe(true)).inspector("/inspector");
    let server = serve(endpoint).await;
    let (status, headers, body) = get(server.local_addr(), "/inspector", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(header(&headers, "x-frame-options"), Some("DENY"));
    let page = String::from_utf8(body).unwrap();
    assert!(
        page.contains(r#"<script src="/gotalk/gotalk.js"></script>"#),
        "{page}"
    );
    let url = format!("ws://{}/gotalk/", server.local_addr());
    let sock = ws::connect(&url).await.unwrap();
    let description = sock.describe_peer(SECOND * 2).await.unwrap();
    assert!(description.operations.is_empty());
}
