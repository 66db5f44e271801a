//! Topics in tests: a `Feed` notification, a server whose `subscribe` puts the caller on
//! a topic, and subscribers that collect what they are sent.

use std::net::SocketAddr;

use gotalk::{Config, Error, Handlers, Listening, Sock, Topics};
use tokio::{sync::mpsc, time::timeout};

use super::{start, SECOND};

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

/// A server (a node, with Redis) whose `subscribe` operation subscribes the caller to the
/// topic it names.
pub async fn server(topics: &Topics) -> Listening<SocketAddr> {
    let mut handlers = Handlers::new();
    let t = topics.clone();
    handlers = handlers.handle_with_sock("subscribe", move |sock: Sock, topic: String| {
        let t = t.clone();
        async move {
            t.subscribe(&sock, &topic);
            Ok::<_, Error>(())
        }
    });
    start(Config::accepting().handlers(handlers)).await
}

/// A client subscribed to `topic`, and what it is sent.
pub async fn subscriber(addr: SocketAddr, topic: &str) -> (Sock, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let config = Config::dialling().handlers(Handlers::new().with(FeedService::new(Collect(tx))));
    let sock = gotalk::tcp::connect_with(addr, config).await.unwrap();
    sock.request::<_, ()>("subscribe", &topic).await.unwrap();
    (sock, rx)
}

/// The next notification a subscriber is sent (within 5 s).
pub async fn next(rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    timeout(SECOND * 5, rx.recv())
        .await
        .expect("a notification comes")
        .unwrap()
}
