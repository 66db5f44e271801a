//! Byte budgets against peers that send more than they read: a connection holds at most
//! its own budget on the peer's behalf, the connections of a server at most the server's
//! shared budget (plus 64 KiB each), and whatever is held is released again. Counted in
//! bytes held (`Sock::held_bytes`, `SharedBudget::held_bytes`); RELIABILITY.md has the
//! same attacks measured from outside as RSS.

use std::time::Duration;

use gotalk::{Config, Limits, SharedBudget};
use tokio::{io::AsyncWriteExt, net::TcpStream, time::timeout};

mod support;
use support::{raw_peer, server_handlers, start, start_limited, still_serves, SECOND};

const KIB: usize = 1024;

/// A `bytes` request (the server echoes the payload) of `size` bytes.
fn echo_request(id: u32, size: usize) -> Vec<u8> {
    let mut out = format!("r{id:04x}005bytes{size:08x}").into_bytes();
    out.resize(out.len() + size, b'x');
    out
}

/// Sends `requests` echo requests of `size` bytes and never reads; returns the stream and
/// whether the server took all of it within `wait`.
async fn flood(addr: std::net::SocketAddr, requests: u32, size: usize) -> (TcpStream, bool) {
    let mut peer = raw_peer(addr).await;
    let mut all = Vec::new();
    for id in 0..requests {
        all.extend_from_slice(&echo_request(id, size));
    }
    let sent = timeout(SECOND, peer.write_all(&all)).await.is_ok();
    (peer, sent)
}

/// The largest held-bytes figure seen over `samples` looks, 10 ms apart.
async fn peak(samples: usize, held: impl Fn() -> usize) -> usize {
    let mut peak = 0;
    for _ in 0..samples {
        peak = peak.max(held());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    peak
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_its_results_is_held_to_the_connections_budget() {
    let limits = Limits::default()
        .max_payload(256 * KIB as u32)
        .max_held_bytes(Some(1024 * KIB));
    let server = start_limited(limits).await;
    // 64 MiB of echo requests, their results never read.
    let (_peer, sent) = flood(server.local_addr(), 256, 256 * KIB).await;
    assert!(!sent, "the server stopped reading: TCP held the peer back");
    let conn = server.connections().remove(0);
    let peak = peak(50, || conn.held_bytes()).await;
    // The budget, plus what was in flight when it ran out: one message being read and
    // one reply in the write queue's last push.
    assert!(
        peak > 512 * KIB,
        "the attack did fill the budget ({peak} B)"
    );
    assert!(
        peak <= 1024 * KIB + 2 * 256 * KIB + 64 * KIB,
        "held {peak} B against a budget of 1 MiB"
    );
    still_serves(server.local_addr()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connections_of_a_server_share_its_budget_and_a_fresh_client_is_served() {
    let shared = SharedBudget::new(2048 * KIB);
    let limits = Limits::default()
        .max_payload(256 * KIB as u32)
        .max_held_bytes(Some(1024 * KIB));
    let server = start(
        Config::accepting()
            .handlers(server_handlers())
            .limits(limits)
            .shared_budget(&shared),
    )
    .await;
    let mut attackers = Vec::new();
    for _ in 0..8 {
        attackers.push(flood(server.local_addr(), 64, 256 * KIB).await.0);
    }
    let peak = peak(50, || shared.held_bytes()).await;
    let each = 64 * KIB + 2 * 256 * KIB + 64 * KIB;
    assert!(
        peak <= 2048 * KIB + 8 * each,
        "held {peak} B against a shared budget of 2 MiB"
    );
    assert!(
        peak < 8 * 1024 * KIB,
        "less than the connections' own budgets would allow ({peak} B)"
    );
    // A fresh client holds less than its 64 KiB floor: it is served all the same.
    timeout(SECOND * 5, still_serves(server.local_addr()))
        .await
        .expect("a fresh client is served while the budget is spent");
    drop(attackers);
    timeout(SECOND * 5, async {
        while shared.held_bytes() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("everything held is released once the attackers leave");
}

#[tokio::test]
async fn held_bytes_go_back_to_an_idle_connections_after_every_kind_of_traffic() {
    let shared = SharedBudget::new(SharedBudget::DEFAULT);
    let server = start(
        Config::accepting()
            .handlers(server_handlers())
            .shared_budget(&shared),
    )
    .await;
    let client = gotalk::tcp::connect_with(
        server.local_addr(),
        Config::dialling().handlers(support::client_handlers()),
    )
    .await
    .unwrap();
    let big = vec![b'y'; 300 * KIB];
    for _ in 0..3 {
        let echoed = client.request_raw("bytes", big.clone()).await.unwrap();
        assert_eq!(echoed.len(), big.len());
        let slept: u64 = client.request("sleep", &20u64).await.unwrap();
        assert_eq!(slept, 20);
        let asked: i64 = client.request("ask-client", &4).await.unwrap();
        assert_eq!(asked, 9);
        let (mut writer, results) = client.stream_request("stream-echo", "a").await.unwrap();
        writer.send(big.clone()).await.unwrap();
        writer.finish().await.unwrap();
        assert_eq!(results.collect_chunks().await.unwrap().len(), 2);
        client
            .notify_raw("nobody-listens", big.clone())
            .await
            .unwrap();
        let failed = client.request_raw("fail", "").await.unwrap_err();
        assert_eq!(failed.to_string(), "boom");
    }
    // What is left is what an idle connection that has traded keeps: at most its small
    // read buffer, until its timer finds it quiet (a dialling side has no read timeout).
    const KEPT_READ_BUFFER: usize = 512;
    let conn = server.connections().remove(0);
    timeout(SECOND * 5, async {
        while conn.held_bytes() > KEPT_READ_BUFFER || client.held_bytes() > KEPT_READ_BUFFER {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "still held: server {} B, client {} B",
            conn.held_bytes(),
            client.held_bytes()
        )
    });
    assert_eq!(shared.held_bytes(), conn.held_bytes());
    client.close();
}
