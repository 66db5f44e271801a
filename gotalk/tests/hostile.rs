//! Hostile peers and faults against a real server on 127.0.0.1: arbitrary and mutated
//! byte streams, floods past the limits, a peer that never reads, malformed streams,
//! hostile JSON, and peers that vanish mid-request. In every case the server answers
//! what it can, closes what it must with the right protocol error, loses nothing it
//! accepted, leaves no task behind, and goes on serving fresh connections.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::BytesMut;
use gotalk::{
    wire::{parse, Message, ParseError},
    Config, Error, Limits, Server,
};
use proptest::{prelude::*, test_runner::TestRunner};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    time::timeout,
};

mod support;
use support::{
    messages, raw_peer, read_at_least, read_until_closed, server_handlers, start_limited,
    still_serves, SECOND,
};

/// Valid messages a peer may send, to build inputs that are mostly right.
const VALID: &[&[u8]] = &[
    b"r0001005greet00000007\"Rasmus\"",
    b"r0002005bytes00000003abc",
    b"r0003005sleep000000015",
    b"s000400bstream-echo00000002ab",
    b"p000400000003cde",
    b"p000400000000",
    b"n004note00000002{}",
    b"h00016553f100",
    b"R999900000002{}",
    b"r0005004json00000005[1,2]",
];

fn input() -> impl Strategy<Value = Vec<u8>> {
    let valid = proptest::collection::vec(proptest::sample::select(VALID), 0..12)
        .prop_map(|parts| parts.concat());
    let mutated = (
        valid.clone(),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    )
        .prop_map(|(mut bytes, edits)| {
            for (at, byte, kind) in edits {
                if bytes.is_empty() {
                    bytes.push(byte);
                    continue;
                }
                let i = at.index(bytes.len());
                match kind {
                    0 => bytes[i] = byte,
                    1 => bytes.insert(i, byte),
                    _ => {
                        bytes.remove(i);
                    }
                }
            }
            bytes
        });
    let arbitrary = proptest::collection::vec(any::<u8>(), 0..300);
    prop_oneof![valid, mutated, arbitrary]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbitrary_and_mutated_byte_streams_never_take_the_server_down() {
    let server = start_limited(Limits::default().max_payload(1 << 20)).await;
    let addr = server.local_addr();
    let mut runner = TestRunner::new(proptest::test_runner::Config {
        cases: 96,
        failure_persistence: None,
        ..Default::default()
    });
    let cases = Arc::new(Mutex::new(Vec::new()));
    let collect = cases.clone();
    runner
        .run(&(input(), 1usize..64), |case| {
            collect.lock().unwrap().push(case);
            Ok(())
        })
        .unwrap();
    let cases = std::mem::take(&mut *cases.lock().unwrap());
    let mut closed_by_error = 0;
    for (input, chunk) in &cases {
        let mut peer = raw_peer(addr).await;
        // Fed in small pieces, as a slow or hostile peer would.
        for piece in input.chunks(*chunk) {
            if peer.write_all(piece).await.is_err() {
                break; // the server already closed: fine
            }
        }
        let _ = peer.shutdown().await;
        let out = read_until_closed(&mut peer, SECOND * 5).await;
        let msgs = messages(&out);
        if let Some(Message::ProtocolError { code }) = msgs.last() {
            assert!(
                [1, 2].contains(&code.0),
                "protocol error {code:?} for input {:?}",
                String::from_utf8_lossy(input)
            );
            closed_by_error += 1;
        }
        for msg in &msgs[..msgs.len().saturating_sub(1)] {
            assert!(
                !matches!(msg, Message::ProtocolError { .. }),
                "a protocol error is the last message"
            );
        }
    }
    assert!(closed_by_error > 0, "some inputs were invalid");
    still_serves(addr).await;
}

#[tokio::test]
async fn a_flood_past_the_limits_gets_retries_and_every_request_exactly_one_answer() {
    let server = start_limited(Limits::default().max_single_requests(8)).await;
    let mut peer = raw_peer(server.local_addr()).await;
    const N: usize = 3000;
    let mut flood = Vec::new();
    for i in 0..N {
        flood.extend_from_slice(format!("r{i:04x}005sleep0000000220").as_bytes());
    }
    let (mut rd, mut wr) = peer.split();
    let (_, out) = tokio::join!(wr.write_all(&flood), async {
        let mut out = BytesMut::new();
        let mut answers: HashMap<RequestKey, Vec<u8>> = HashMap::new();
        while answers.values().map(Vec::len).sum::<usize>() < N {
            let mut chunk = [0u8; 8192];
            let n = timeout(SECOND * 10, rd.read(&mut chunk))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "the server closed");
            out.extend_from_slice(&chunk[..n]);
            loop {
                match parse(&mut out, u32::MAX) {
                    Ok(Message::SingleResult { id, .. }) => {
                        answers.entry(id).or_default().push(b'R')
                    }
                    Ok(Message::RetryResult { id, .. }) => {
                        answers.entry(id).or_default().push(b'e')
                    }
                    Ok(other) => panic!("unexpected {other}"),
                    Err(ParseError::Incomplete { .. }) => break,
                    Err(e) => panic!("{e:?}"),
                }
            }
        }
        answers
    });
    assert_eq!(out.len(), N, "every request answered");
    assert!(out.values().all(|a| a.len() == 1), "exactly once each");
    let results = out.values().filter(|a| a[0] == b'R').count();
    assert!(results >= 8, "{results} results");
    assert!(N - results > 0, "the excess got retry results");
    still_serves(server.local_addr()).await;
}

