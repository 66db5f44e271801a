//! The measuring half of every load generator (`bench_client`, and the tarpc and raw
//! clients in `peers/`): the same arguments, the same latency histogram, the same line
//! of output, so peers are compared like for like.
//!
//! Arguments: `--addr HOST:PORT --conns C --inflight K --payload BYTES --seconds S`, or
//! `--requests N` (in total) instead of `--seconds` for a fixed amount of work (e.g.
//! under callgrind). `--payload typed` is the typed workload: a small struct in and out
//! through the peer's generated client (`bench_ops.rs`), where the peer has one. Output:
//! one line with `req/s=`, `MB/s=` (payload bytes one way), `p50=`, `p99=`, `p999=` (µs,
//! HdrHistogram of every request).

#![allow(dead_code)] // each client uses its own part

use std::{
    future::Future,
    sync::Mutex,
    time::{Duration, Instant},
};

use bytes::Bytes;
use futures_util::{stream::FuturesUnordered, StreamExt};
use hdrhistogram::Histogram;

/// The JSON of the typed workload's value, one way (`bench_ops::Sample::example`).
pub const TYPED_JSON_BYTES: usize = 40;

#[derive(Clone, Debug)]
pub struct Args {
    pub addr: String,
    pub conns: usize,
    pub inflight: usize,
    pub payload: usize,
    /// The typed workload (`--payload typed`) instead of raw payloads.
    pub typed: bool,
    pub seconds: f64,
    pub requests: Option<u64>,
}

impl Args {
    /// When each connection stops: a deadline, and a number of requests.
    pub fn budget(&self) -> (Instant, u64) {
        match self.requests {
            Some(total) => (
                Instant::now() + Duration::from_secs(3600),
                total.div_ceil(self.conns as u64),
            ),
            None => (
                Instant::now() + Duration::from_secs_f64(self.seconds),
                u64::MAX,
            ),
        }
    }
}

pub fn parse_args(program: &str) -> Args {
    let usage = format!(
        "usage: {program} --addr HOST:PORT [--conns C] [--inflight K] [--payload BYTES|typed] [--seconds S | --requests N]"
    );
    let mut args = Args {
        addr: String::new(),
        conns: 1,
        inflight: 64,
        payload: 16,
        typed: false,
        seconds: 5.0,
        requests: None,
    };
    let mut it = std::env::args().skip(1);
    let fail = |msg: String| -> ! {
        eprintln!("{msg}\n{usage}");
        std::process::exit(2)
    };
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            println!("{usage}");
            std::process::exit(0);
        }
        let value = it
            .next()
            .unwrap_or_else(|| fail(format!("{flag} needs a value")));
        let bad = |e: &dyn std::fmt::Display| -> ! {
            fail(format!("bad value {value:?} for {flag}: {e}"))
        };
        match flag.as_str() {
            "--addr" => args.addr = value.clone(),
            "--conns" => args.conns = value.parse().unwrap_or_else(|e| bad(&e)),
            "--inflight" => args.inflight = value.parse().unwrap_or_else(|e| bad(&e)),
            "--payload" if value == "typed" => {
                args.typed = true;
                args.payload = TYPED_JSON_BYTES;
            }
            "--payload" => args.payload = value.parse().unwrap_or_else(|e| bad(&e)),
            "--seconds" => args.seconds = value.parse().unwrap_or_else(|e| bad(&e)),
            "--requests" => args.requests = Some(value.parse().unwrap_or_else(|e| bad(&e))),
            _ => fail(format!("unknown argument {flag:?}")),
        }
    }
    if args.addr.is_empty() || args.conns == 0 || args.inflight == 0 {
        fail("--addr is required; --conns and --inflight must be positive".into());
    }
    args
}

pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// One call of the workload through a peer's client, borrowing the client as a user's
/// code would (no clone per call).
pub trait Call {
    /// Sends `payload` (or the typed input) and gives the length of what came back: its
    /// length is checked against the payload's (a typed call checks its own answer and
    /// gives `payload.len()`).
    fn call(&self, payload: Bytes) -> impl Future<Output = Result<usize, String>> + Send;
}

