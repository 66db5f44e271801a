//! A bounded load test: a server (this program again, as a child process) and CONNS
//! client connections to it, every connection doing requests one after another for
//! SECONDS, each with its own payload, checking that every request gets exactly its own
//! answer. Prints the totals and the server's memory (resident set).
//!
//!     cargo run --release --example soak -- [CONNS] [SECONDS]     # default 10000 × 30
//!
//! Each process needs a file descriptor per connection: raise the limit first if it is
//! lower, e.g. `ulimit -n 12000`.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use gotalk::{Config, Error, Handlers, Request, Server};

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The server half: serves the echo on a free port, prints the port, runs until killed.
async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    let handlers = Handlers::new().handle_raw("bytes", |req: Request| async move {
        Ok::<_, Error>(req.payload)
    });
    let server = Server::new(Config::accepting().handlers(handlers))
        .listen_tcp("127.0.0.1:0")
        .await?;
    println!("{}", server.local_addr().port());
    std::future::pending::<()>().await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("--serve") {
        return serve().await;
    }
    let conns: usize = args.next().map_or(Ok(10_000), |a| a.parse())?;
    let seconds: u64 = args.next().map_or(Ok(30), |a| a.parse())?;

    let mut child = std::process::Command::new(std::env::current_exe()?)
        .arg("--serve")
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut port = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().ok_or("no stdout")?),
        &mut port,
    )?;
    let addr = format!("127.0.0.1:{}", port.trim());
    let server = child.id();
    let result = run(&addr, server, conns, seconds).await;
    let _ = child.kill();
    let _ = child.wait();
    result
}

async fn run(
    addr: &str,
    server: u32,
    conns: usize,
    seconds: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let rss_start = rss_kib(server);

    let mut clients = Vec::with_capacity(conns);
    for i in 0..conns {
        match gotalk::tcp::connect(addr).await {
            Ok(sock) => clients.push(sock),
            Err(e) => {
                eprintln!("connection {i} failed: {e} (raise the open-file limit: ulimit -n)");
                return Err(e.into());
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_open = rss_kib(server);
    println!(
        "{conns} connections open: server RSS {:.1} MiB → {:.1} MiB",
        rss_start as f64 / 1024.0,
        rss_open as f64 / 1024.0
    );

    let answered = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(i, sock)| {
            let (sock, answered, failed) = (sock.clone(), answered.clone(), failed.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let payload = Bytes::from(format!("{i}:{n}"));
                    match sock.request_raw("bytes", payload.clone()).await {
                        Ok(out) if out == payload => answered.fetch_add(1, Ordering::Relaxed),
                        Ok(out) => panic!("connection {i} request {n} got {out:?}"),
                        Err(e) => {
                            eprintln!("connection {i} request {n}: {e}");
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                    n += 1;
                }
                n
            })
        })
        .collect();
    let started = Instant::now();
    let mut sent = 0;
    for task in tasks {
        sent += task.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (answered, failed) = (
        answered.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    );
    println!(
        "{sent} requests in {elapsed:.1} s ({:.0}/s) over {conns} connections: {answered} answered correctly, {failed} failed; server RSS {:.1} MiB",
        sent as f64 / elapsed,
        rss_kib(server) as f64 / 1024.0
    );
    if failed > 0 || answered != sent {
        return Err("requests were lost".into());
    }
    Ok(())
}
