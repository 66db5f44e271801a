//! Hostile peers against a running server, measured from outside: connections that send
//! large messages and never read what comes back, while a fresh client (on a thread and
//! runtime of its own) asks the server something every 200 ms. Prints the server's
//! resident memory (from /proc) before, at its peak, and 5 s after the attackers leave,
//! the slowest fresh request, and when each one over 250 ms was asked.
//!
//!     cargo run --release --example conformance_peer -- --tcp 127.0.0.1:17801 &
//!     cargo run --release --example hostile_peers -- --addr 127.0.0.1:17801 --pid $!
//!
//! Options: `--attack echo|notify|streams|parked|all` (default all: the first three),
//! `--conns N` per attack (default 1), `--seconds S` of attack (default 10), `--size
//! BYTES` per message (default 4 MiB), `--part-size BYTES` per stream part (default
//! `--size`). The attacks (the server needs `conformance_peer`'s operations):
//! - echo: `bytes` requests, whose echoed results are never read;
//! - notify: `ping` notifications, whose `pong` replies are never read;
//! - streams: 64 `stream-echo` stream requests per connection, fed parts in turn, their
//!   results never read;
//! - parked: 1,100 `sleep` requests of 30 bytes per connection, each sleeping 10 s (more
//!   than the 1,024 that may run at once): a long-poll shape. These connections read
//!   what comes back and count it: the results, and the RetryResults for the requests
//!   over the limit, with when they came.
//!
//! Everything stays on the address given (use 127.0.0.1), and stops by itself.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    task::JoinSet,
};

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
/// `payload`, or `part` for a stream's parts) until the server stops taking them or
/// `until` passes; never reads.
async fn attack(
    addr: SocketAddr,
    kind: &'static str,
    payload: Arc<[u8]>,
    part: Arc<[u8]>,
    until: Instant,
) {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return;
    };
    let (size, part_size) = (payload.len(), part.len());
    let header = |n: u32| match kind {
        "echo" => format!("r{:04x}005bytes{size:08x}", n % 0xffff),
        "notify" => format!("n004ping{size:08x}"),
        // 64 streams opened first (with a part each), then fed a part each in turn.
        _ if n < 64 => format!("s{n:04x}00bstream-echo{part_size:08x}"),
        _ => format!("p{:04x}{part_size:08x}", n % 64),
    };
    let body = |_: u32| match kind {
        "streams" => &part[..],
        _ => &payload[..],
    };
    let _ = stream.write_all(b"01").await;
    let mut n = 0;
    while Instant::now() < until {
        let (header, body) = (header(n), body(n));
        n += 1;
        let left = until.saturating_duration_since(Instant::now());
        let write = async {
            stream.write_all(header.as_bytes()).await?;
            stream.write_all(body).await
        };
        match tokio::time::timeout(left, write).await {
            Ok(Ok(())) => {}
            _ => break,
        }
    }
    // Held open (unread) until the attack ends.
    tokio::time::sleep_until(until.into()).await;
}

/// Requests each parked connection sends, and how long each sleeps.
const PARKED: u32 = 1100;
const PARKED_MS: u64 = 10_000;

/// What one parked connection got back.
#[derive(Default)]
struct Parked {
    results: u32,
    retries: u32,
    /// When the last RetryResult came, since the requests went out.
    last_retry: Duration,
    /// When the first and the last result came.
    first_result: Option<Duration>,
    last_result: Duration,
}

/// One connection of the parked attack: sends `PARKED` `sleep` requests of 30 bytes at
/// once, then reads what comes back until every one is answered (or 2 × their sleep).
async fn park(addr: SocketAddr) -> Parked {
    let mut got = Parked::default();
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return got;
    };
    // 30 bytes of JSON: a sleep of `PARKED_MS` and padding the operation ignores.
    let payload = format!("{{\"ms\":{PARKED_MS},\"pad\":\"xxxxxxxxx\"}}");
    let mut out = b"01".to_vec();
    for n in 0..PARKED {
        out.extend_from_slice(format!("r{n:04x}005sleep{:08x}", payload.len()).as_bytes());
        out.extend_from_slice(payload.as_bytes());
    }
    let sent = Instant::now();
    if stream.write_all(&out).await.is_err() {
        return got;
    }
    let mut buf = bytes::BytesMut::new();
    let mut conversation = gotalk::wire::Conversation::new(1 << 20);
    let deadline = sent + Duration::from_millis(2 * PARKED_MS);
    while got.results + got.retries < PARKED {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read_buf(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => break,
        }
        while let Ok(decoded) = conversation.decode(&mut buf) {
            let gotalk::wire::Decoded::Message(msg) = decoded else {
                continue;
            };
            match msg.message_type() {
                gotalk::wire::MessageType::RetryResult => {
                    got.retries += 1;
                    got.last_retry = sent.elapsed();
                }
                gotalk::wire::MessageType::SingleResult => {
                    got.results += 1;
                    got.first_result.get_or_insert(sent.elapsed());
                    got.last_result = sent.elapsed();
                }
                _ => {}
            }
        }
    }
    got
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
    let mut part_size = None;
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
            "--part-size" => part_size = Some(value.parse()?),
            "--attack" => {
                attacks = match value.as_str() {
                    "all" => attacks,
                    "echo" => vec!["echo"],
                    "notify" => vec!["notify"],
                    "streams" => vec!["streams"],
                    "parked" => vec!["parked"],
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
    let part: Arc<[u8]> = vec![b'x'; part_size.unwrap_or(size)].into();
    let mut attackers = JoinSet::new();
    let mut parked = JoinSet::new();
    for kind in &attacks {
        for _ in 0..conns {
            if *kind == "parked" {
                parked.spawn(park(addr));
            } else {
                attackers.spawn(attack(addr, kind, payload.clone(), part.clone(), until));
            }
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
    let mut answered = Vec::new();
    while let Some(got) = parked.join_next().await {
        answered.extend(got);
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = rss_mib(pid);
    let probed = probe.join().map_err(|_| "the probe panicked")??;
    println!(
        "attack {} × {conns} connection(s), {} B messages, {} B stream parts, {seconds} s",
        attacks.join("+"),
        size,
        part.len()
    );
    if !answered.is_empty() {
        let sum = |f: fn(&Parked) -> u32| answered.iter().map(f).sum::<u32>();
        let latest = |f: fn(&Parked) -> Duration| answered.iter().map(f).max().unwrap_or_default();
        let first = answered
            .iter()
            .filter_map(|p| p.first_result)
            .min()
            .unwrap_or_default();
        println!(
            "parked: {} × {PARKED} sleeps of {PARKED_MS} ms: {} results (from {:.1} s to {:.1} s), {} retries (the last after {} ms)",
            answered.len(),
            sum(|p| p.results),
            first.as_secs_f64(),
            latest(|p| p.last_result).as_secs_f64(),
            sum(|p| p.retries),
            latest(|p| p.last_retry).as_millis()
        );
    }
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
