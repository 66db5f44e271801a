//! Topics: typed notifications to a topic's subscribers and to everyone, never waiting
//! for a slow peer, and subscriptions forgotten when a connection closes.

use std::time::Duration;

use gotalk::Topics;
use tokio::{io::AsyncWriteExt, net::TcpSocket, time::Instant};

mod support;
use support::{
    feed::{next, server, subscriber, FeedNotifier},
    SECOND,
};

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + SECOND * 5;
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_topic_reaches_its_subscribers_and_everyone_reaches_all() {
    let topics = Topics::new();
    let server = server(&topics).await;
    let (_a, mut a) = subscriber(server.local_addr(), "rust").await;
    let (_b, mut b) = subscriber(server.local_addr(), "rust").await;
    let (_c, mut c) = subscriber(server.local_addr(), "go").await;
    assert_eq!(topics.subscribers("rust"), 2);

    FeedNotifier::news(&topics.topic("rust"), "1.85 is out".into())
        .await
        .unwrap();
    FeedNotifier::news(&topics.everyone(), "for all".into())
        .await
        .unwrap();
    assert_eq!(next(&mut a).await, "1.85 is out");
    assert_eq!(next(&mut b).await, "1.85 is out");
    assert_eq!(next(&mut a).await, "for all");
    assert_eq!(next(&mut b).await, "for all");
    assert_eq!(next(&mut c).await, "for all", "c hears nothing of rust");
    assert_eq!(topics.publish_raw("nobody", "news", "\"x\"".into()), 0);
}

#[tokio::test]
async fn subscriptions_go_when_the_connection_closes_or_unsubscribes() {
    let topics = Topics::new();
    let server = server(&topics).await;
    let (a, _rx) = subscriber(server.local_addr(), "rust").await;
    let (b, _rx2) = subscriber(server.local_addr(), "rust").await;
    until("both subscribed", || topics.subscribers("rust") == 2).await;
    a.close();
    until("a closed: one subscriber left", || {
        topics.subscribers("rust") == 1
    })
    .await;
    let server_side = server.connections();
    let b_there = server_side.iter().find(|s| !s.is_closed()).unwrap();
    assert_eq!(topics.subscriptions(b_there), ["rust"]);
    topics.unsubscribe(b_there, "rust");
    assert_eq!(topics.subscribers("rust"), 0);
    drop(b);
}

#[tokio::test]
async fn a_peer_that_stops_reading_is_closed_and_stalls_nobody() {
    let topics = Topics::new();
    let server = server(&topics).await;
    let (_fast, mut fast) = subscriber(server.local_addr(), "news").await;
    // A raw peer that subscribes, then never reads a byte. Its receive buffer is kept
    // small, so that what stands between it and the server is the server's send buffer
    // and the connection's write queue, not megabytes of the kernel's autotuning.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut slow = socket.connect(server.local_addr()).await.unwrap();
    let payload = "\"news\"";
    slow.write_all(format!("01r0001009subscribe{:08x}{payload}", payload.len()).as_bytes())
        .await
        .unwrap();
    until("the slow peer subscribed", || {
        topics.subscribers("news") == 2
    })
    .await;

    // 400 notifications of 64 KiB (25 MiB), far more than a 4 MiB send buffer and a
    // 4 MiB write queue hold: publishing never waits, the slow peer is closed, and the fast one gets every
    // one, in order.
    let text = "x".repeat(64 * 1024);
    for i in 0..400 {
        FeedNotifier::news(&topics.topic("news"), format!("{i} {text}"))
            .await
            .unwrap();
        if i % 8 == 7 {
            // Let the fast reader keep up; the slow one cannot.
            for j in i - 7..=i {
                let got = next(&mut fast).await;
                assert!(got.starts_with(&format!("{j} ")), "in order: {j}");
            }
        }
    }
    until("the slow peer was closed and forgotten", || {
        topics.subscribers("news") == 1
    })
    .await;
}
