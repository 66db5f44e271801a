//! `gotalk listen`: serves a few operations and prints every message received.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use gotalk::{Config, Error, Handlers, Reply, Request, Sock, StreamRequest};

use crate::{
    addr::Listener,
    log::{now, relay, Log},
    Failure,
};

/// Numbers the connections of `listen` and `trace` in their logs.
pub static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

fn handlers() -> Handlers {
    Handlers::new()
        .handle_raw(
            "echo",
            |req: Request| async move { Ok::<_, Error>(req.payload) },
        )
        .handle("upper", |text: String| async move {
            Ok::<_, Error>(text.to_uppercase())
        })
        .handle("sleep", |ms: u64| async move {
            tokio::time::sleep(Duration::from_millis(ms.min(60_000))).await;
            Ok::<_, Error>(ms)
        })
        .handle("fail", |text: String| async move {
            Err::<(), _>(Error::message(text))
        })
        .handle_stream("stream-echo", |req: StreamRequest| async move {
            gotalk::Reply::stream(req.chunks)
        })
        // A single request answered with a stream of results: 1, 2, …, N (at most 1,000).
        .handle_reply("count", |req: Request| async move {
            match serde_json::from_slice::<u32>(&req.payload) {
                Ok(n) => Reply::json_stream(futures_util::stream::iter(
                    (1..=n.min(1000)).map(Ok::<_, Error>),
                )),
                Err(e) => Reply::Error(format!("count takes a number: {e}")),
            }
        })
}

/// Serves `handlers()` on `addr` until killed; every connection goes through a relay that
/// logs what passes.
pub async fn listen(addr: &str) -> Result<(), Failure> {
    let config = Config::accepting().handlers(handlers());
    let listener = Listener::bind(addr).await?;
    println!("listening on {}", listener.local_addr());
    loop {
        let (stream, peer) = listener.accept().await;
        let config = config.clone();
        tokio::spawn(async move {
            let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
            println!("{} #{conn} connected: {peer}", now());
            let (ours, theirs) = tokio::io::duplex(64 * 1024);
            let sock = Sock::adopt(ours, peer, config);
            let (net_r, net_w) = tokio::io::split(stream);
            let (pipe_r, pipe_w) = tokio::io::split(theirs);
            let incoming = relay(net_r, pipe_w, Log::new(format!("#{conn} ←")));
            let outgoing = relay(pipe_r, net_w, Log::new(format!("#{conn} →")));
            let _ = tokio::join!(incoming, outgoing);
            sock.close();
            let reason = sock.closed().await.to_string();
            println!("{} #{conn} closed: {}", now(), crate::safe::line(&reason));
        });
    }
}
