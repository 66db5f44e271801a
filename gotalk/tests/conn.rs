//! Connection behaviour over real sockets on 127.0.0.1: both peers serving and calling,
//! concurrency, streams, notifications, errors, retries, limits, timeouts, close and
//! shutdown.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use bytes::Bytes;
use futures_util::StreamExt;
use gotalk::{
    wire::{Message, ProtocolErrorCode},
    CallOptions, CloseReason, Config, Error, Handlers, Limits, Listening, Reply, Request, Server,
    Side, Sock, StreamRequest,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::timeout,
};

mod support;
use support::{
    client_handlers, messages, raw_peer, read_n, read_to_end, server_handlers, start,
    start_limited, SECOND,
};

async fn pair() -> (Listening<SocketAddr>, Sock) {
    let server = start(Config::accepting().handlers(server_handlers())).await;
    let client = gotalk::tcp::connect_with(
        server.local_addr(),
        Config::dialling().handlers(client_handlers()),
    )
    .await
    .unwrap();
    (server, client)
}

#[tokio::test]
async fn typed_request_and_result() {
    let (_server, client) = pair().await;
    let out: String = client.request("greet", "Rasmus").await.unwrap();
    assert_eq!(out, "Hello Rasmus");
}

#[tokio::test]
async fn both_peers_serve_and_call_on_one_connection() {
    let (server, client) = pair().await;
    // The server's handler calls the client back on the same connection.
    let out: i64 = client.request("ask-client", &20).await.unwrap();
    assert_eq!(out, 41);
    // And the server side calls the client directly.
    let server_side = server.connections().pop().unwrap();
    let doubled: i64 = server_side.request("double", &5).await.unwrap();
    assert_eq!(doubled, 10);
}

#[tokio::test]
async fn results_are_matched_to_requests_whatever_their_order() {
    let (_server, client) = pair().await;
    let calls = (0..200u64).map(|i| {
        let client = client.clone();
        async move {
            let ms = (i * 7919) % 23;
            let out: u64 = client.request("sleep", &ms).await.unwrap();
            assert_eq!(out, ms);
        }
    });
    futures_util::future::join_all(calls).await;
    assert_eq!(client.pending_requests(), 0);
}

