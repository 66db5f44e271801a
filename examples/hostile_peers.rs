//! Hostile peers against a running server, measured from outside: connections that send
//! large messages and never read what comes back, while a fresh client (on a thread and
//! runtime of its own) asks the server something every 200 ms. Prints the server's
//! resident memory (from /proc) before, at its peak, and 5 s after the attackers leave,
//! the slowest fresh request, and when each one over 250 ms was asked.
//!
//!     cargo run --release --example conformance_peer -- --tcp 127.0.0.1:17801 &
//!     cargo run --release --example hostile_peers -- --addr 127.0.0.1:17801 --pid $!
//!
//! Options: `--attack echo|notify|streams|all` (default all), `--conns N` per attack
//! (default 1), `--seconds S` of attack (default 10), `--size BYTES` per message (default
//! 4 MiB). The attacks (the server needs `conformance_peer`'s operations):
//! - echo: `bytes` requests, whose echoed results are never read;
//! - notify: `ping` notifications, whose `pong` replies are never read;
//! - streams: 64 `stream-echo` stream requests per connection, fed in turn, their
//!   results never read.
//!
//! Everything stays on the address given (use 127.0.0.1), and stops by itself.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{io::AsyncWriteExt, net::TcpStream, task::JoinSet};

fn rss_mib(pid: u32) -> f64 {
    let kib: u64 = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0);
    kib as f64 / 1024.0
}

/// One attacking connection: writes `kind`'s messages (each a header and the shared
/// `payload`) until the server stops taking them or `until` passes; never reads.
async fn attack(addr: SocketAddr, kind: &'static str, payload: Arc<[u8]>, until: Instant) {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return;
    };
    let size = payload.len();
    let header = |n: u32| match kind {
        "echo" => format!("r{:04x}005bytes{size:08x}", n % 0xffff),
        "notify" => format!("n004ping{size:08x}"),
        // 64 streams opened first, then fed a part each in turn.
        _ if n < 64 => format!("s{n:04x}00bstream-echo{size:08x}"),
        _ => format!("p{:04x}{size:08x}", n % 64),
    };
    let _ = stream.write_all(b"01").await;
    let mut n = 0;
    while Instant::now() < until {
        let header = header(n);
        n += 1;
        let left = until.saturating_duration_since(Instant::now());
        let write = async {
            stream.write_all(header.as_bytes()).await?;
            stream.write_all(&payload).await
        };
        match tokio::time::timeout(left, write).await {
            Ok(Ok(())) => {}
            _ => break,
        }
    }
    // Held open (unread) until the attack ends.
    tokio::time::sleep_until(until.into()).await;
}

/// What the fresh clients saw, and the server's peak memory meanwhile.
struct Probed {
    peak: f64,
    slowest: Duration,
    probes: u32,
    failed: u32,
    /// Answers that took over 250 ms: when asked (since the attack began), how long.
    slow: Vec<(Duration, Duration)>,
}

/// A fresh client every 200 ms (connect, one request, close) until `until`, and the
/// server's memory as it goes.
async fn probe(addr: SocketAddr, pid: u32, before: f64, until: Instant) -> Probed {
    let began = Instant::now();
    let mut probed = Probed {
        peak: before,
        slowest: Duration::ZERO,
        probes: 0,
        failed: 0,
        slow: Vec::new(),
    };
    while Instant::now() < until {
        let started = Instant::now();
        let answered = tokio::time::timeout(Duration::from_secs(5), async {
            let sock = gotalk::tcp::connect(addr).await?;
            let out: serde_json::Value = sock
                .request("greet", &serde_json::json!({"name": "probe"}))
                .await?;
            sock.close();
            Ok::<_, gotalk::Error>(out)
        })
        .await;
        let took = started.elapsed();
        probed.probes += 1;
        match answered {
            Ok(Ok(_)) => probed.slowest = probed.slowest.max(took),
            _ => probed.failed += 1,
        }
        if took > Duration::from_millis(250) {
            probed.slow.push((started - began, took));
        }
        probed.peak = probed.peak.max(rss_mib(pid));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    probed
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr: Option<SocketAddr> = None;
    let (mut pid, mut conns, mut seconds, mut size) = (0u32, 1usize, 10u64, 4usize << 20);
    let mut attacks = vec!["echo", "notify", "streams"];
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--addr" => addr = Some(value.parse()?),
            "--pid" => pid = value.parse()?,
            "--conns" => conns = value.parse()?,
            "--seconds" => seconds = value.parse()?,
            "--size" => size = value.parse()?,
            "--attack" => {
                attacks = match value.as_str() {
                    "all" => attacks,
                    "echo" => vec!["echo"],
                    "notify" => vec!["notify"],
                    "streams" => vec!["streams"],
                    other => return Err(format!("unknown attack {other}").into()),
                }
            }
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    let addr = addr.ok_or("--addr is needed")?;
    let before = rss_mib(pid);
    let until = Instant::now() + Duration::from_secs(seconds);
    let payload: Arc<[u8]> = vec![b'x'; size].into();
    let mut attackers = JoinSet::new();
    for kind in &attacks {
        for _ in 0..conns {
            attackers.spawn(attack(addr, kind, payload.clone(), until));
        }
    }
    // The fresh client runs on a thread and runtime of its own, so that what it measures
    // is the server, not this process's attackers.
    let probe = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|rt| rt.block_on(probe(addr, pid, before, until)))
    });
    while attackers.join_next().await.is_some() {}
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = rss_mib(pid);
    let probed = probe.join().map_err(|_| "the probe panicked")??;
    println!(
        "attack {} × {conns} connection(s), {} B messages, {seconds} s",
        attacks.join("+"),
        size
    );
    println!(
        "server RSS: before {before:.1} MiB, peak {:.1} MiB (+{:.1}), 5 s after {after:.1} MiB",
        probed.peak,
        probed.peak - before
    );
    println!(
        "fresh clients: {} probes, {} failed, slowest answered in {} ms",
        probed.probes,
        probed.failed,
        probed.slowest.as_millis()
    );
    for (at, took) in &probed.slow {
        println!(
            "  slow: asked at {:.1} s, answered in {} ms",
            at.as_secs_f64(),
            took.as_millis()
        );
    }
    Ok(())
}
