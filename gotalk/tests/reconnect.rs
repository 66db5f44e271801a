//! `Reconnecting`: a client that connects again when its server restarts, with the same
//! handlers and its on-connect hook, and calls that wait for the next connection or fail
//! at once while there is none.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use gotalk::{Config, Error, Reconnecting, Server, WhileDisconnected};
use tokio::time::timeout;

mod support;
use support::{client_handlers, server_handlers, SECOND};

async fn serve(addr: SocketAddr) -> gotalk::Listening<SocketAddr> {
    Server::new(Config::accepting().handlers(server_handlers()))
        .listen_tcp(addr)
        .await
        .unwrap()
}

#[tokio::test]
async fn it_connects_again_when_the_server_restarts() {
    let server = serve("127.0.0.1:0".parse().unwrap()).await;
    let addr = server.local_addr();
    let connects = Arc::new(AtomicUsize::new(0));
    let counted = connects.clone();
    let client = Reconnecting::tcp([addr], Config::dialling().handlers(client_handlers()))
        .on_connect(move |sock| {
            let counted = counted.clone();
            async move {
                // What a client would do to sign in: a call on the new connection.
                let _: String = sock.request("greet", "again").await?;
                counted.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        })
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .while_disconnected(WhileDisconnected::Wait(SECOND * 5))
        .start();

    // The server calls the client's own handler back: the handlers are the client's.
    let n: i64 = client
        .sock()
        .await
        .unwrap()
        .request("ask-client", &20)
        .await
        .unwrap();
    assert_eq!(n, 41);
    assert_eq!(connects.load(Ordering::SeqCst), 1);

    server.shutdown().await;
    let deadline = tokio::time::Instant::now() + SECOND * 5;
    while client.connected() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the client saw the close"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A call made while the server is down waits for the next connection.
    let waiting = tokio::spawn(async move {
        let sock = client.sock().await?;
        let n: i64 = sock.request("ask-client", &1).await?;
        Ok::<_, Error>((n, client))
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let server = serve(addr).await;
    let (n, client) = timeout(SECOND * 10, waiting)
        .await
        .expect("answered once the server is back")
        .unwrap()
        .unwrap();
    assert_eq!(n, 3, "same handlers on the new connection");
    assert_eq!(connects.load(Ordering::SeqCst), 2, "the hook ran again");
    assert!(client.connected());

    client.close();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!client.connected(), "closed, and not reconnecting");
    server.shutdown().await;
}

#[tokio::test]
async fn fail_fast_says_why_while_disconnected() {
    // Nothing listens here.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    let client = Reconnecting::tcp([addr], Config::dialling())
        .backoff(Duration::from_millis(20), Duration::from_millis(50))
        .while_disconnected(WhileDisconnected::FailFast)
        .start();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let err = client.sock().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotConnected {
                last_failure: Some(_)
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("not connected (reconnecting; the last attempt failed:"),
        "{err}"
    );

    // A bounded wait fails the same way once it passes.
    let client = Reconnecting::tcp([addr], Config::dialling())
        .while_disconnected(WhileDisconnected::Wait(Duration::from_millis(100)))
        .start();
    assert!(matches!(
        client.sock().await,
        Err(Error::NotConnected { .. })
    ));
}

#[tokio::test]
async fn a_failing_hook_is_a_failed_attempt_and_addresses_are_tried_in_turn() {
    let server = serve("127.0.0.1:0".parse().unwrap()).await;
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nobody = free.local_addr().unwrap();
    drop(free);
    let tries = Arc::new(AtomicUsize::new(0));
    let counted = tries.clone();
    let client = Reconnecting::tcp([nobody, server.local_addr()], Config::dialling())
        .on_connect(move |_sock| {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    Err(Error::message("not yet"))
                } else {
                    Ok(())
                }
            }
        })
        .backoff(Duration::from_millis(10), Duration::from_millis(20))
        .start();
    let greeting: String = client
        .sock()
        .await
        .unwrap()
        .request("greet", "both")
        .await
        .unwrap();
    assert_eq!(greeting, "Hello both");
    assert_eq!(
        tries.load(Ordering::SeqCst),
        2,
        "the first good connection was refused by the hook"
    );
}

