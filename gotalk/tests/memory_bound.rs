//! The byte budgets bound what a server allocates, whatever its peers send: hostile
//! patterns run against a server in this process while a counting global allocator
//! tracks the live heap, and its peak must stay within the budget that binds plus a
//! stated constant. (Its own test binary, so nothing else allocates beside it; the cases
//! run one after another.)
//!
//! The patterns: requests whose results are never read, with payloads from 16 B to
//! 4 MiB (and just above a read, and just above 64 KiB); 64 streams a connection fed
//! parts of 1 KiB to 1 MiB whose results are never read; notifications to a slow
//! handler; parked requests; one connection and many.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicIsize, Ordering},
    time::{Duration, Instant},
};

use bytes::Bytes;
use gotalk::{Config, Error, Handlers, Limits, Reply, Request, SharedBudget, StreamRequest};
use tokio::{io::AsyncWriteExt, net::TcpStream, task::JoinSet};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn grew(bytes: isize) {
    let now = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: defers to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grew(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
/// The servers' shared budget.
const SHARED: usize = 64 * MIB;
/// The largest payload the servers take: a connection's own budget is twice this and
/// 1 MiB (9 MiB).
const MAX_PAYLOAD: usize = 4 * MIB;
/// What a server may hold beyond its budgets, whatever the peers do: large read
/// buffers kept for reuse, process-wide (16 MiB), and per connection one read beyond
/// its budget (8 KiB), the write queue's framing buffers (two of 64 KiB), and what an
/// open connection and its task cost (a few KiB).
const PROCESS_CONSTANT: usize = 16 * MIB;
const PER_CONNECTION: usize = 160 * KIB;
/// How long each pattern runs.
const ATTACK: Duration = Duration::from_millis(2500);

/// The handlers the patterns use: `bytes` echoes its payload; `stream-echo` streams its
/// chunks back; `park` keeps its request for 5 s; `ping` (a notification) keeps its
/// payload for 20 ms, one after another.
fn handlers() -> Handlers {
    Handlers::new()
        .handle_raw("bytes", |req: Request| async move {
            Ok::<_, Error>(req.payload)
        })
        .handle_stream("stream-echo", |req: StreamRequest| async move {
            Reply::stream(req.chunks)
        })
        .handle_raw("park", |req: Request| async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<_, Error>(req.payload)
        })
        .handle_notification_raw("ping", |n: gotalk::Notification| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(n.payload);
        })
}

#[derive(Clone, Copy, Debug)]
enum Pattern {
    /// `bytes` requests of this many bytes, results never read.
    Echo(usize),
    /// 64 `stream-echo` streams fed parts of this many bytes in turn, results never read.
    Streams(usize),
    /// `ping` notifications of this many bytes.
    Notify(usize),
    /// 1,100 `park` requests of 30 bytes (more than may run at once).
    Parked,
}

impl Pattern {
    fn payload_size(self) -> usize {
        match self {
            Pattern::Echo(size) | Pattern::Streams(size) | Pattern::Notify(size) => size,
            Pattern::Parked => 30,
        }
    }
}

