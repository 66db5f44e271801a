//! Our protocol extension (`EXTENSIONS.md`): a call given up is cancelled at the peer,
//! its timeout travels as the handler's deadline, both only with a peer that announced
//! them; a plain protocol-1 peer sees nothing new. Generated clients take per-call options.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use futures_util::StreamExt;
use gotalk::{CallOptions, Config, Deadline, Error, Handlers, Reply, Request, Server, Sock};
use tokio::{
    io::AsyncWriteExt,
    net::{TcpListener, TcpStream},
    sync::Notify,
    time::timeout,
};

mod support;
use support::{read_n, read_until_closed, SECOND};

/// What the slow handlers saw: how many started, how many were dropped before the end,
/// and the deadlines their requests carried.
#[derive(Default)]
struct Seen {
    started: AtomicUsize,
    dropped: AtomicUsize,
    deadlines: Mutex<Vec<Option<Duration>>>,
    change: Notify,
}

impl Seen {
    /// Waits until `count` of `which` is at least `n` (within 5 s).
    async fn until(&self, which: impl Fn(&Self) -> usize, n: usize) {
        timeout(SECOND * 5, async {
            loop {
                let changed = self.change.notified();
                if which(self) >= n {
                    return;
                }
                changed.await;
            }
        })
        .await
        .expect("in time");
    }
}

/// Counts the drop of a handler that did not finish.
struct DropGuard(Arc<Seen>, bool);

impl Drop for DropGuard {
    fn drop(&mut self) {
        if !self.1 {
            self.0.dropped.fetch_add(1, Ordering::SeqCst);
            self.0.change.notify_waiters();
        }
    }
}

/// `echo`: the payload back; `slow`: waits 60 s, keeping its request; `ticks`: a stream
/// result that never ends.
fn slow_handlers(seen: &Arc<Seen>) -> Handlers {
    let h =
        Handlers::new().handle_raw(
            "echo",
            |req: Request| async move { Ok::<_, Error>(req.payload) },
        );
    let s = seen.clone();
    let h = h.handle_reply("slow", move |req: Request| {
        let seen = s.clone();
        async move {
            let deadline = req
                .deadline
                .map(|d| d.saturating_duration_since(Instant::now()));
            seen.deadlines.lock().unwrap().push(deadline);
            seen.started.fetch_add(1, Ordering::SeqCst);
            seen.change.notify_waiters();
            let mut guard = DropGuard(seen, false);
            // Kept while it runs, as a handler that uses its request would.
            let payload = req.payload;
            tokio::time::sleep(SECOND * 60).await;
            guard.1 = true;
            drop(payload);
            Reply::Result(Bytes::from_static(b"late"))
        }
    });
    let s = seen.clone();
    let h = h.handle_reply("ticks", move |_req: Request| {
        let seen = s.clone();
        seen.started.fetch_add(1, Ordering::SeqCst);
        seen.change.notify_waiters();
        let guard = DropGuard(seen, false);
        let ticks = futures_util::stream::unfold(guard, |guard| async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Some((Ok(Bytes::from_static(b"tick")), guard))
        });
        async move { Reply::stream(ticks) }
    });
    h
}

async fn serve(seen: &Arc<Seen>, config: Config) -> gotalk::Listening<std::net::SocketAddr> {
    Server::new(config.handlers(slow_handlers(seen)))
        .listen_tcp("127.0.0.1:0")
        .await
        .unwrap()
}

#[tokio::test]
async fn a_dropped_call_is_cancelled_at_the_peer() {
    let seen = Arc::new(Seen::default());
    let server = serve(&seen, Config::accepting()).await;
    let client = gotalk::tcp::connect(server.local_addr()).await.unwrap();
    let call = tokio::spawn({
        let client = client.clone();
        // Large enough to be charged as its own read buffer while the handler keeps it.
        async move { client.request_raw("slow", vec![b'x'; 64 * 1024]).await }
    });
    seen.until(|s| s.started.load(Ordering::SeqCst), 1).await;
    let held = || {
        server
            .connections()
            .iter()
            .map(Sock::held_bytes)
            .sum::<usize>()
    };
    let running = held();
    assert!(
        running >= 64 * 1024,
        "the running handler keeps its request charged: {running} B"
    );
    call.abort();
    seen.until(|s| s.dropped.load(Ordering::SeqCst), 1).await;
    // Its running slot and the bytes it held are free again, and the connection goes on.
    assert_eq!(server_running(&server), 0);
    // At most the small read buffer a connection keeps while it trades.
    assert!(held() <= 512, "{} B still held", held());
    assert_eq!(client.request_raw("echo", "on").await.unwrap(), "on");
}

