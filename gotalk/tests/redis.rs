//! Topics across two nodes through a real Redis (feature `redis`; needs `redis-server` on
//! the PATH, started here on a free port): a publication on either node reaches the
//! subscribers of both, and everyone means every node's connections.
//!
//!     cargo test -p gotalk --features redis --test redis
#![cfg(feature = "redis")]

use std::{process::Stdio, time::Duration};

use gotalk::Topics;

mod support;
use support::feed::{next, server, subscriber, FeedNotifier};

/// A redis-server of its own, on a free port of 127.0.0.1, gone with the test.
struct Redis {
    child: std::process::Child,
    url: String,
}

impl Redis {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on the PATH (Debian: apt-get install redis-server)");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            child,
            url: format!("redis://127.0.0.1:{port}/"),
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_publication_on_one_node_reaches_the_subscribers_of_both() {
    let redis = Redis::start().await;
    let (one, two) = (
        Topics::redis(&redis.url).await.unwrap(),
        Topics::redis(&redis.url).await.unwrap(),
    );
    let (node_one, node_two) = (server(&one).await, server(&two).await);
    let (_a, mut a) = subscriber(node_one.local_addr(), "rust").await;
    let (_b, mut b) = subscriber(node_two.local_addr(), "rust").await;
    let (_c, mut c) = subscriber(node_two.local_addr(), "go").await;

    FeedNotifier::news(&one.topic("rust"), "from node one".into())
        .await
        .unwrap();
    assert_eq!(next(&mut a).await, "from node one");
    assert_eq!(next(&mut b).await, "from node one", "across nodes");
    FeedNotifier::news(&two.everyone(), "to all".into())
        .await
        .unwrap();
    assert_eq!(next(&mut a).await, "to all");
    assert_eq!(next(&mut b).await, "to all");
    assert_eq!(next(&mut c).await, "to all", "c heard nothing of rust");
    assert!(c.try_recv().is_err());
}

#[tokio::test]
async fn an_unreachable_redis_is_a_clear_error() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let err = Topics::redis(&format!("redis://127.0.0.1:{port}/"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("redis"), "{err}");
}
