//! The operations the conformance transcripts were captured against (see
//! `shared/conformance/README.md`). Shared by the `conformance_peer` example and by the
//! gotalk crate's transcript-replay tests, so both serve exactly the same thing.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use bytes::Bytes;
use gotalk::{Error, Handlers, Limits, Reply, Request, StreamRequest};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct GreetIn {
    name: String,
}

#[derive(Serialize)]
struct GreetOut {
    greeting: String,
}

#[derive(Deserialize)]
struct SleepIn {
    ms: u64,
}

/// The longest `sleep` honoured, so a caller cannot park a handler forever.
const MAX_SLEEP_MS: u64 = 10_000;

/// How many `sleep`s were dropped before they finished: cancelled by their caller, or
/// past their deadline (our extension, EXTENSIONS.md).
static ABANDONED: AtomicU64 = AtomicU64::new(0);

/// Counts a `sleep` dropped before its end.
struct Abandoned(bool);

impl Drop for Abandoned {
    fn drop(&mut self) {
        if !self.0 {
            ABANDONED.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// echo, greet, fail, bytes, sleep, stream-echo, notify-me and call-back; and the
/// notification `ping`, answered with a notification `pong` carrying the same payload.
/// Beyond the transcripts, for our extension: `abandoned` (how many `sleep`s were
/// cancelled or passed their deadline) and `deadline` (the milliseconds its request had
/// left, or null).
pub fn handlers() -> Handlers {
    let h = Handlers::new()
        .handle_raw("echo", |req: Request| async move {
            // JSON in, the same JSON out, byte for byte.
            serde_json::from_slice::<serde::de::IgnoredAny>(&req.payload)
                .map_err(|e| Error::message(format!("invalid JSON: {e}")))?;
            Ok::<_, Error>(req.payload)
        })
        .handle("greet", |input: GreetIn| async move {
            Ok::<_, Error>(GreetOut {
                greeting: format!("Hello {}", input.name),
            })
        })
        .handle("fail", |_: serde_json::Value| async move {
            Err::<(), _>(Error::message("boom"))
        })
        .handle_raw("bytes", |req: Request| async move {
            Ok::<_, Error>(req.payload)
        })
        .handle("sleep", |input: SleepIn| async move {
            let mut abandoned = Abandoned(false);
            tokio::time::sleep(Duration::from_millis(input.ms.min(MAX_SLEEP_MS))).await;
            abandoned.0 = true;
            Ok::<_, Error>("slept")
        })
        .handle("abandoned", |_: serde_json::Value| async move {
            Ok::<_, Error>(ABANDONED.load(Ordering::SeqCst))
        })
        .handle_raw("deadline", |req: Request| async move {
            let left = req.deadline.map(|d| {
                d.saturating_duration_since(std::time::Instant::now())
                    .as_millis()
            });
            serde_json::to_vec(&left).map_err(|e| Error::message(e.to_string()))
        })
        .handle_stream("stream-echo", |req: StreamRequest| async move {
            Reply::stream(req.chunks)
        })
        .handle_raw("notify-me", |req: Request| async move {
            req.sock.notify_raw("hello", req.payload).await?;
            Ok::<_, Error>(Bytes::from_static(b"\"ok\""))
        })
        .handle_raw("call-back", |req: Request| async move {
            req.sock.request_raw("client-echo", req.payload).await
        })
        .handle_notification_raw("ping", |n: gotalk::Notification| async move {
            let _ = n.sock.notify_raw("pong", n.payload).await;
        });
    h
}

/// The limits of the `--limited` listener: one single request at a time (retry wait
/// 100..200 ms) and no stream requests.
pub fn limited() -> Limits {
    Limits::default()
        .max_single_requests(1)
        .retry_wait(Duration::from_millis(100)..=Duration::from_millis(200))
        .streams_allowed(false)
}