/// One attacking connection: writes `pattern`'s messages, each with `payload`, until the
/// server stops taking them or `until` passes; never reads.
async fn attack(addr: std::net::SocketAddr, pattern: Pattern, payload: Bytes, until: Instant) {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return;
    };
    let size = payload.len();
    let header = |n: u32| match pattern {
        Pattern::Echo(_) => format!("r{:04x}005bytes{size:08x}", n % 0xffff),
        Pattern::Notify(_) => format!("n004ping{size:08x}"),
        Pattern::Streams(_) if n < 64 => format!("s{n:04x}00bstream-echo{size:08x}"),
        Pattern::Streams(_) => format!("p{:04x}{size:08x}", n % 64),
        Pattern::Parked => format!("r{n:04x}004park{size:08x}"),
    };
    let count = match pattern {
        Pattern::Parked => 1100,
        _ => u32::MAX,
    };
    let _ = stream.write_all(b"01").await;
    for n in 0..count {
        let left = until.saturating_duration_since(Instant::now());
        let write = async {
            stream.write_all(header(n).as_bytes()).await?;
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

/// Runs `pattern` from `conns` connections against a fresh server; returns the live
/// heap's peak growth and how much of it is left 3 s after the attackers leave.
async fn run(pattern: Pattern, conns: usize) -> (usize, isize) {
    let budget = SharedBudget::new(SHARED);
    let config = Config::accepting()
        .handlers(handlers())
        .shared_budget(&budget)
        .limits(Limits::default().max_payload(MAX_PAYLOAD as u32));
    let server = gotalk::Server::new(config)
        .listen_tcp("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr();
    // Shared by the attackers, and made before counting: only the server's memory counts.
    let payload = Bytes::from(vec![b'x'; pattern.payload_size()]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let until = Instant::now() + ATTACK;
    let mut attackers = JoinSet::new();
    for _ in 0..conns {
        attackers.spawn(attack(addr, pattern, payload.clone(), until));
    }
    // A fresh client is served meanwhile.
    tokio::time::sleep(ATTACK / 2).await;
    let probe = tokio::time::timeout(Duration::from_secs(2), async {
        let sock = gotalk::tcp::connect(addr).await?;
        let out = sock
            .request_raw("bytes", Bytes::from_static(b"probe"))
            .await?;
        sock.close();
        Ok::<_, Error>(out)
    })
    .await;
    assert!(
        matches!(&probe, Ok(Ok(out)) if out == "probe"),
        "{pattern:?} × {conns}: a fresh client was not served: {probe:?}"
    );
    while attackers.join_next().await.is_some() {}
    let peak = PEAK.load(Ordering::Relaxed) - before;
    // The peers are gone: connections close, and the large buffers kept for reuse are
    // freed after a second.
    let mut left = isize::MAX;
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = LIVE.load(Ordering::Relaxed) - before;
        if left < MIB as isize {
            break;
        }
    }
    drop(server);
    (peak.max(0) as usize, left)
}

/// The budget that binds `conns` connections: their own budgets together, or the shared
/// one (which each may exceed by 64 KiB, so that a fresh client is served).
fn binding(conns: usize) -> usize {
    let own = 2 * MAX_PAYLOAD + MIB;
    (conns * own).min(SHARED + conns * 64 * KIB)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_heap_stays_within_the_budgets_whatever_peers_send() {
    let cases = [
        (Pattern::Streams(64 * KIB), 1),
        (Pattern::Streams(64 * KIB), 8),
        (Pattern::Streams(KIB), 8),
        (Pattern::Streams(MIB), 8),
        (Pattern::Echo(16), 8),
        (Pattern::Echo(8 * KIB + 1), 8),
        (Pattern::Echo(64 * KIB + 1), 8),
        (Pattern::Echo(4 * MIB), 1),
        (Pattern::Echo(4 * MIB), 8),
        (Pattern::Notify(64 * KIB), 8),
        (Pattern::Parked, 8),
    ];
    let mut failures = Vec::new();
    for (pattern, conns) in cases {
        let (peak, left) = run(pattern, conns).await;
        let bound = binding(conns) + PROCESS_CONSTANT + conns * PER_CONNECTION;
        println!(
            "{pattern:?} × {conns}: peak +{:.1} MiB (bound {:.1} MiB), {:.2} MiB left after",
            peak as f64 / MIB as f64,
            bound as f64 / MIB as f64,
            left as f64 / MIB as f64
        );
        if peak > bound {
            failures.push(format!(
                "{pattern:?} × {conns}: the live heap grew {peak} bytes, past {bound}"
            ));
        }
        if left > MIB as isize {
            failures.push(format!(
                "{pattern:?} × {conns}: {left} bytes still live after the peers left"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
