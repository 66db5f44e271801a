//! Hostile peers against a running server, measured from outside: connections that send
//! large messages and never read what comes back, while a fresh client (on a thread and
//! runtime of its own) asks the server something every 200 ms. Prints the server's
//! resident memory (from /proc) before, at its peak, and 5 s after the attackers leave,
//! the slowest fresh request, and when each one over 250 ms was asked.
//!
//!     cargo run --release --example conformance_peer -- --tcp 127.0.0.1:17801 &
//!     cargo run --release --example hostile_peers -- --addr 127.0.0.1:17801 --pid $!
//!
//! Options: `--attack echo|notify|streams|parked|unknown|refused|describe|stream-results|pings|all`
//! (default all: the first three), `--conns N` per attack (default 1), `--seconds S` of
//! attack (default 10), `--size BYTES` per message (default 4 MiB), `--part-size BYTES`
//! per stream part (default `--size`), `--batch BYTES`: pack the messages into writes of
//! this size instead of writing them one at a time, `--ws PATH`: attack (and probe)
//! through the server's WebSocket endpoint at PATH (e.g. `/gotalk/`), in frames of 4 KiB.
//! The attacks (the server needs `conformance_peer`'s operations):
//! - echo: `bytes` requests, whose echoed results are never read;
//! - notify: `ping` notifications, whose `pong` replies are never read;
//! - streams: 64 `stream-echo` stream requests per connection, fed parts in turn, their
//!   results never read;
//! - parked: 1,100 `sleep` requests of 30 bytes per connection, each sleeping 10 s (more
//!   than the 1,024 that may run at once): a long-poll shape. These connections read
//!   what comes back and count it: the results, and the RetryResults for the requests
//!   over the limit, with when they came;
//! - unknown: requests for an operation the server does not have (an ErrorResult each);
//! - refused: `sleep` requests of 10 s, past the 1,024 that may run at once (a
//!   RetryResult each);
//! - describe: `gotalk:describe` requests (the server must describe itself, as
//!   `typed_browser` does; a few KiB each);
//! - stream-results: `shapes.count 1000` requests, each answered with a stream of 1,000
//!   results (`typed_browser` has the operation);
//! - pings: WebSocket pings of 125 bytes (with `--ws`), pongs never read.
//!
//! The packed attacks (`--batch`, and the last five) write with a 4 KiB receive window,
//! as an attacker would ask for: what the server writes then stays in its memory.
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

/// One message of a packed attack, `n` its request's number.
fn packed_message(kind: &str, n: u32, payload: &[u8]) -> Vec<u8> {
    let request = |op: &str, payload: &[u8]| {
        let header = format!(
            "r{:04x}{:03x}{op}{:08x}",
            n % 0xffff,
            op.len(),
            payload.len()
        );
        [header.as_bytes(), payload].concat()
    };
    match kind {
        "echo" => request("bytes", payload),
        "unknown" => request("nobody-serves-this", b"{}"),
        "refused" => request("sleep", br#"{"ms":10000}"#),
        "describe" => request("gotalk:describe", b""),
        "stream-results" => request("shapes.count", b"1000"),
        _ => [format!("n004ping{:08x}", payload.len()).as_bytes(), payload].concat(),
    }
}

/// A WebSocket frame from a client, final, masked with the key 0 (its payload is sent as
/// it is).
fn ws_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len @ 126..=0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&[0; 4]);
    frame.extend_from_slice(payload);
    frame
}

/// What a packed attack writes again and again: `batch` bytes of `kind`'s messages, in
/// WebSocket frames of 4 KiB if `ws`.
fn packed_batch(kind: &str, payload: &[u8], batch: usize, ws: bool) -> Vec<u8> {
    if kind == "pings" {
        let ping = ws_frame(0x9, &[b'p'; 125]);
        return ping.repeat(batch.div_ceil(ping.len()));
    }
    let mut gotalk = Vec::with_capacity(batch + payload.len() + 64);
    let mut n = 0;
    while gotalk.len() < batch {
        gotalk.extend_from_slice(&packed_message(kind, n, payload));
        n += 1;
    }
    if !ws {
        return gotalk;
    }
    gotalk.chunks(4096).flat_map(|c| ws_frame(0x2, c)).collect()
}