#[tokio::test]
async fn a_timeout_is_the_handlers_deadline_and_cancels_it() {
    let seen = Arc::new(Seen::default());
    let server = serve(&seen, Config::accepting()).await;
    let client = gotalk::tcp::connect(server.local_addr()).await.unwrap();
    // The server's announcement comes before its first answer: from then on calls carry
    // their deadlines.
    client.request_raw("echo", "").await.unwrap();
    let options = CallOptions::new().timeout(Duration::from_millis(300));
    let err = client
        .request_raw_with("slow", "", options)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    seen.until(|s| s.dropped.load(Ordering::SeqCst), 1).await;
    let deadlines = seen.deadlines.lock().unwrap().clone();
    let left = deadlines[0].expect("the request carried its deadline");
    assert!(
        left <= Duration::from_millis(300) && left > Duration::from_millis(100),
        "{left:?}"
    );
    assert_eq!(server_running(&server), 0);
}

/// The server's connection (the only one) runs no handler any more.
fn server_running(server: &gotalk::Listening<std::net::SocketAddr>) -> usize {
    server
        .connections()
        .iter()
        .map(Sock::running_handlers)
        .sum()
}

#[tokio::test]
async fn a_dropped_result_stream_stops_the_producer() {
    let seen = Arc::new(Seen::default());
    let server = serve(&seen, Config::accepting()).await;
    let client = gotalk::tcp::connect(server.local_addr()).await.unwrap();
    let mut ticks = client.request_results("ticks", "").await.unwrap();
    for _ in 0..3 {
        assert_eq!(ticks.next().await.unwrap().unwrap(), "tick");
    }
    drop(ticks);
    seen.until(|s| s.dropped.load(Ordering::SeqCst), 1).await;
    timeout(SECOND * 5, async {
        while server_running(&server) > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the stream's slot is freed");
}

/// A peer that announces only deadlines and never cancels: the deadline alone drops the
/// work, and nothing is answered for it. Bytes on the wire, both ways.
#[tokio::test]
async fn the_deadline_alone_drops_the_work() {
    let seen = Arc::new(Seen::default());
    let server = serve(&seen, Config::accepting()).await;
    let mut raw = TcpStream::connect(server.local_addr()).await.unwrap();
    raw.write_all(b"01n00cgotalk:hello00000008deadline")
        .await
        .unwrap();
    raw.write_all(b"n00fgotalk:deadline00000008abcd 100rabcd004slow00000000")
        .await
        .unwrap();
    let answer = read_n(&mut raw, 41).await;
    assert_eq!(answer, b"01n00cgotalk:hello0000000fcancel deadline");
    seen.until(|s| s.dropped.load(Ordering::SeqCst), 1).await;
    let left = seen.deadlines.lock().unwrap()[0].expect("a deadline");
    assert!(left <= Duration::from_millis(100), "{left:?}");
    // A deadline too far to represent is none (and does not upset the connection).
    raw.write_all(b"n00fgotalk:deadline00000019abce 18446744073709551615rabce004echo00000002ok")
        .await
        .unwrap();
    assert_eq!(read_n(&mut raw, 15).await, b"Rabce00000002ok");
    // Nothing more: no result for the dropped request.
    raw.shutdown().await.unwrap();
    assert_eq!(read_until_closed(&mut raw, SECOND * 2).await, b"");
}

/// A raw peer we dial: it sends `greeting`, then records everything we send until we
/// close (within 3 s).
async fn raw_listener(
    greeting: &'static [u8],
) -> (std::net::SocketAddr, tokio::task::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        stream.write_all(greeting).await.unwrap();
        read_until_closed(&mut stream, SECOND * 3).await
    });
    (addr, peer)
}

/// What our dialling side sends a peer that never announces: its announcement (which a
/// plain peer ignores), and nothing else new: no deadline, no cancel.
#[tokio::test]
async fn a_plain_peer_receives_nothing_else_new() {
    let (addr, peer) = raw_listener(b"01").await;
    let client = gotalk::tcp::connect(addr).await.unwrap();
    let options = CallOptions::new().timeout(Duration::from_millis(100));
    let err = client
        .request_raw_with("slow", "x", options)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }));
    let dropped = client.request_raw("slow", "y");
    let _ = timeout(Duration::from_millis(50), dropped).await;
    client.close();
    let sent = peer.await.unwrap();
    assert_eq!(
        sent,
        b"01n00cgotalk:hello0000000fcancel deadliner0000004slow00000001xr0001004slow00000001y"
    );
}

