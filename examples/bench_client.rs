//! A load generator for any Gotalk server: single requests of operation `bytes` (raw
//! payload echoed back, as `conformance_peer` serves it) from C connections with K
//! requests in flight on each.
//!
//! ```text
//! cargo run --release --example conformance_peer -- --tcp 127.0.0.1:1234 &
//! cargo run --release --example bench_client -- --addr 127.0.0.1:1234 --conns 1 --inflight 64 --payload 16 --seconds 5
//! ```
//!
//! `--addr` is `HOST:PORT` for TCP or a `ws://HOST:PORT/gotalk/` URL for WebSocket.
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

// Each call is made inside the future `call` returns (as the tarpc client's are): the
// worker then holds a future of a reference and the payload, not a call built beforehand
// and moved in (two copies of the call per request less).

/// The raw workload: the payload echoed by `bytes`.
struct Raw(gotalk::Sock);

impl loadgen::Call for Raw {
    async fn call(&self, payload: Bytes) -> Result<usize, String> {
        let out = self.0.request_raw("bytes", payload).await;
        out.map(|out| out.len()).map_err(|e| e.to_string())
    }
}

/// The typed workload: a `Sample` through the generated client.
struct Typed(gotalk::Sock, Sample);

impl loadgen::Call for Typed {
    async fn call(&self, _: Bytes) -> Result<usize, String> {
        let input = self.1.clone();
        let id = input.id;
        match BenchClient::sample(&self.0, input).await {
            Ok(out) if out.id == id => Ok(loadgen::TYPED_JSON_BYTES),
            Ok(out) => Err(format!("unexpected answer {out:?}")),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[tokio::main]
async fn main() {
    let args = loadgen::parse_args("bench_client");
    let payload = Bytes::from(vec![b'x'; args.payload]);
    let mut socks = Vec::new();
    for _ in 0..args.conns {
        let config = gotalk::Config::dialling().heartbeat_interval(None);
        let connected = if args.addr.starts_with("ws://") || args.addr.starts_with("wss://") {
            gotalk::ws::connect_with(&args.addr, config).await
        } else {
            gotalk::tcp::connect_with(&args.addr, config).await
        };
        match connected {
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
                    let call = Typed(sock.clone(), Sample::example());
                    loadgen::drive(call, args, payload).await
                } else {
                    loadgen::drive(Raw(sock.clone()), args, payload).await
                };
                sock.close();
                hist
            })
        })
        .collect();
    loadgen::collect("gotalk", &args, tasks, start).await;
}
