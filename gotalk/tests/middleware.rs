//! Middleware around handlers (`Handlers::wrap`) and around calls (`Config::wrap_calls`):
//! what it sees, refusing, ordering, which handlers it covers, and tower layers.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use bytes::Bytes;
use futures_util::StreamExt;
use gotalk::{
    middleware::{Incoming, Kind, Next, NextCall, Outgoing},
    Config, Error, Handlers, Reply, Sock,
};

type Seen = Arc<Mutex<Vec<String>>>;

fn connect(handlers: Handlers) -> (Sock, Sock) {
    gotalk::pipe(Config::dialling(), Config::accepting().handlers(handlers))
}

/// A middleware that writes down what it sees, tagged.
fn recorder(
    tag: &'static str,
    seen: &Seen,
) -> impl Fn(Incoming, Next) -> gotalk::BoxFuture<Reply> + Send + Sync + 'static {
    let seen = seen.clone();
    move |incoming, next| {
        let seen = seen.clone();
        Box::pin(async move {
            seen.lock().unwrap().push(format!(
                "{tag} {:?} {} handler={:?} size={} id={}",
                incoming.kind,
                incoming.op,
                &*incoming.handler,
                incoming.size,
                incoming.id.is_some()
            ));
            let reply = next.run().await;
            seen.lock().unwrap().push(format!("{tag} done"));
            reply
        })
    }
}

#[tokio::test]
async fn middleware_sees_every_request_in_order_outermost_last_added() {
    let seen = Seen::default();
    let handlers = Handlers::new()
        .handle_raw("echo", |req: gotalk::Request| async move {
            Ok::<_, Error>(req.payload)
        })
        .wrap(recorder("inner", &seen))
        .wrap(recorder("outer", &seen));
    let (sock, _server) = connect(handlers);
    assert_eq!(sock.request_raw("echo", "hello").await.unwrap(), "hello");
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "outer Request echo handler=\"echo\" size=5 id=true",
            "inner Request echo handler=\"echo\" size=5 id=true",
            "inner done",
            "outer done",
        ]
    );
}

#[tokio::test]
async fn middleware_covers_handlers_added_later_services_fallbacks_streams_and_notifications() {
    let seen = Seen::default();
    let notified = Arc::new(AtomicUsize::new(0));
    let handlers = Handlers::new()
        .wrap(recorder("mw", &seen))
        .handle("later", |n: u32| async move { Ok::<_, Error>(n + 1) })
        .handle_raw("", |req: gotalk::Request| async move {
            Ok::<_, Error>(Bytes::from(req.op.to_string()))
        })
        .handle_stream("sum", |req: gotalk::StreamRequest| async move {
            let mut chunks = req.chunks;
            let mut total = 0;
            while let Some(Ok(chunk)) = chunks.next_chunk().await {
                total += chunk.len();
            }
            Reply::Result(Bytes::from(total.to_string()))
        });
    let count = notified.clone();
    let handlers = handlers.handle_notification_raw("ping", move |_| {
        count.fetch_add(1, Ordering::SeqCst);
        async {}
    });
    let (sock, _server) = connect(handlers);

    let out: u32 = sock.request("later", &1u32).await.unwrap();
    assert_eq!(out, 2);
    assert_eq!(sock.request_raw("anything", "").await.unwrap(), "anything");
    let (mut writer, mut results) = sock.stream_request("sum", "ab").await.unwrap();
    writer.send("cde").await.unwrap();
    writer.finish().await.unwrap();
    assert_eq!(results.next().await.unwrap().unwrap(), "5");
    sock.notify_raw("ping", "x").await.unwrap();
    // The notification's middleware finishes after its handler: wait for its "done".
    for _ in 0..500 {
        if notified.load(Ordering::SeqCst) == 1 && seen.lock().unwrap().len() == 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    let seen = seen.lock().unwrap();
    let starts: Vec<&str> = seen
        .iter()
        .map(String::as_str)
        .filter(|s| !s.ends_with("done"))
        .collect();
    assert_eq!(
        starts,
        [
            "mw Request later handler=\"later\" size=1 id=true",
            "mw Request anything handler=\"\" size=0 id=true",
            "mw StreamRequest sum handler=\"sum\" size=0 id=true",
            "mw Notification ping handler=\"ping\" size=1 id=false",
        ]
    );
    assert_eq!(seen.len(), 8, "every one ran to its end: {seen:?}");
}

#[tokio::test]
async fn middleware_refuses_without_running_the_handler() {
    let ran = Arc::new(AtomicUsize::new(0));
    let count = ran.clone();
    let handlers = Handlers::new()
        .handle("work", move |n: u32| {
            count.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, Error>(n) }
        })
        .wrap(|incoming: Incoming, next: Next| async move {
            match incoming.size {
                0..=2 => next.run().await,
                3 => Reply::Retry {
                    wait: Duration::from_millis(7),
                    reason: "busy".into(),
                },
                _ => Reply::Error("too large".into()),
            }
        });
    let (sock, _server) = connect(handlers);
    assert_eq!(sock.request::<_, u32>("work", &12u32).await.unwrap(), 12);
    match sock.request::<_, u32>("work", &123u32).await {
        Err(Error::Retry { wait, reason }) => {
            assert_eq!((wait, reason.as_str()), (Duration::from_millis(7), "busy"))
        }
        other => panic!("expected a retry, got {other:?}"),
    }
    match sock.request::<_, u32>("work", &1234u32).await {
        Err(Error::Remote(text)) => assert_eq!(text, "too large"),
        other => panic!("expected an error, got {other:?}"),
    }
    assert_eq!(
        ran.load(Ordering::SeqCst),
        1,
        "only the admitted request ran"
    );
}