/// A plain peer dialling us receives nothing new at all.
#[tokio::test]
async fn a_plain_peer_dialling_us_receives_nothing_new() {
    let seen = Arc::new(Seen::default());
    let server = serve(&seen, Config::accepting()).await;
    let mut raw = TcpStream::connect(server.local_addr()).await.unwrap();
    raw.write_all(b"01r0001004echo00000002hi").await.unwrap();
    raw.shutdown().await.unwrap();
    assert_eq!(
        read_until_closed(&mut raw, SECOND * 2).await,
        b"01R000100000002hi"
    );
}

#[tokio::test]
async fn with_the_extension_off_nothing_is_announced() {
    let (addr, peer) = raw_listener(b"01n00cgotalk:hello0000000fcancel deadline").await;
    let config = Config::dialling().extensions(false);
    let client = gotalk::tcp::connect_with(addr, config).await.unwrap();
    let options = CallOptions::new().timeout(Duration::from_millis(100));
    let _ = client.request_raw_with("slow", "", options).await;
    client.close();
    assert_eq!(peer.await.unwrap(), b"01r0000004slow00000000");
}

#[test]
#[should_panic(expected = "reserved for the protocol extension")]
fn reserved_names_cannot_be_registered() {
    Handlers::new().handle_notification_raw("gotalk:cancel", |_| async {});
}

#[gotalk::service]
pub trait Flaky {
    /// Answers a RetryResult the first `n` times, then `n`.
    async fn flaky(&self, n: u32) -> Result<u32, Error>;
    /// Never answers.
    #[gotalk(timeout = "5s")]
    async fn hang(&self);
}

#[derive(Default)]
struct FlakyImpl {
    calls: AtomicUsize,
}

impl Flaky for FlakyImpl {
    async fn flaky(&self, n: u32) -> Result<u32, Error> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < n as usize {
            return Err(Error::retry(Duration::from_millis(5), "not yet"));
        }
        Ok(n)
    }

    async fn hang(&self) {
        std::future::pending::<()>().await
    }
}

#[tokio::test]
async fn generated_clients_take_per_call_options() {
    let handlers = Handlers::new().with(FlakyService::new(FlakyImpl::default()));
    let (client, _server) =
        gotalk::pipe(Config::dialling(), Config::accepting().handlers(handlers));
    // The one-line form is unchanged: a RetryResult is an error.
    let err = FlakyClient::flaky(&client, 2).await.unwrap_err();
    assert!(matches!(err, Error::Retry { .. }), "{err}");
    // With retries, the call gets through (one attempt was used above).
    let n = FlakyClient::with(&client, CallOptions::new().retries(3))
        .flaky(2)
        .await
        .unwrap();
    assert_eq!(n, 2);
    // A per-call timeout overrides the method's 5 s.
    let started = Instant::now();
    let err = FlakyClient::with(
        &client,
        CallOptions::new().timeout(Duration::from_millis(50)),
    )
    .hang()
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(started.elapsed() < SECOND * 4);
}

#[gotalk::service]
pub trait Timed {
    /// The milliseconds its caller still waits, if it said.
    async fn left(&self, #[gotalk(context)] deadline: Deadline) -> Option<u64>;
}

struct TimedImpl;

impl Timed for TimedImpl {
    async fn left(&self, deadline: Deadline) -> Option<u64> {
        deadline
            .0
            .map(|at| at.saturating_duration_since(Instant::now()).as_millis() as u64)
    }
}

#[tokio::test]
async fn a_generated_service_sees_the_deadline_in_its_context() {
    let handlers = Handlers::new().with(TimedService::new(TimedImpl));
    let (client, _server) =
        gotalk::pipe(Config::dialling(), Config::accepting().handlers(handlers));
    // No timeout, no deadline (and by the answer the server has announced).
    assert_eq!(TimedClient::left(&client).await.unwrap(), None);
    let left = TimedClient::with(&client, CallOptions::new().timeout(SECOND * 2))
        .left()
        .await
        .unwrap()
        .expect("a deadline");
    assert!(left > 1000 && left <= 2000, "{left} ms");
}