#[gotalk::service]
pub trait Jobs {
    /// Closes the caller's connection on its first call (a server going away under it).
    #[gotalk(idempotent)]
    async fn status(&self, sock: &gotalk::Sock, id: u64) -> String;
    /// The same, not marked idempotent.
    async fn submit(&self, sock: &gotalk::Sock, id: u64) -> String;
}

/// Drops the connection of the first `drops` calls, answers the rest.
struct Flaky {
    calls: AtomicUsize,
    drops: usize,
}

impl Flaky {
    fn answer(&self, sock: &gotalk::Sock, id: u64) -> String {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if call < self.drops {
            sock.close();
        }
        format!("job {id}: call {call}")
    }
}

impl Jobs for Arc<Flaky> {
    async fn status(&self, sock: &gotalk::Sock, id: u64) -> String {
        self.answer(sock, id)
    }
    async fn submit(&self, sock: &gotalk::Sock, id: u64) -> String {
        self.answer(sock, id)
    }
}

async fn flaky_server(drops: usize) -> (gotalk::Listening<SocketAddr>, Arc<Flaky>) {
    let flaky = Arc::new(Flaky {
        calls: AtomicUsize::new(0),
        drops,
    });
    let handlers = gotalk::Handlers::new().with(JobsService::new(flaky.clone()));
    let server = Server::new(Config::accepting().handlers(handlers))
        .listen_tcp("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .await
        .unwrap();
    (server, flaky)
}

fn reconnecting(addr: SocketAddr) -> Reconnecting {
    Reconnecting::tcp([addr], Config::dialling())
        .backoff(Duration::from_millis(10), Duration::from_millis(50))
        .start()
}

#[tokio::test]
async fn generated_clients_call_through_a_reconnecting_client() {
    let (server, flaky) = flaky_server(1).await;
    let client = reconnecting(server.local_addr());
    // An idempotent call whose connection closes under it is sent again on the next.
    let status = timeout(SECOND * 10, JobsClient::status(&client, 7))
        .await
        .unwrap();
    assert_eq!(status.unwrap(), "job 7: call 1");
    assert_eq!(flaky.calls.load(Ordering::SeqCst), 2);
    // One that is not marked fails with the close; the next call goes on a new connection.
    flaky.calls.store(0, Ordering::SeqCst);
    match JobsClient::submit(&client, 8).await {
        Err(Error::Closed(_)) => {}
        other => panic!("expected the close, got {other:?}"),
    }
    assert_eq!(
        JobsClient::submit(&client, 9).await.unwrap(),
        "job 9: call 1"
    );
    // Per call, through the options: sent again, and a reference or an Arc works too.
    flaky.calls.store(0, Ordering::SeqCst);
    let client = Arc::new(client);
    let with = JobsClient::with(&client, gotalk::CallOptions::new().idempotent());
    assert_eq!(with.submit(10).await.unwrap(), "job 10: call 1");
    server.shutdown().await;
}

#[tokio::test]
async fn an_idempotent_call_is_sent_again_a_bounded_number_of_times() {
    // A call that brings every connection down: sent 1 + RESENDS times, then its failure.
    let (server, flaky) = flaky_server(usize::MAX).await;
    let client = reconnecting(server.local_addr());
    match timeout(SECOND * 10, JobsClient::status(&client, 1))
        .await
        .unwrap()
    {
        Err(Error::Closed(_)) => {}
        other => panic!("expected the close, got {other:?}"),
    }
    assert_eq!(
        flaky.calls.load(Ordering::SeqCst),
        1 + gotalk::RESENDS as usize
    );
    // On a plain connection there is no next one: the first close is the answer.
    flaky.calls.store(0, Ordering::SeqCst);
    let sock = gotalk::tcp::connect(server.local_addr()).await.unwrap();
    assert!(matches!(
        JobsClient::status(&sock, 2).await,
        Err(Error::Closed(_))
    ));
    assert_eq!(flaky.calls.load(Ordering::SeqCst), 1);
    server.shutdown().await;
}

#[gotalk::notification]
pub trait Events {
    async fn ping(&self, n: u32);
}

struct Heard(tokio::sync::mpsc::UnboundedSender<u32>);

impl Events for Heard {
    async fn ping(&self, n: u32) {
        let _ = self.0.send(n);
    }
}

#[tokio::test]
async fn notifications_go_through_a_reconnecting_client() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let handlers = gotalk::Handlers::new().with(EventsService::new(Heard(tx)));
    let server = Server::new(Config::accepting().handlers(handlers))
        .listen_tcp("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .await
        .unwrap();
    let client = reconnecting(server.local_addr());
    EventsNotifier::ping(&client, 5).await.unwrap();
    assert_eq!(timeout(SECOND * 5, rx.recv()).await.unwrap(), Some(5));
    server.shutdown().await;
}

/// A server that accepts and, once it has read `until` (or at once if empty), writes
/// `last` and drops the connection; it counts the connections it accepted and those that
/// sent `until`.
async fn dropping_server(
    until: &'static [u8],
    last: &'static [u8],
) -> (SocketAddr, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (accepted, asked) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let counts = (accepted.clone(), asked.clone());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counts.0.fetch_add(1, Ordering::SeqCst);
            let asked = counts.1.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while !until.is_empty() {
                    let mut buf = [0; 1024];
                    match tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await {
                        Ok(n) if n > 0 => seen.extend_from_slice(&buf[..n]),
                        _ => return,
                    }
                    if seen.windows(until.len()).any(|w| w == until) {
                        asked.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                }
                let _ = tokio::io::AsyncWriteExt::write_all(&mut stream, last).await;
                drop(stream);
            });
        }
    });
    (addr, accepted, asked)
}