#[tokio::test]
async fn a_slow_handler_does_not_hold_back_others() {
    let (_server, client) = pair().await;
    let slow = tokio::spawn({
        let client = client.clone();
        async move { client.request::<_, u64>("sleep", &2000u64).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let fast: String = timeout(SECOND, client.request("greet", "x"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fast, "Hello x");
    assert!(!slow.is_finished());
    slow.abort();
}

#[tokio::test]
async fn error_results_carry_the_handlers_text() {
    let (_server, client) = pair().await;
    let err = client.request::<_, ()>("fail", &()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Remote(text) if text == "boom"),
        "{err:?}"
    );
    let err = client.request::<_, ()>("nope", &()).await.unwrap_err();
    assert_eq!(err.to_string(), r#"unknown operation "nope""#);
}

#[tokio::test]
async fn input_that_does_not_decode_is_an_error_result() {
    let (_server, client) = pair().await;
    let err = client.request_raw("greet", "not json").await.unwrap_err();
    let Error::Remote(text) = err else {
        panic!("{err:?}")
    };
    assert!(
        text.starts_with(r#"invalid input for "greet": expected"#),
        "{text}"
    );
}

#[tokio::test]
async fn a_result_that_does_not_decode_is_a_decode_error() {
    let (_server, client) = pair().await;
    let err = client.request::<_, u32>("greet", "x").await.unwrap_err();
    assert!(
        matches!(&err, Error::Decode { op, .. } if op == "greet"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_panicking_handler_answers_an_error_and_the_connection_goes_on() {
    let (_server, client) = pair().await;
    let err = client.request::<_, ()>("panic", &()).await.unwrap_err();
    assert_eq!(err.to_string(), "handler panicked: handler went wrong");
    let out: String = client.request("greet", "still here").await.unwrap();
    assert_eq!(out, "Hello still here");
}

#[tokio::test]
async fn a_handler_can_answer_retry() {
    let (_server, client) = pair().await;
    let err = client.request::<_, ()>("busy", &()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Retry { wait, reason } if *wait == Duration::from_millis(7) && reason == "try later")
    );
}

#[tokio::test]
async fn past_the_limit_requests_get_retry_results_and_can_retry_automatically() {
    let limits = Limits::default()
        .max_single_requests(1)
        .retry_wait(Duration::from_millis(30)..=Duration::from_millis(60));
    let server = start_limited(limits).await;
    let client = gotalk::tcp::connect(server.local_addr()).await.unwrap();
    let slow = tokio::spawn({
        let client = client.clone();
        async move { client.request::<_, u64>("sleep", &150u64).await }
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    let err = client.request::<_, String>("greet", "x").await.unwrap_err();
    let Error::Retry { wait, reason } = err else {
        panic!("{err:?}")
    };
    assert!((30..=60).contains(&wait.as_millis()), "{wait:?}");
    assert_eq!(reason, "request rate limit");
    let out: String = client
        .request_with("greet", "x", CallOptions::new().retries(20))
        .await
        .unwrap();
    assert_eq!(out, "Hello x");
    assert_eq!(slow.await.unwrap().unwrap(), 150);
}

#[tokio::test]
async fn a_timed_out_or_dropped_call_leaves_nothing_pending() {
    let (_server, client) = pair().await;
    let err = client
        .request_with::<_, u64>(
            "sleep",
            &300u64,
            CallOptions::new().timeout(Duration::from_millis(50)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        r#"request "sleep" got no answer within 50 ms"#
    );
    assert_eq!(client.pending_requests(), 0);
    tokio::select! {
        _ = client.request::<_, u64>("sleep", &300u64) => panic!("should not finish"),
        _ = tokio::time::sleep(Duration::from_millis(20)) => {}
    }
    assert_eq!(client.pending_requests(), 0);
    // The late results arrive, are dropped, and the connection still works.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let out: String = client.request("greet", "late").await.unwrap();
    assert_eq!(out, "Hello late");
}

#[tokio::test]
async fn stream_request_with_single_result() {
    let (_server, client) = pair().await;
    let (mut writer, results) = client.stream_request("sum", "1").await.unwrap();
    for n in 2..=10 {
        writer.send_json(&n).await.unwrap();
    }
    writer.finish().await.unwrap();
    let all = results.collect_chunks().await.unwrap();
    assert_eq!(all, [Bytes::from_static(b"55")]);
}

#[tokio::test]
async fn stream_request_with_stream_result() {
    let (_server, client) = pair().await;
    let (mut writer, mut results) = client
        .stream_request("stream-echo", "hello ")
        .await
        .unwrap();
    writer.send("world").await.unwrap();
    assert_eq!(results.next().await.unwrap().unwrap(), "hello ");
    assert_eq!(results.next().await.unwrap().unwrap(), "world");
    writer.send("!").await.unwrap();
    writer.finish().await.unwrap();
    assert_eq!(results.next().await.unwrap().unwrap(), "!");
    assert!(results.next().await.is_none());
    assert_eq!(client.pending_requests(), 0);
}

#[tokio::test]
async fn single_request_with_stream_result() {
    let (_server, client) = pair().await;
    let mut results = client.request_results("count", "3").await.unwrap();
    let mut got = Vec::new();
    while let Some(n) = results.next_json::<u32>().await {
        got.push(n.unwrap());
    }
    assert_eq!(got, [0, 1, 2]);
    // A plain request to a streaming operation gets the parts together.
    let all = client.request_raw("count", "4").await.unwrap();
    assert_eq!(all, "0123");
}

#[tokio::test]
async fn streams_work_from_the_accepting_side_too() {
    let handlers = client_handlers().handle_stream("upper", |req: StreamRequest| async move {
        Reply::stream(
            req.chunks
                .map(|c| c.map(|b| Bytes::from(b.to_ascii_uppercase()))),
        )
    });
    let server = start(Config::accepting()).await;
    let _client =
        gotalk::tcp::connect_with(server.local_addr(), Config::dialling().handlers(handlers))
            .await
            .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let server_side = server.connections().pop().unwrap();
    let (mut w, results) = server_side.stream_request("upper", "ab").await.unwrap();
    w.send("cd").await.unwrap();
    w.finish().await.unwrap();
    assert_eq!(results.collect_chunks().await.unwrap(), ["AB", "CD"]);
}

#[tokio::test]
async fn notifications_both_ways_in_order_and_unknown_ones_ignored() {
    let got = Arc::new(Mutex::new(Vec::new()));
    let mut handlers = server_handlers();
    let sink = got.clone();
    handlers = handlers.handle_notification_with_sock("tick", move |sock: Sock, n: u32| {
        let sink = sink.clone();
        async move {
            sink.lock().unwrap().push(n);
            if n == 99 {
                // A notification handler may talk to the peer.
                sock.notify("done", &n).await.unwrap();
            }
        }
    });
    let server = start(Config::accepting().handlers(handlers)).await;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let done_tx = Mutex::new(Some(done_tx));
    let client_side = Handlers::new().handle_notification("done", move |n: u32| {
        let tx = done_tx.lock().unwrap().take();
        async move {
            tx.unwrap().send(n).unwrap();
        }
    });
    let client = gotalk::tcp::connect_with(
        server.local_addr(),
        Config::dialling().handlers(client_side),
    )
    .await
    .unwrap();
    client.notify("nobody listens", &"x").await.unwrap();
    for n in 0..100u32 {
        client.notify("tick", &n).await.unwrap();
    }
    assert_eq!(timeout(SECOND * 5, done_rx).await.unwrap().unwrap(), 99);
    assert_eq!(*got.lock().unwrap(), (0..100).collect::<Vec<_>>());
}

#[tokio::test]
async fn closing_fails_every_pending_request_promptly() {
    let (server, client) = pair().await;
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.request::<_, u64>("sleep", &5000u64).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.close();
    for call in calls {
        let err = timeout(SECOND, call).await.unwrap().unwrap().unwrap_err();
        assert!(
            matches!(err, Error::Closed(CloseReason::PeerClosed)),
            "{err:?}"
        );
    }
    assert!(client.is_closed());
    let err = client.request::<_, String>("greet", "x").await.unwrap_err();
    assert_eq!(err.to_string(), "connection closed: closed by the peer");
}

#[tokio::test]
async fn a_protocol_error_from_the_peer_fails_pending_requests_with_it() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        // Our version, our extension's announcement (EXTENSIONS.md), the request.
        let mut buf = vec![0; 26 + 39];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(
            &buf,
            br#"01n00cgotalk:hello0000000fcancel deadliner0000005greet00000003"x""#
        );
        s.write_all(b"01f00000002").await.unwrap();
        read_to_end(&mut s).await
    });
    let client = gotalk::tcp::connect(addr).await.unwrap();
    let err = client.request::<_, String>("greet", "x").await.unwrap_err();
    assert_eq!(err.protocol_error(), Some(ProtocolErrorCode::INVALID));
    assert!(matches!(
        client.closed().await,
        CloseReason::ProtocolError { by: Side::Peer, .. }
    ));
    assert_eq!(
        err.to_string(),
        "connection closed: the peer sent protocol error: invalid message (code 2)"
    );
    peer.await.unwrap();
}

#[tokio::test]
async fn read_timeout_sends_protocol_error_3_and_closes() {
    let limits = Limits::default().read_timeout(Some(Duration::from_millis(200)));
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let seen = reasons.clone();
    let config = Config::accepting()
        .limits(limits)
        .on_close(move |_, reason| seen.lock().unwrap().push(reason.to_string()));
    let server = start(config).await;
    let mut raw = raw_peer(server.local_addr()).await;
    // Dribbling a header does not count as a message: the timeout still fires.
    raw.write_all(b"r00").await.unwrap();
    assert_eq!(read_to_end(&mut raw).await, b"f00000003");
    assert_eq!(
        *reasons.lock().unwrap(),
        ["protocol error: read timeout (code 3): no message for 0.2 s"]
    );
}

/// The read timeout counts from the last message of a busy spell, and is never early
/// (it is looked at every eighth of the limit: at most that late).
#[tokio::test]
async fn read_timeout_counts_from_the_last_message() {
    let limit = Duration::from_millis(400);
    let limits = Limits::default().read_timeout(Some(limit));
    let server = start(Config::accepting().limits(limits)).await;
    let mut raw = raw_peer(server.local_addr()).await;
    // Messages for three limits' time (notifications nobody handles are still messages).
    for _ in 0..24 {
        raw.write_all(b"n004ping00000000").await.unwrap();
        tokio::time::sleep(limit / 8).await;
    }
    raw.write_all(b"n004ping00000000").await.unwrap();
    let last = tokio::time::Instant::now();
    assert_eq!(read_to_end(&mut raw).await, b"f00000003");
    let silence = last.elapsed();
    assert!(silence >= limit, "closed after {silence:?} of silence");
    // At most an eighth late, plus generous room for a slow machine.
    assert!(silence < limit * 2, "closed after {silence:?} of silence");
}

#[tokio::test]
async fn a_payload_over_the_limit_is_protocol_error_2() {
    let limits = Limits::default().max_payload(1024);
    let server = start_limited(limits).await;
    let mut raw = raw_peer(server.local_addr()).await;
    raw.write_all(b"r0001005bytes00000401").await.unwrap();
    assert_eq!(read_to_end(&mut raw).await, b"f00000002");
}

#[tokio::test]
async fn results_for_requests_never_sent_are_ignored() {
    let (server, _client) = pair().await;
    let mut raw = raw_peer(server.local_addr()).await;
    raw.write_all(b"Rzzzz00000002{}Szzzz00000000Ezzzz00000001xr0001005bytes00000002ok")
        .await
        .unwrap();
    assert_eq!(read_n(&mut raw, 15).await, b"R000100000002ok");
}

#[tokio::test]
async fn a_stream_request_id_can_be_reused_once_its_stream_ended() {
    let (server, _client) = pair().await;
    let mut raw = raw_peer(server.local_addr()).await;
    for _ in 0..2 {
        raw.write_all(b"s000100bstream-echo00000001ap000100000000")
            .await
            .unwrap();
        assert_eq!(
            read_n(&mut raw, 14 + 13).await,
            b"S000100000001aS000100000000"
        );
    }
    // Reusing it while it is open is a protocol error.
    raw.write_all(b"s000200bstream-echo00000001as000200bstream-echo00000001a")
        .await
        .unwrap();
    let rest = read_to_end(&mut raw).await;
    assert!(
        rest.ends_with(b"f00000002"),
        "{:?}",
        String::from_utf8_lossy(&rest)
    );
}

#[tokio::test]
async fn names_are_utf8_up_to_4095_bytes() {
    let emoji = "héllo 👋 wörld";
    let long = "x".repeat(4095);
    let handlers = Handlers::new()
        .handle(emoji, |s: String| async move { Ok::<_, Error>(s) })
        .handle(&long, |s: String| async move { Ok::<_, Error>(s.len()) });
    let server = start(Config::accepting().handlers(handlers)).await;
    let client = gotalk::tcp::connect(server.local_addr()).await.unwrap();
    let out: String = client.request(emoji, "🎉 emoji payload").await.unwrap();
    assert_eq!(out, "🎉 emoji payload");
    let n: usize = client.request(&long, "abc").await.unwrap();
    assert_eq!(n, 3);
    let err = client
        .request::<_, ()>(&"y".repeat(4096), &())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid name: name is 4096 bytes long; the limit is 4095"
    );
    assert_eq!(client.pending_requests(), 0);
}

#[tokio::test]
async fn large_payloads_round_trip_intact() {
    let (_server, client) = pair().await;
    let payload: Bytes = (0..8 * 1024 * 1024u32)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<_>>()
        .into();
    let calls = (0..4).map(|_| client.request_raw("bytes", payload.clone()));
    for out in futures_util::future::join_all(calls).await {
        assert_eq!(out.unwrap(), payload);
    }
}

#[tokio::test]
async fn graceful_shutdown_answers_every_accepted_request() {
    let (server, client) = pair().await;
    let calls: Vec<_> = (0..20u64)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.request::<_, u64>("sleep", &(100 + i)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    timeout(SECOND * 5, server.shutdown()).await.unwrap();
    for (i, call) in calls.into_iter().enumerate() {
        assert_eq!(call.await.unwrap().unwrap(), 100 + i as u64);
    }
    assert!(matches!(client.closed().await, CloseReason::PeerClosed));
    assert!(
        TcpStream::connect(server.local_addr()).await.is_err() || server.connections().is_empty()
    );
}

#[tokio::test]
async fn requests_during_shutdown_are_answered_with_retry() {
    let (server, client) = pair().await;
    let slow = tokio::spawn({
        let client = client.clone();
        async move { client.request::<_, u64>("sleep", &300u64).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let server_side = server.connections().pop().unwrap();
    let shutdown = tokio::spawn(async move { server_side.shutdown().await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let err = client.request::<_, String>("greet", "x").await.unwrap_err();
    assert!(
        matches!(&err, Error::Retry { reason, .. } if reason == "shutting down"),
        "{err:?}"
    );
    assert_eq!(slow.await.unwrap().unwrap(), 300);
    shutdown.await.unwrap();
}

#[tokio::test]
async fn heartbeats_are_sent_on_interval_and_reported() {
    let beats = Arc::new(AtomicUsize::new(0));
    let last_load = Arc::new(AtomicUsize::new(0));
    let (b, l) = (beats.clone(), last_load.clone());
    let server = start(Config::accepting().on_heartbeat(move |_, hb| {
        b.fetch_add(1, Ordering::SeqCst);
        l.store(hb.load as usize, Ordering::SeqCst);
        assert!(hb.time > 1_700_000_000);
    }))
    .await;
    let client = gotalk::tcp::connect_with(
        server.local_addr(),
        Config::dialling().heartbeat_interval(Some(Duration::from_millis(40))),
    )
    .await
    .unwrap();
    client.set_load(7);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        beats.load(Ordering::SeqCst) >= 3,
        "{} heartbeats",
        beats.load(Ordering::SeqCst)
    );
    assert_eq!(last_load.load(Ordering::SeqCst), 7);
}

#[tokio::test]
async fn connection_state_and_child_handlers_for_signed_in_peers() {
    struct User(String);
    let base = server_handlers();
    let signed_in = base
        .child()
        .handle_with_sock("whoami", |sock: Sock, _: ()| async move {
            let user = sock.state::<User>().ok_or("not signed in")?;
            Ok::<_, &str>(user.0.clone())
        });
    let handlers = base.handle_with_sock("sign-in", move |sock: Sock, name: String| {
        let signed_in = signed_in.clone();
        async move {
            sock.set_state(User(name));
            sock.set_handlers(signed_in);
            Ok::<_, Error>(())
        }
    });
    let server = start(Config::accepting().handlers(handlers)).await;
    let client = gotalk::tcp::connect(server.local_addr()).await.unwrap();
    let err = client
        .request::<_, String>("whoami", &())
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), r#"unknown operation "whoami""#);
    client.request::<_, ()>("sign-in", "ada").await.unwrap();
    assert_eq!(
        client.request::<_, String>("whoami", &()).await.unwrap(),
        "ada"
    );
    // The parent's operations are still there.
    assert_eq!(
        client.request::<_, String>("greet", "x").await.unwrap(),
        "Hello x"
    );
}

#[tokio::test]
async fn a_fallback_handler_answers_unknown_names() {
    let handlers = Handlers::new().handle_raw("", |req: Request| async move {
        Ok::<_, Error>(Bytes::from(format!("\"fallback for {}\"", req.op)))
    });
    let (client, _server) =
        gotalk::pipe(Config::dialling(), Config::accepting().handlers(handlers));
    let out: String = client.request("anything", &()).await.unwrap();
    assert_eq!(out, "fallback for anything");
}

#[tokio::test]
async fn the_accept_hook_can_refuse_connections() {
    let server = Server::new(Config::accepting().handlers(server_handlers()))
        .accept_hook(|_| false)
        .listen_tcp("127.0.0.1:0")
        .await
        .unwrap();
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    assert!(read_to_end(&mut stream).await.is_empty());
}

#[cfg(unix)]
#[tokio::test]
async fn unix_sockets() {
    let dir = std::env::temp_dir().join(format!("gotalk-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sock");
    let _ = std::fs::remove_file(&path);
    let server = Server::new(Config::accepting().handlers(server_handlers()))
        .listen_unix(&path)
        .await
        .unwrap();
    let client = gotalk::unix::connect(&path).await.unwrap();
    assert_eq!(
        client.request::<_, String>("greet", "unix").await.unwrap(),
        "Hello unix"
    );
    server.close();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn any_stream_can_be_adopted() {
    let (a, b) = tokio::io::duplex(1024);
    let server = Sock::adopt(a, "duplex", Config::accepting().handlers(server_handlers()));
    let client = Sock::adopt(b, "duplex", Config::dialling());
    assert_eq!(
        client
            .request::<_, String>("greet", "duplex")
            .await
            .unwrap(),
        "Hello duplex"
    );
    client.close();
    assert!(matches!(server.closed().await, CloseReason::PeerClosed));
}

#[tokio::test]
async fn close_hook_runs_once_with_the_reason() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let (client, server) = gotalk::pipe(
        Config::dialling().on_close(move |_, r| s.lock().unwrap().push(r.to_string())),
        Config::accepting(),
    );
    client.close();
    client.close();
    server.closed().await;
    client.closed().await;
    assert_eq!(*seen.lock().unwrap(), ["closed by this side"]);
}

#[tokio::test]
async fn typed_stream_handlers() {
    let handlers =
        Handlers::new().handle_stream("running-total", |req: StreamRequest| async move {
            let mut total = 0i64;
            Reply::json_stream(futures_util::StreamExt::map(
                req.chunks.json::<i64>(),
                move |n| {
                    n.map(|n| {
                        total += n;
                        total
                    })
                },
            ))
        });
    let (client, _server) =
        gotalk::pipe(Config::dialling(), Config::accepting().handlers(handlers));
    let (mut writer, mut results) = client.stream_request("running-total", "1").await.unwrap();
    writer.send_json(&2).await.unwrap();
    writer.send_json(&"three").await.unwrap();
    let mut got = Vec::new();
    while let Some(item) = results.next_json::<i64>().await {
        match item {
            Ok(n) => got.push(n),
            Err(e) => {
                got.push(-1);
                assert!(
                    e.to_string()
                        .starts_with(r#"cannot decode JSON for "running-total""#),
                    "{e}"
                );
            }
        }
    }
    assert_eq!(got, [1, 3, -1]);
}

/// Limits with a small stream buffer and write queue, so backpressure shows quickly.
fn tight_limits() -> Limits {
    Limits::default()
        .stream_buffer(64 * 1024)
        .write_buffer(64 * 1024)
}

#[tokio::test]
async fn a_slow_stream_handler_holds_back_the_sender_and_loses_nothing() {
    let (open_tx, open_rx) = tokio::sync::watch::channel(false);
    let handlers = Handlers::new().handle_stream("slow-sum", move |mut req: StreamRequest| {
        let mut open = open_rx.clone();
        async move {
            // Reads nothing until the test opens the gate.
            let _ = open.wait_for(|open| *open).await;
            let (mut total, mut chunks) = (0usize, 0usize);
            while let Some(chunk) = req.chunks.next_chunk().await {
                let chunk = chunk.expect("no error");
                assert!(
                    chunk.iter().all(|&b| b == (chunks % 251) as u8),
                    "chunk {chunks} in order"
                );
                total += chunk.len();
                chunks += 1;
            }
            Reply::Result(Bytes::from(format!("{chunks} {total}")))
        }
    });
    let (client, _server) = gotalk::pipe(
        Config::dialling().limits(tight_limits()),
        Config::accepting()
            .handlers(handlers)
            .limits(tight_limits()),
    );
    let (mut writer, mut results) = client
        .stream_request("slow-sum", Bytes::new())
        .await
        .unwrap();
    const CHUNK: usize = 16 * 1024;
    const COUNT: usize = 256; // 4 MiB, far more than every buffer on the way together
    let sender = tokio::spawn(async move {
        for i in 0..COUNT {
            writer.send(vec![(i % 251) as u8; CHUNK]).await.unwrap();
        }
        writer.finish().await.unwrap();
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !sender.is_finished(),
        "the sender must be held back while the handler reads nothing"
    );
    open_tx.send(true).unwrap();
    timeout(SECOND * 10, sender).await.unwrap().unwrap();
    let answer = timeout(SECOND * 10, results.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(answer, format!("{COUNT} {}", COUNT * CHUNK));
}

#[tokio::test]
async fn a_stream_handler_that_stops_reading_does_not_stall_the_connection() {
    let handlers =
        server_handlers().handle_stream("first-only", |mut req: StreamRequest| async move {
            let first = req.chunks.next_chunk().await;
            // Returns (dropping the rest of the stream) while the peer still sends.
            Reply::Result(first.unwrap_or(Ok(Bytes::new())).unwrap_or_default())
        });
    let (client, _server) = gotalk::pipe(
        Config::dialling().limits(tight_limits()),
        Config::accepting()
            .handlers(handlers)
            .limits(tight_limits()),
    );
    let (mut writer, mut results) = client.stream_request("first-only", "a").await.unwrap();
    let answer = timeout(SECOND * 5, results.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(answer, "a");
    for _ in 0..64 {
        timeout(SECOND * 5, writer.send(vec![0u8; 16 * 1024]))
            .await
            .expect("parts of a finished stream are discarded, not held")
            .unwrap();
    }
    writer.finish().await.unwrap();
    let greeting: String = timeout(SECOND * 5, client.request("greet", "after"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(greeting, "Hello after");
}

#[tokio::test]
async fn a_slow_reader_of_stream_results_holds_back_the_responder_and_loses_nothing() {
    const CHUNK: usize = 16 * 1024;
    const COUNT: usize = 256;
    let produced = Arc::new(AtomicUsize::new(0));
    let mut handlers = Handlers::new();
    let counter = produced.clone();
    handlers = handlers.handle_reply("many", move |_req: Request| {
        let counter = counter.clone();
        async move {
            Reply::stream(futures_util::stream::iter((0..COUNT).map(move |i| {
                counter.fetch_add(1, Ordering::SeqCst);
                Ok(Bytes::from(vec![(i % 251) as u8; CHUNK]))
            })))
        }
    });
    let (client, _server) = gotalk::pipe(
        Config::dialling().limits(tight_limits()),
        Config::accepting()
            .handlers(handlers)
            .limits(tight_limits()),
    );
    let mut results = client.request_results("many", Bytes::new()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let early = produced.load(Ordering::SeqCst);
    assert!(
        early < COUNT / 2,
        "the responder must be held back while nobody reads ({early} of {COUNT} produced)"
    );
    let mut count = 0;
    while let Some(chunk) = timeout(SECOND * 10, results.next()).await.unwrap() {
        let chunk = chunk.unwrap();
        assert_eq!(chunk.len(), CHUNK);
        assert!(
            chunk.iter().all(|&b| b == (count % 251) as u8),
            "chunk {count} in order"
        );
        count += 1;
    }
    assert_eq!(count, COUNT);
    // Dropping a result stream midway frees the connection too.
    let mut results = client.request_results("many", Bytes::new()).await.unwrap();
    results.next().await.unwrap().unwrap();
    drop(results);
    let mut again = client.request_results("many", Bytes::new()).await.unwrap();
    let mut count = 0;
    while let Some(chunk) = timeout(SECOND * 10, again.next()).await.unwrap() {
        chunk.unwrap();
        count += 1;
    }
    assert_eq!(count, COUNT);
}

#[tokio::test]
async fn a_peer_that_half_closes_still_gets_the_results_of_what_it_sent() {
    let server = start(Config::accepting().handlers(server_handlers())).await;
    let mut raw = raw_peer(server.local_addr()).await;
    raw.write_all(
        b"r0001005sleep0000000250r0002005greet00000006\"half\"r000300aask-client000000015",
    )
    .await
    .unwrap();
    raw.shutdown().await.unwrap();
    let out = read_to_end(&mut raw).await;
    let mut results: Vec<(Vec<u8>, String)> = messages(&out)
        .into_iter()
        .filter_map(|msg| match msg {
            Message::SingleResult { id, payload } | Message::ErrorResult { id, payload } => {
                Some((id.to_vec(), String::from_utf8_lossy(&payload).into_owned()))
            }
            // `ask-client` may have called us before the server read our end.
            Message::SingleRequest { name, .. } if name.as_str() == "double" => None,
            other => panic!("unexpected {other}"),
        })
        .collect();
    results.sort();
    assert_eq!(
        results,
        [
            (b"0001".to_vec(), "50".to_owned()),
            (b"0002".to_vec(), "\"Hello half\"".to_owned()),
            // The handler's own call back to the peer fails at once: it can answer nothing.
            (
                b"0003".to_vec(),
                "connection closed: closed by the peer".to_owned()
            ),
        ]
    );
}

#[tokio::test]
async fn a_handler_calling_back_a_peer_that_never_answers_is_freed_by_the_call_timeout() {
    assert_eq!(
        Config::accepting().get_limits().call_timeout,
        Some(Duration::from_secs(30))
    );
    assert_eq!(Config::dialling().get_limits().call_timeout, None);
    let limits = Limits::default().call_timeout(Some(Duration::from_millis(200)));
    let server = start_limited(limits).await;
    let mut raw = raw_peer(server.local_addr()).await;
    raw.write_all(b"r000100aask-client000000015").await.unwrap();
    // The server asks us to double 5; we never answer.
    let asked = read_n(&mut raw, 23).await;
    assert_eq!(&asked[..10], b"r0000006do");
    let answer = read_n(&mut raw, 13).await;
    assert_eq!(&answer[..5], b"E0001");
    let size = usize::from_str_radix(std::str::from_utf8(&answer[5..]).unwrap(), 16).unwrap();
    let text = read_n(&mut raw, size).await;
    assert_eq!(text, br#"request "double" got no answer within 200 ms"#);
    let conns = server.connections();
    assert_eq!(conns[0].running_handlers(), 0, "the handler's slot is free");
    assert_eq!(conns[0].pending_requests(), 0, "the call is forgotten");
}

/// The other end of a connection, played from a script: each read takes the next of
/// `reads` once as many bytes as it asks for were written (what of it does not fit comes
/// at the next read), then the stream ends. It records each write, and how much had been
/// written at each read.
struct Scripted {
    /// Each read's bytes, and how many bytes must have been written before it comes.
    reads: std::collections::VecDeque<(usize, Vec<u8>)>,
    log: Arc<Mutex<Log>>,
}

#[derive(Default)]
struct Log {
    writes: Vec<Vec<u8>>,
    /// How many bytes had been written at each read.
    at_read: Vec<usize>,
    /// The reader waiting for writes, if any.
    reader: Option<std::task::Waker>,
}

impl Log {
    fn written(&self) -> String {
        String::from_utf8_lossy(&self.writes.concat()).into_owned()
    }
}

impl Scripted {
    /// A server over a script, and its log.
    fn serve(reads: Vec<Vec<u8>>) -> (Sock, Arc<Mutex<Log>>) {
        let reads = reads.into_iter().map(|read| (0, read)).collect();
        let config = Config::accepting().handlers(server_handlers());
        Self::adopt(reads, config)
    }

    /// A connection with `config` over a script of reads (each with the bytes written
    /// before it comes), and its log.
    fn adopt(reads: Vec<(usize, Vec<u8>)>, config: Config) -> (Sock, Arc<Mutex<Log>>) {
        let log = Arc::new(Mutex::new(Log::default()));
        let stream = Scripted {
            reads: reads.into(),
            log: log.clone(),
        };
        (Sock::adopt(stream, "scripted", config), log)
    }
}

impl tokio::io::AsyncRead for Scripted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        {
            let mut log = self.log.lock().unwrap();
            let so_far = log.writes.iter().map(Vec::len).sum();
            if self.reads.front().is_some_and(|(after, _)| *after > so_far) {
                log.reader = Some(cx.waker().clone());
                return std::task::Poll::Pending;
            }
            log.at_read.push(so_far);
        }
        if let Some((after, mut next)) = self.reads.pop_front() {
            let n = next.len().min(buf.remaining());
            buf.put_slice(&next[..n]);
            if n < next.len() {
                self.reads.push_front((after, next.split_off(n)));
            }
        }
        std::task::Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for Scripted {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let mut log = self.log.lock().unwrap();
        log.writes.push(buf.to_vec());
        if let Some(reader) = log.reader.take() {
            reader.wake();
        }
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// A request to the test server's `bytes` (an echo) with ID `n` and an 8-byte payload,
/// and its answer.
fn echo(n: usize) -> (String, String) {
    (
        format!("r{n:04}005bytes00000008{n:08}"),
        format!("R{n:04}00000008{n:08}"),
    )
}

/// A peer pipelining more than one read holds gets the answers to each read as soon as
/// the next read brings more, before that is handled, so it can work on them while the
/// rest is read: both sides busy at once.
#[tokio::test]
async fn answers_to_a_read_go_out_before_the_next_read() {
    let mut reads = vec![b"01".to_vec()];
    reads.extend((1..=6).map(|n| echo(n).0.into_bytes()));
    let (server, log) = Scripted::serve(reads);
    let reason = timeout(SECOND * 5, server.closed()).await.unwrap();
    assert!(matches!(reason, CloseReason::PeerClosed), "{reason}");
    let log = log.lock().unwrap();
    let (text, at_read) = (log.written(), &log.at_read);
    assert!(at_read.len() >= 8, "reads: {at_read:?}");
    for n in 1..=5usize {
        let answer = echo(n).1;
        let at = text
            .find(&answer)
            .unwrap_or_else(|| panic!("no {answer} in {text:?}"));
        // Read n + 1 brought request n + 1, and answer n went out before it was handled:
        // before read n + 2 (not after the last read, as when a connection reads all
        // there is before it writes).
        assert!(
            at + answer.len() <= at_read[n + 2],
            "answer {n} written after read {}: {text:?}, written at each read: {at_read:?}",
            n + 2
        );
    }
}

/// A batch that comes in one large read is answered in two writes: the answers to its
/// first half go out before the second half is handled, so a peer waiting on the batch
/// starts on them meanwhile.
#[tokio::test]
async fn a_large_read_is_answered_in_two_halves() {
    let batch: String = (1..=200).map(|n| echo(n).0).collect();
    assert!(
        batch.len() > 4096 && batch.len() < 8192,
        "one read, over 2 KiB"
    );
    let (server, log) = Scripted::serve(vec![b"01".to_vec(), batch.into_bytes()]);
    timeout(SECOND * 5, server.closed()).await.unwrap();
    let log = log.lock().unwrap();
    let expected: String = (1..=200).map(|n| echo(n).1).collect();
    assert_eq!(
        log.written(),
        format!("01{expected}"),
        "every answer, in order"
    );
    let answers: Vec<&Vec<u8>> = log.writes.iter().filter(|w| w.contains(&b'R')).collect();
    assert_eq!(answers.len(), 2, "two writes of answers");
    let first = String::from_utf8_lossy(answers[0]);
    // The first holds the answers to about the first half (up to the message that crossed
    // the middle of the read).
    let first_count = first.matches('R').count();
    assert!(
        (95..=105).contains(&first_count),
        "{first_count} answers in the first write"
    );
}

/// Our request ID made from `counter` (the nth request of a connection), as the caller
/// side numbers them: four digits of 64.
fn our_id(counter: usize) -> String {
    const DIGITS: &[u8; 64] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_";
    [18, 12, 6, 0]
        .iter()
        .map(|shift| char::from(DIGITS[(counter >> shift) & 63]))
        .collect()
}

/// When a read brings a batch of results, the callers handed the first half of them call
/// again, and those requests go out, before the second half is handled: a peer that
/// answered the batch at once starts on them meanwhile.
#[tokio::test]
async fn callers_handed_half_a_read_call_again_before_the_rest() {
    const CALLERS: usize = 64;
    let results = |first: usize| -> Vec<u8> {
        (0..CALLERS)
            .map(|caller| format!("R{}00000008{caller:08}", our_id(first + caller)))
            .collect::<String>()
            .into_bytes()
    };
    // Each request: `r`, its ID, `005bytes`, the payload's size and 8 bytes.
    let request_len = 1 + 4 + 8 + 8 + 8;
    // Each batch of results comes in one read, once all its requests were written.
    let reads = vec![
        (0, b"01".to_vec()),
        (2 + CALLERS * request_len, results(0)),
        (2 + 2 * CALLERS * request_len, results(CALLERS)),
    ];
    assert!(results(0).len() > 1024, "a read large enough to be split");
    let (sock, log) = Scripted::adopt(reads, Config::dialling());
    // Each caller calls twice; on this runtime's one thread they run in turn, so caller
    // n makes requests n and CALLERS + n.
    let callers: Vec<_> = (0..CALLERS)
        .map(|caller| {
            let sock = sock.clone();
            tokio::spawn(async move {
                let payload = format!("{caller:08}");
                for _ in 0..2 {
                    let result = sock.request_raw("bytes", payload.clone()).await.unwrap();
                    assert_eq!(result, payload.as_bytes(), "caller {caller}'s own result");
                }
            })
        })
        .collect();
    for caller in callers {
        timeout(SECOND * 5, caller).await.unwrap().unwrap();
    }
    let log = log.lock().unwrap();
    let second_calls: Vec<usize> = log
        .writes
        .iter()
        .map(|write| {
            let text = String::from_utf8_lossy(write);
            (CALLERS..2 * CALLERS)
                .filter(|&counter| text.contains(&format!("r{}005", our_id(counter))))
                .count()
        })
        .filter(|&count| count > 0)
        .collect();
    assert_eq!(
        second_calls.iter().sum::<usize>(),
        CALLERS,
        "every second call"
    );
    // Two writes: those of the callers handed the first half of the results, then the
    // rest (one write of all 64 when the whole read was handled first).
    assert_eq!(
        second_calls.len(),
        2,
        "second calls per write: {second_calls:?}"
    );
    assert!(
        (24..=40).contains(&second_calls[0]),
        "second calls per write: {second_calls:?}"
    );
}

#[tokio::test]
async fn a_single_call_answered_with_endless_stream_parts_fails_at_max_payload() {
    // A peer that answers every request with stream parts and never ends them.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        stream.write_all(b"01").await.unwrap();
        let mut seen = Vec::new();
        let id = loop {
            let mut buf = [0u8; 256];
            let n = stream.read(&mut buf).await.unwrap();
            seen.extend_from_slice(&buf[..n]);
            if let Some(at) = seen.iter().position(|&b| b == b'r') {
                if seen.len() >= at + 5 {
                    break seen[at + 1..at + 5].to_vec();
                }
            }
        };
        let mut part = b"S".to_vec();
        part.extend_from_slice(&id);
        part.extend_from_slice(b"00000400");
        part.extend_from_slice(&[b'x'; 1024]);
        for _ in 0..64 {
            if stream.write_all(&part).await.is_err() {
                break;
            }
        }
        stream
    });
    let config = Config::dialling().limits(Limits::default().max_payload(16 * 1024));
    let client = gotalk::tcp::connect_with(addr, config).await.unwrap();
    let failed = tokio::time::timeout(Duration::from_secs(5), client.request_raw("endless", ""))
        .await
        .expect("answered")
        .unwrap_err();
    assert_eq!(
        failed.to_string(),
        "the result's stream parts come to more than max_payload (16384 bytes)"
    );
    assert!(!client.is_closed(), "the connection goes on");
    drop(peer.await.unwrap());
}