/// Keeps `args.inflight` calls outstanding on one connection until the budget is spent:
/// that many workers, each making one call after another, as a user's `inflight`
/// concurrent callers would. (Joined once, rather than a new future per call in a
/// `FuturesUnordered`: that allocates a task and copies the call's future for every
/// request, which the clients of every peer would pay and not the peers themselves.) Up to
/// 30 workers are joined as `try_join_all` joins them, all polled when the task is woken
/// (no wake-up queue of their own: 1,700 instructions less per call one at a time, 180 at
/// 16 in flight); more go into a `FuturesUnordered` (`try_join_all`'s `FuturesOrdered`
/// would add an order they do not need).
///
/// Like the raw client's loop, the workers take no lock and share no counter per request:
/// each has its share of the budget, and notes its latencies in a small buffer of its own
/// that goes into the connection's histogram (one per connection, as the raw client has:
/// one per worker would be a few hundred KiB each, and the cache misses would show in the
/// figures) when full.
pub async fn drive<C: Call>(conn: C, args: Args, payload: Bytes) -> Result<Histogram<u64>, String> {
    const NOTED: usize = 256;
    let (deadline, budget) = args.budget();
    let inflight = args.inflight as u64;
    let hist = Mutex::new(histogram());
    let record = |noted: &mut Vec<u64>| {
        let mut hist = hist.lock().expect("not poisoned");
        for micros in noted.drain(..) {
            hist.saturating_record(micros);
        }
    };
    let worker = |i: u64| {
        let (conn, payload, record) = (&conn, &payload, &record);
        let share = budget / inflight + u64::from(i < budget % inflight);
        async move {
            let mut noted = Vec::with_capacity(NOTED);
            // One clock read per request: the time a call completes is also the time the
            // next one starts (the clock shows in profiles of a load generator this busy).
            let mut start = Instant::now();
            for _ in 0..share {
                if start >= deadline {
                    break;
                }
                let len = conn.call(payload.clone()).await?;
                let now = Instant::now();
                if len != payload.len() {
                    return Err(format!(
                        "echo of {} bytes came back as {len}",
                        payload.len()
                    ));
                }
                noted.push((now - start).as_micros().max(1) as u64);
                if noted.len() == NOTED {
                    record(&mut noted);
                }
                start = now;
            }
            record(&mut noted);
            Ok(())
        }
    };
    let workers = (0..inflight).map(worker);
    if inflight <= 30 {
        futures_util::future::try_join_all(workers).await?;
    } else {
        let mut workers: FuturesUnordered<_> = workers.collect();
        while let Some(done) = workers.next().await {
            done?;
        }
    }
    Ok(hist.into_inner().expect("not poisoned"))
}

/// Waits for every connection's histogram and prints the report line; the first error
/// ends the process with status 1.
pub async fn collect(
    peer: &str,
    args: &Args,
    tasks: Vec<tokio::task::JoinHandle<Result<Histogram<u64>, String>>>,
    start: Instant,
) {
    let mut total = histogram();
    for task in tasks {
        match task.await {
            Ok(Ok(hist)) => total.add(hist).expect("same bounds"),
            Ok(Err(e)) => {
                eprintln!("{peer}: request failed: {e}");
                std::process::exit(1);
            }
            Err(e) => {
                eprintln!("{peer}: connection task failed: {e}");
                std::process::exit(1);
            }
        }
    }
    report(peer, args, &total, start.elapsed());
}

/// Prints the one line every load generator ends with.
pub fn report(peer: &str, args: &Args, hist: &Histogram<u64>, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    let reqs = hist.len() as f64;
    let payload = match args.typed {
        true => "typed".to_owned(),
        false => args.payload.to_string(),
    };
    println!(
        "peer={peer} conns={} inflight={} payload={payload} requests={} req/s={:.0} MB/s={:.1} p50={}µs p99={}µs p999={}µs",
        args.conns,
        args.inflight,
        hist.len(),
        reqs / secs,
        reqs * args.payload as f64 / secs / 1e6,
        hist.value_at_quantile(0.5),
        hist.value_at_quantile(0.99),
        hist.value_at_quantile(0.999),
    );
}