#[tokio::test]
async fn a_server_that_accepts_and_closes_at_once_is_not_met_with_a_storm() {
    let (addr, accepted, _) = dropping_server(b"", b"").await;
    let client = Reconnecting::tcp([addr], Config::dialling())
        .backoff(Duration::from_millis(50), Duration::from_millis(400))
        .start();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let first_second = accepted.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = accepted.load(Ordering::SeqCst) - first_second;
    client.close();
    // Waits of 25–50, 50–100, 100–200 and then 200–400 ms: about five attempts in the
    // first second, at most ten in the next two (before, thousands a second).
    assert!(
        first_second <= 6,
        "{first_second} connections in the first second"
    );
    assert!(later <= 10, "{later} connections in the next two seconds");
    assert!(later >= 4, "it goes on trying: {later}");
}

#[tokio::test]
async fn an_idempotent_call_reaches_a_server_that_drops_it_exactly_one_plus_resends_times() {
    // Each connection is dropped once the call arrives, after a request of the server's
    // own whose handler (500 ms) the client still finishes: the connection is ending but
    // not yet closed, and the resends must wait for the next one rather than fail on it.
    let (addr, _, asked) = dropping_server(b"status", b"01r0001005sleep00000003500").await;
    let client = Reconnecting::tcp([addr], Config::dialling().handlers(server_handlers()))
        .backoff(Duration::from_millis(10), Duration::from_millis(50))
        .start();
    match timeout(SECOND * 10, JobsClient::status(&client, 1))
        .await
        .unwrap()
    {
        Err(Error::Closed(_)) => {}
        other => panic!("expected the close, got {other:?}"),
    }
    assert_eq!(asked.load(Ordering::SeqCst), 1 + gotalk::RESENDS as usize);
    client.close();
}