/// Opens a packed attack's connection: with a 4 KiB receive window, and through the
/// WebSocket handshake if `ws` names a path.
async fn open(addr: SocketAddr, ws: Option<&str>) -> std::io::Result<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(4096)?;
    let mut stream = socket.connect(addr).await?;
    let Some(path) = ws else {
        stream.write_all(b"01").await?;
        return Ok(stream);
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\n\
         Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    while !response.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        if stream.read(&mut byte).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        response.push(byte[0]);
    }
    if !response.starts_with(b"HTTP/1.1 101") {
        let text = String::from_utf8_lossy(&response).into_owned();
        return Err(std::io::Error::other(format!("no upgrade: {text:?}")));
    }
    stream.write_all(&ws_frame(0x2, b"01")).await?;
    Ok(stream)
}

/// One connection of a packed attack: writes `batch` again and again until the server
/// stops taking it or `until` passes; never reads.
async fn pipeline(addr: SocketAddr, ws: Option<Arc<str>>, batch: Arc<[u8]>, until: Instant) {
    let Ok(mut stream) = open(addr, ws.as_deref()).await else {
        return;
    };
    while Instant::now() < until {
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.write_all(&batch)).await {
            Ok(Ok(())) => {}
            _ => break,
        }
    }
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
async fn probe(
    addr: SocketAddr,
    ws: Option<Arc<str>>,
    pid: u32,
    before: f64,
    until: Instant,
) -> Probed {
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
            let sock = match &ws {
                Some(path) => gotalk::ws::connect(&format!("ws://{addr}{path}")).await?,
                None => gotalk::tcp::connect(addr).await?,
            };
            // `greet` as both conformance_peer and typed_browser have it.
            let out: serde_json::Value = sock
                .request(
                    "greet",
                    &serde_json::json!({"name": "probe", "firstName": "probe"}),
                )
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
    let (mut batch, mut ws) = (None::<usize>, None::<Arc<str>>);
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
            "--batch" => batch = Some(value.parse()?),
            "--ws" => ws = Some(value.into()),
            "--attack" => {
                attacks = match value.as_str() {
                    "all" => attacks,
                    "echo" => vec!["echo"],
                    "notify" => vec!["notify"],
                    "streams" => vec!["streams"],
                    "parked" => vec!["parked"],
                    "unknown" => vec!["unknown"],
                    "refused" => vec!["refused"],
                    "describe" => vec!["describe"],
                    "stream-results" => vec!["stream-results"],
                    "pings" => vec!["pings"],
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
        let packed = batch.is_some()
            || ["unknown", "refused", "describe", "stream-results", "pings"].contains(kind);
        if *kind == "pings" && ws.is_none() {
            return Err("the pings attack needs --ws PATH".into());
        }
        if (!packed && ws.is_some()) || *kind == "parked" && ws.is_some() {
            return Err(format!("the {kind} attack runs over TCP, one message a write").into());
        }
        let batch: Arc<[u8]> =
            packed_batch(kind, &payload, batch.unwrap_or(64 * 1024), ws.is_some()).into();
        for _ in 0..conns {
            if *kind == "parked" {
                parked.spawn(park(addr));
            } else if packed {
                attackers.spawn(pipeline(addr, ws.clone(), batch.clone(), until));
            } else {
                attackers.spawn(attack(addr, kind, payload.clone(), part.clone(), until));
            }
        }
    }
    // The fresh client runs on a thread and runtime of its own, so that what it measures
    // is the server, not this process's attackers.
    let probe_ws = ws.clone();
    let probe = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|rt| rt.block_on(probe(addr, probe_ws, pid, before, until)))
    });
    while attackers.join_next().await.is_some() {}
    let mut answered = Vec::new();
    while let Some(got) = parked.join_next().await {
        answered.extend(got);
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = rss_mib(pid);
    let probed = probe.join().map_err(|_| "the probe panicked")??;
    // Only these attacks carry `--size` and `--part-size`.
    let sized = attacks
        .iter()
        .any(|a| ["echo", "notify", "streams"].contains(a));
    let sizes = match sized {
        true => format!(", {size} B messages, {} B stream parts", part.len()),
        false => String::new(),
    };
    println!(
        "attack {} × {conns} connection(s), {seconds} s{sizes}{}{}",
        attacks.join("+"),
        batch.map_or(String::new(), |b| format!(", packed in writes of {b} B")),
        ws.as_ref()
            .map_or(String::new(), |p| format!(", over WebSocket {p}"))
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
