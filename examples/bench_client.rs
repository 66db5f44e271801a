//! A load generator for any Gotalk server: single requests of operation `bytes` (raw
//! payload echoed back, as `conformance_peer` serves it) from C connections with K
//! requests in flight on each.
//!
//! ```text
//! cargo run --release --example conformance_peer -- --tcp 127.0.0.1:1234 &
//! cargo run --release --example bench_client -- --addr 127.0.0.1:1234 --conns 1 --inflight 64 --payload 16 --seconds 5
//! ```
//!
//! Prints one line: `req/s=… MB/s=… p50=…µs p99=…µs p999=…µs`, latencies from an
//! HdrHistogram of every request. Each connection is driven by one task that keeps K
//! requests outstanding, so the client costs little next to the server it measures.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{stream::FuturesUnordered, StreamExt};
use hdrhistogram::Histogram;

struct Args {
    addr: String,
    conns: usize,
    inflight: usize,
    payload: usize,
    seconds: f64,
}

const USAGE: &str =
    "usage: bench_client --addr HOST:PORT [--conns C] [--inflight K] [--payload BYTES] [--seconds S]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        addr: String::new(),
        conns: 1,
        inflight: 64,
        payload: 16,
        seconds: 5.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.into());
        }
        let value = it.next().ok_or(format!("{flag} needs a value\n{USAGE}"))?;
        let bad = |e: &dyn std::fmt::Display| format!("bad value {value:?} for {flag}: {e}");
        match flag.as_str() {
            "--addr" => args.addr = value.clone(),
            "--conns" => args.conns = value.parse().map_err(|e| bad(&e))?,
            "--inflight" => args.inflight = value.parse().map_err(|e| bad(&e))?,
            "--payload" => args.payload = value.parse().map_err(|e| bad(&e))?,
            "--seconds" => args.seconds = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown argument {flag:?}\n{USAGE}")),
        }
    }
    if args.addr.is_empty() || args.conns == 0 || args.inflight == 0 {
        return Err(USAGE.into());
    }
    Ok(args)
}

/// Drives one connection until `end`; returns its latency histogram (µs).
async fn drive(
    sock: gotalk::Sock,
    inflight: usize,
    payload: Bytes,
    end: Instant,
) -> Result<Histogram<u64>, gotalk::Error> {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
    let call = |sock: gotalk::Sock, payload: Bytes| async move {
        let start = Instant::now();
        let out = sock.request_raw("bytes", payload).await?;
        Ok::<_, gotalk::Error>((start.elapsed(), out.len()))
    };
    let mut running: FuturesUnordered<_> = (0..inflight)
        .map(|_| call(sock.clone(), payload.clone()))
        .collect();
    while let Some(done) = running.next().await {
        let (took, len) = done?;
        if len != payload.len() {
            return Err(gotalk::Error::message(format!(
                "echo of {} bytes came back as {len}",
                payload.len()
            )));
        }
        hist.saturating_record(took.as_micros().max(1) as u64);
        if Instant::now() < end {
            running.push(call(sock.clone(), payload.clone()));
        }
    }
    sock.close();
    Ok(hist)
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let payload = Bytes::from(vec![b'x'; args.payload]);
    let mut socks = Vec::new();
    for _ in 0..args.conns {
        match gotalk::tcp::connect_with(
            &args.addr,
            gotalk::Config::dialling().heartbeat_interval(None),
        )
        .await
        {
            Ok(sock) => socks.push(sock),
            Err(e) => {
                eprintln!("cannot connect to {}: {e}", args.addr);
                std::process::exit(1);
            }
        }
    }
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(args.seconds);
    let tasks: Vec<_> = socks
        .into_iter()
        .map(|sock| tokio::spawn(drive(sock, args.inflight, payload.clone(), end)))
        .collect();
    let mut total = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
    for task in tasks {
        match task.await {
            Ok(Ok(hist)) => total.add(hist).expect("same bounds"),
            Ok(Err(e)) => {
                eprintln!("request failed: {e}");
                std::process::exit(1);
            }
            Err(e) => {
                eprintln!("connection task failed: {e}");
                std::process::exit(1);
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let reqs = total.len() as f64;
    println!(
        "conns={} inflight={} payload={} requests={} req/s={:.0} MB/s={:.1} p50={}µs p99={}µs p999={}µs",
        args.conns,
        args.inflight,
        args.payload,
        total.len(),
        reqs / secs,
        reqs * args.payload as f64 / secs / 1e6,
        total.value_at_quantile(0.5),
        total.value_at_quantile(0.99),
        total.value_at_quantile(0.999),
    );
}