type RequestKey = [u8; 4];

#[tokio::test]
async fn a_peer_that_never_reads_is_closed_by_the_write_timeout() {
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let seen = reasons.clone();
    let limits = Limits::default()
        .write_timeout(Some(Duration::from_millis(300)))
        .write_buffer(256 * 1024);
    let server = Server::new(
        Config::accepting()
            .handlers(server_handlers())
            .limits(limits)
            .on_close(move |_, reason| seen.lock().unwrap().push(reason.to_string())),
    )
    .listen_tcp("127.0.0.1:0")
    .await
    .unwrap();
    let mut peer = raw_peer(server.local_addr()).await;
    let payload = vec![b'x'; 64 * 1024];
    let mut request = format!("r0001005bytes{:08x}", payload.len()).into_bytes();
    request.extend_from_slice(&payload);
    // Asks for far more than the socket buffers hold, and never reads an answer.
    let writer = tokio::spawn(async move {
        for _ in 0..1000 {
            if timeout(SECOND * 5, peer.write_all(&request)).await.is_err() {
                break;
            }
        }
        peer
    });
    let closed = timeout(SECOND * 10, async {
        loop {
            if !reasons.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(closed.is_ok(), "the connection is closed");
    let reason = reasons.lock().unwrap()[0].clone();
    assert!(reason.contains("write timeout"), "{reason}");
    drop(writer);
    still_serves(server.local_addr()).await;
}

#[tokio::test]
async fn a_slowloris_header_is_closed_by_the_read_timeout() {
    let server =
        start_limited(Limits::default().read_timeout(Some(Duration::from_millis(300)))).await;
    let mut peer = raw_peer(server.local_addr()).await;
    let started = tokio::time::Instant::now();
    for &byte in b"r0001005greet00000007\"Rasmus\"" {
        if peer.write_all(&[byte]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    let out = read_until_closed(&mut peer, SECOND * 5).await;
    assert_eq!(out, b"f00000003");
    assert!(started.elapsed() < SECOND * 3);
    still_serves(server.local_addr()).await;
}

#[tokio::test]
async fn deeply_nested_json_is_a_clear_error_and_the_connection_goes_on() {
    let server = start_limited(Limits::default()).await;
    let client = gotalk::tcp::connect(server.local_addr()).await.unwrap();
    let depth = 100_000;
    let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let err = client.request_raw("json", nested).await.unwrap_err();
    match &err {
        Error::Remote(text) => assert!(text.contains("recursion limit"), "{text}"),
        other => panic!("expected an error result, got {other:?}"),
    }
    let ok: bool = client.request("json", &[1, 2]).await.unwrap();
    assert!(ok);
}

#[tokio::test]
async fn stream_parts_for_rejected_streams_are_dropped_and_for_unknown_ones_fatal() {
    let server = start_limited(Limits::default()).await;
    let mut peer = raw_peer(server.local_addr()).await;
    // A stream request for an unknown operation is refused; its parts are dropped.
    peer.write_all(b"s0001004nope00000001ap000100000001bp000100000000r0002005greet00000004\"Bo\"")
        .await
        .unwrap();
    let out = read_at_least(&mut peer, 56).await;
    let msgs = messages(&out);
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(
        matches!(&msgs[0], Message::ErrorResult { id, payload } if id == b"0001" && payload.as_ref() == b"unknown operation \"nope\"")
    );
    assert!(
        matches!(&msgs[1], Message::SingleResult { id, payload } if id == b"0002" && payload.as_ref() == b"\"Hello Bo\"")
    );
    // A part for a stream that was never opened is a protocol error.
    peer.write_all(b"p777700000001x").await.unwrap();
    assert_eq!(read_until_closed(&mut peer, SECOND * 5).await, b"f00000002");
    still_serves(server.local_addr()).await;
}

#[tokio::test]
async fn a_reused_request_id_gets_each_request_answered() {
    let server = start_limited(Limits::default()).await;
    let mut peer = raw_peer(server.local_addr()).await;
    peer.write_all(b"r0001005sleep0000000250r0001005sleep000000015")
        .await
        .unwrap();
    let out = read_at_least(&mut peer, 2 * 14 + 1).await;
    let msgs = messages(&out);
    let payloads: Vec<&[u8]> = msgs
        .iter()
        .map(|m| match m {
            Message::SingleResult {
                id: [b'0', b'0', b'0', b'1'],
                payload,
            } => payload.as_ref(),
            other => panic!("unexpected {other}"),
        })
        .collect();
    assert_eq!(
        payloads,
        [&b"5"[..], &b"50"[..]],
        "both answered, the quick one first"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_vanishing_mid_request_and_mid_stream_leave_no_task_behind() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let server = start_limited(Limits::default()).await;
    let addr = server.local_addr();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let baseline = metrics.num_alive_tasks();
    for round in 0..3 {
        let mut peers = Vec::new();
        for _ in 0..50 {
            let mut peer = raw_peer(addr).await;
            // A slow request in flight, a stream left open, half a header.
            peer.write_all(
                b"r0001005sleep00000003150s000200bstream-echo00000001ap000200000001br00",
            )
            .await
            .unwrap();
            peers.push(peer);
        }
        tokio::time::sleep(Duration::from_millis(20 * round)).await;
        drop(peers); // vanish
    }
    // Client side: calls pending on a connection whose server vanishes fail promptly.
    let doomed = start_limited(Limits::default()).await;
    let client = gotalk::tcp::connect(doomed.local_addr()).await.unwrap();
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.request::<_, u64>("sleep", &150u64).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(30)).await;
    doomed.close();
    for call in calls {
        let result = timeout(SECOND * 2, call)
            .await
            .expect("fails promptly")
            .unwrap();
        assert!(matches!(result, Err(Error::Closed(_))), "{result:?}");
    }
    drop(client);
    drop(doomed);
    let settled = timeout(SECOND * 5, async {
        loop {
            if metrics.num_alive_tasks() <= baseline && server.connections().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        settled.is_ok(),
        "{} tasks alive, {} at the start; {} connections",
        metrics.num_alive_tasks(),
        baseline,
        server.connections().len()
    );
    still_serves(addr).await;
}
