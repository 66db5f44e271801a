//! A load generator for any Gotalk server: single requests of operation `bytes` (raw
//! payload echoed back, as `conformance_peer` serves it) from C connections with K
//! requests in flight on each.
//!
//! ```text
//! cargo run --release --example conformance_peer -- --tcp 127.0.0.1:1234 &
//! cargo run --release --example bench_client -- --addr 127.0.0.1:1234 --conns 1 --inflight 64 --payload 16 --seconds 5
//! ```
//!
//! `--payload typed` calls `Bench::sample` (`bench_ops.rs`) through the generated client
//! instead: a small struct in and out, as JSON.
//!
//! Prints one line: `req/s=… MB/s=… p50=…µs p99=…µs p999=…µs` (see `loadgen.rs`). Each
//! connection is driven by one task that keeps K requests outstanding, so the client
//! costs little next to the server it measures. `BENCHMARKS.md` compares it with tarpc
//! and a raw TCP baseline.

#[path = "bench_ops.rs"]
mod bench_ops;
#[path = "loadgen.rs"]
mod loadgen;

use std::time::Instant;

use bench_ops::{BenchClient, Sample};
use bytes::Bytes;

#[tokio::main]
async fn main() {
    let args = loadgen::parse_args("bench_client");
    let payload = Bytes::from(vec![b'x'; args.payload]);
    let mut socks = Vec::new();
    for _ in 0..args.conns {
        let config = gotalk::Config::dialling().heartbeat_interval(None);
        match gotalk::tcp::connect_with(&args.addr, config).await {
            Ok(sock) => socks.push(sock),
            Err(e) => {
                eprintln!("cannot connect to {}: {e}", args.addr);
                std::process::exit(1);
            }
        }
    }
    let start = Instant::now();
    let tasks: Vec<_> = socks
        .into_iter()
        .map(|sock| {
            let (args, payload) = (args.clone(), payload.clone());
            tokio::spawn(async move {
                let hist = if args.typed {
                    let sample = Sample::example();
                    loadgen::drive(sock.clone(), args, payload, |sock: &gotalk::Sock, _| {
                        let (sock, input) = (sock.clone(), sample.clone());
                        let id = input.id;
                        async move {
                            let out = BenchClient::sample(&sock, input)
                                .await
                                .map_err(|e| e.to_string())?;
                            match out.id == id {
                                true => Ok(loadgen::TYPED_JSON_BYTES),
                                false => Err(format!("unexpected answer {out:?}")),
                            }
                        }
                    })
                    .await
                } else {
                    loadgen::drive(sock.clone(), args, payload, |sock: &gotalk::Sock, p| {
                        let sock = sock.clone();
                        async move {
                            sock.request_raw("bytes", p)
                                .await
                                .map(|out| out.len())
                                .map_err(|e| e.to_string())
                        }
                    })
                    .await
                };
                sock.close();
                hist
            })
        })
        .collect();
    loadgen::collect("gotalk", &args, tasks, start).await;
}
