//! Fan-out through `gotalk::Topics`, measured: a server (this program again, as a child
//! process) with SUBSCRIBERS connections subscribed to one topic publishes PUBLICATIONS
//! notifications to it, INTERVAL_MS apart (0: all at once); the subscribers (in this
//! process) record when each one arrives. Prints deliveries per second (from the first
//! publication to the last delivery) and the delivery latency (publication to arrival,
//! both on this machine's clock).
//!
//!     cargo run --release --example fanout -- [SUBSCRIBERS] [PUBLICATIONS] [INTERVAL_MS]
//!
//! The defaults, 10000 × 20 × 100 ms, measure one publication's fan-out at a time.
//!
//! Across two nodes through Redis (built with `--features redis`): two server processes
//! share their topics through the Redis at URL, the subscribers are split between them,
//! and the publications are made on the first; every one goes through Redis to both.
//!
//!     cargo run --release --example fanout --features redis -- 10000 20 100 --redis redis://127.0.0.1/
//!
//! Each process needs a file descriptor per connection: raise the limit first if it is
//! lower, e.g. `ulimit -n 12000`.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use gotalk::{Config, Error, Handlers, Server, Sock, Topics};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Tick {
    seq: u32,
    /// Microseconds since the Unix epoch when it was published.
    sent_us: u64,
}

#[gotalk::notification]
trait Bench {
    async fn tick(&self, tick: Tick);
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The server half: `subscribe` puts the caller on topic `bench`; `publish` sends it N
/// ticks. Prints its port and runs until killed.
async fn serve(redis: Option<&str>) -> Result<(), Box<dyn std::error::Error>> {
    let topics = match redis {
        None => Topics::new(),
        #[cfg(feature = "redis")]
        Some(url) => Topics::redis(url).await?,
        #[cfg(not(feature = "redis"))]
        Some(_) => return Err("--redis needs the example built with --features redis".into()),
    };
    let mut handlers = Handlers::new();
    let t = topics.clone();
    handlers = handlers.handle_with_sock("subscribe", move |sock: Sock, _: ()| {
        let t = t.clone();
        async move {
            t.subscribe(&sock, "bench");
            Ok::<_, Error>(())
        }
    });
    let t = topics.clone();
    handlers = handlers.handle("publish", move |(count, interval_ms): (u32, u64)| {
        let topic = t.topic("bench");
        async move {
            for seq in 0..count {
                if seq > 0 && interval_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(interval_ms)).await;
                }
                let tick = Tick {
                    seq,
                    sent_us: now_us(),
                };
                BenchNotifier::tick(&topic, tick).await?;
                // Publications come one after another, as a server's events would.
                tokio::task::yield_now().await;
            }
            Ok::<_, Error>(())
        }
    });
    let server = Server::new(Config::accepting().handlers(handlers))
        .listen_tcp("127.0.0.1:0")
        .await?;
    println!("{}", server.local_addr().port());
    std::future::pending::<()>().await;
    Ok(())
}

/// Records every tick a subscriber receives.
struct Record {
    latency: Arc<Mutex<Histogram<u64>>>,
    received: Arc<AtomicU64>,
    last_us: Arc<AtomicU64>,
}

impl Bench for Record {
    async fn tick(&self, tick: Tick) {
        let now = now_us();
        let _ = self
            .latency
            .lock()
            .map(|mut h| h.record(now.saturating_sub(tick.sent_us).max(1)));
        self.received.fetch_add(1, Ordering::Relaxed);
        self.last_us.fetch_max(now, Ordering::Relaxed);
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut redis = None;
    let mut serving = false;
    let mut numbers = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--serve" => serving = true,
            "--redis" => redis = Some(args.next().ok_or("--redis needs a URL")?),
            _ => numbers.push(arg),
        }
    }
    if serving {
        return serve(redis.as_deref()).await;
    }
    let mut numbers = numbers.into_iter();
    let subscribers: usize = numbers.next().map_or(Ok(10_000), |a| a.parse())?;
    let publications: u32 = numbers.next().map_or(Ok(20), |a| a.parse())?;
    let interval_ms: u64 = numbers.next().map_or(Ok(100), |a| a.parse())?;

    // One node, or two sharing Redis.
    let mut nodes = Vec::new();
    let mut addrs = Vec::new();
    for _ in 0..if redis.is_some() { 2 } else { 1 } {
        let mut command = std::process::Command::new(std::env::current_exe()?);
        command.arg("--serve");
        if let Some(url) = &redis {
            command.args(["--redis", url]);
        }
        let mut child = command.stdout(std::process::Stdio::piped()).spawn()?;
        let mut port = String::new();
        if let Some(out) = child.stdout.as_mut() {
            use std::io::BufRead;
            std::io::BufReader::new(out).read_line(&mut port)?;
        }
        addrs.push(format!("127.0.0.1:{}", port.trim()));
        nodes.push(child);
    }

    let latency = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let received = Arc::new(AtomicU64::new(0));
    let last_us = Arc::new(AtomicU64::new(0));
    let handlers = Handlers::new().with(BenchService::new(Record {
        latency: latency.clone(),
        received: received.clone(),
        last_us: last_us.clone(),
    }));
    let config = Config::dialling().handlers(handlers);
    let mut socks = Vec::with_capacity(subscribers);
    for i in 0..subscribers {
        let addr = addrs[i % addrs.len()].as_str();
        match gotalk::tcp::connect_with(addr, config.clone()).await {
            Ok(sock) => {
                sock.request::<_, ()>("subscribe", &()).await?;
                socks.push(sock);
            }
            Err(e) => {
                eprintln!("subscriber {i} failed: {e} (raise the open-file limit: ulimit -n)");
                break;
            }
        }
    }
    let subscribed = socks.len() as u64;
    let expected = subscribed * u64::from(publications);
    let started_us = now_us();
    let started = Instant::now();
    socks[0]
        .request::<_, ()>("publish", &(publications, interval_ms))
        .await?;
    while received.load(Ordering::Relaxed) < expected && started.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let got = received.load(Ordering::Relaxed);
    let took_us = last_us
        .load(Ordering::Relaxed)
        .saturating_sub(started_us)
        .max(1);
    let h = latency.lock().map_err(|_| "histogram poisoned")?;
    let across = if nodes.len() > 1 {
        " (2 nodes through Redis)"
    } else {
        ""
    };
    println!(
        "{subscribed} subscribers{across} × {publications} publications {interval_ms} ms apart: {got} of {expected} \
         delivered in {:.1} ms, {:.0} deliveries/s; latency p50 {} µs, p99 {} µs, max {} µs",
        took_us as f64 / 1000.0,
        got as f64 / (took_us as f64 / 1e6),
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.max()
    );
    for mut node in nodes {
        let _ = node.kill();
    }
    if got < expected {
        return Err(format!("{} deliveries missing", expected - got).into());
    }
    Ok(())
}
