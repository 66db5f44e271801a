//! Topics: typed notifications to a topic's subscribers and to everyone, never waiting
//! for a slow peer, and subscriptions forgotten when a connection closes.

use std::time::Duration;

use gotalk::{Config, Error, Handlers, Sock, Topics};
use tokio::{
    io::AsyncWriteExt,
    sync::mpsc,
    time::{timeout, Instant},
};

mod support;
use support::{raw_peer, start, SECOND};

#[gotalk::notification]
pub trait Feed {
    async fn news(&self, text: String);
}

/// Collects what a client is sent on `news`.
struct Collect(mpsc::UnboundedSender<String>);

impl Feed for Collect {
    async fn news(&self, text: String) {
        let _ = self.0.send(text);
    }
}

/// A server whose `subscribe` operation subscribes the caller to the topic it names.
async fn server(topics: &Topics) -> gotalk::Listening<std::net::SocketAddr> {
    let mut handlers = Handlers::new();
    let t = topics.clone();
    handlers.handle_with_sock("subscribe", move |sock: Sock, topic: String| {
        let t = t.clone();
        async move {
            t.subscribe(&sock, &topic);
            Ok::<_, Error>(())
        }
    });
    start(Config::accepting().handlers(handlers)).await
}

async fn client(
    addr: std::net::SocketAddr,
    topic: &str,
) -> (Sock, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let config = Config::dialling().handlers(Handlers::new().with(FeedService::new(Collect(tx))));
    let sock = gotalk::tcp::connect_with(addr, config).await.unwrap();
    if !topic.is_empty() {
        sock.request::<_, ()>("subscribe", &topic).await.unwrap();
    }
    (sock, rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    timeout(SECOND * 5, rx.recv())
        .await
        .expect("a notification comes")
        .unwrap()
}

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
    let (_a, mut a) = client(server.local_addr(), "rust").await;
    let (_b, mut b) = client(server.local_addr(), "rust").await;
    let (_c, mut c) = client(server.local_addr(), "go").await;
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
    let (a, _rx) = client(server.local_addr(), "rust").await;
    let (b, _rx2) = client(server.local_addr(), "rust").await;
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
    let topics = Topics::with_queue(8);
    let server = server(&topics).await;
    let (_fast, mut fast) = client(server.local_addr(), "news").await;
    // A raw peer that subscribes, then never reads a byte.
    let mut slow = raw_peer(server.local_addr()).await;
    let payload = "\"news\"";
    slow.write_all(format!("r0001009subscribe{:08x}{payload}", payload.len()).as_bytes())
        .await
        .unwrap();
    until("the slow peer subscribed", || {
        topics.subscribers("news") == 2
    })
    .await;

    // 64 KiB notifications, far more than TCP buffers and 8 queued hold: publishing never
    // waits, the slow peer is closed, and the fast one gets every one, in order.
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