#[tokio::test]
async fn a_child_set_keeps_its_parents_middleware() {
    let seen = Seen::default();
    let parent = Handlers::new()
        .handle("base", |()| async { Ok::<_, Error>(1u8) })
        .wrap(recorder("mw", &seen));
    let child = parent
        .child()
        .handle("extra", |()| async { Ok::<_, Error>(2u8) });
    let (sock, _server) = connect(child);
    assert_eq!(sock.request::<_, u8>("base", &()).await.unwrap(), 1);
    assert_eq!(sock.request::<_, u8>("extra", &()).await.unwrap(), 2);
    let seen = seen.lock().unwrap();
    assert!(seen[0].starts_with("mw Request base"), "{seen:?}");
    assert!(seen[2].starts_with("mw Request extra"), "{seen:?}");
}

#[tokio::test]
async fn middleware_on_calls_sees_refuses_and_wraps_every_single_result_call() {
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    let handlers = Handlers::new().handle_raw("echo", move |req: gotalk::Request| {
        count.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, Error>(req.payload) }
    });
    let seen = Seen::default();
    let log = seen.clone();
    let config = Config::dialling()
        .wrap_calls(move |call: Outgoing, next: NextCall| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(format!(
                    "{} size={} timeout={:?} retries={}",
                    call.op, call.size, call.timeout, call.retries
                ));
                next.run().await
            }
        })
        .wrap_calls(|call: Outgoing, next: NextCall| async move {
            if &*call.op == "forbidden" {
                return Err(Error::message("refused by this side"));
            }
            next.run().await
        });
    let (sock, _server) = gotalk::pipe(config, Config::accepting().handlers(handlers));

    assert_eq!(sock.request_raw("echo", "abc").await.unwrap(), "abc");
    let options = gotalk::CallOptions::new()
        .timeout(Duration::from_secs(5))
        .retries(2);
    assert_eq!(
        sock.request_raw_with("echo", "de", options).await.unwrap(),
        "de"
    );
    let typed: String = sock.request("echo", &"f").await.unwrap();
    assert_eq!(typed, "f");
    match sock.request_raw("forbidden", "x").await {
        Err(Error::Remote(text)) => assert_eq!(text, "refused by this side"),
        other => panic!("expected the refusal, got {other:?}"),
    }
    assert_eq!(
        served.load(Ordering::SeqCst),
        3,
        "the refused call never left"
    );
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "echo size=3 timeout=None retries=0",
            "echo size=2 timeout=Some(5s) retries=2",
            "echo size=3 timeout=None retries=0",
        ],
        "the refusing middleware, added last, runs first"
    );
}

#[tokio::test]
async fn authentication_with_middleware_and_connection_state() {
    struct SignedIn(String);
    let handlers = Handlers::new()
        .handle_with_sock("login", |sock: Sock, name: String| async move {
            sock.set_state(SignedIn(name));
            Ok::<_, Error>(true)
        })
        .handle_with_sock("whoami", |sock: Sock, (): ()| async move {
            let user = sock
                .state::<SignedIn>()
                .expect("the middleware let it through");
            Ok::<_, Error>(user.0.clone())
        })
        .wrap(|incoming: Incoming, next: Next| async move {
            let open = &*incoming.handler == "login" || incoming.kind == Kind::Notification;
            if open || incoming.sock.state::<SignedIn>().is_some() {
                next.run().await
            } else {
                Reply::Error("sign in first".into())
            }
        });
    let (sock, _server) = connect(handlers);
    match sock.request::<_, String>("whoami", &()).await {
        Err(Error::Remote(text)) => assert_eq!(text, "sign in first"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(sock.request::<_, bool>("login", &"ana").await.unwrap());
    assert_eq!(
        sock.request::<_, String>("whoami", &()).await.unwrap(),
        "ana"
    );
}

#[cfg(feature = "tower")]
mod tower_layers {
    use super::*;
    use tower::ServiceBuilder;

    #[tokio::test]
    async fn a_shared_concurrency_limit_sheds_load_as_a_retry_and_a_timeout_answers_an_error() {
        let (release, released) = tokio::sync::watch::channel(false);
        let started = Arc::new(tokio::sync::Notify::new());
        let running = started.clone();
        let handlers = Handlers::new()
            .handle("hold", move |()| {
                let (mut released, running) = (released.clone(), running.clone());
                async move {
                    // Runs inside the layers: the slot is taken.
                    running.notify_one();
                    let _ = released.wait_for(|r| *r).await;
                    Ok::<_, Error>(())
                }
            })
            .handle("slow", |()| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok::<_, Error>(())
            })
            .wrap(gotalk::middleware::tower::layer(
                ServiceBuilder::new()
                    .load_shed()
                    .concurrency_limit(1)
                    .timeout(Duration::from_millis(500)),
            ));
        // Two connections: the limit holds across them.
        let (a, _server_a) = connect(handlers.clone());
        let (b, _server_b) = connect(handlers);
        let held = tokio::spawn(async move { a.request::<_, ()>("hold", &()).await });
        // The first holds the only slot before the second asks.
        started.notified().await;
        match b.request::<_, ()>("hold", &()).await {
            Err(Error::Retry { reason, .. }) => assert_eq!(reason, "overloaded"),
            other => panic!("expected load shedding, got {other:?}"),
        }
        // The held request times out inside the layer.
        match held.await.unwrap() {
            Err(Error::Remote(text)) => assert_eq!(text, "handler timed out"),
            other => panic!("expected the timeout, got {other:?}"),
        }
        release.send(true).unwrap();
        match b.request::<_, ()>("slow", &()).await {
            Err(Error::Remote(text)) => assert_eq!(text, "handler timed out"),
            other => panic!("expected the timeout, got {other:?}"),
        }
    }
}
