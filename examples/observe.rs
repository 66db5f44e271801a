//! Metrics and traces of a gotalk server, exported in Prometheus's text format.
//!
//! The service's handlers are wrapped in `observe::requests()` and its connections keep
//! their own metrics (`Config::observe`); `metrics-exporter-prometheus` renders them on
//! `GET /metrics`, served beside the gotalk server.
//!
//! ```text
//! cargo run --example observe                    # server, a few calls, then its /metrics
//! cargo run --example observe -- --serve 127.0.0.1:1234 127.0.0.1:9000
//!                                                # stay up: gotalk on :1234, metrics on :9000
//! gotalk call 127.0.0.1:1234 get '"answer"'      # (the gotalk tool: --features cli)
//! curl http://127.0.0.1:9000/metrics
//! ```

use std::{collections::HashMap, net::SocketAddr, sync::Mutex};

use gotalk::{
    axum::{routing::get, Router},
    observe, CallError, Config, Handlers, Listening, Server,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Serialize, Deserialize, Debug)]
pub enum KvError {
    NotFound { key: String },
}

impl std::fmt::Display for KvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KvError::NotFound { key } => write!(f, "key not found: {key}"),
        }
    }
}

#[gotalk::service]
pub trait Kv {
    async fn get(&self, key: String) -> Result<String, KvError>;
    async fn put(&self, entry: (String, String));
}

#[derive(Default)]
struct Store(Mutex<HashMap<String, String>>);

impl Kv for Store {
    async fn get(&self, key: String) -> Result<String, KvError> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&key).cloned().ok_or(KvError::NotFound { key })
    }
    async fn put(&self, (key, value): (String, String)) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, value);
    }
}

/// The gotalk server, with every request observed, and `/metrics`.
async fn serve(
    gotalk_addr: &str,
    metrics_addr: &str,
    prometheus: PrometheusHandle,
) -> Result<(Listening<SocketAddr>, SocketAddr, SocketAddr), Box<dyn std::error::Error>> {
    let store = Store::default();
    store
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert("answer".into(), "42".into());
    let handlers = Handlers::new()
        .with(KvService::new(store))
        .wrap(observe::requests());
    let server = Server::new(Config::accepting().handlers(handlers).observe())
        .listen_tcp(gotalk_addr)
        .await?;
    let gotalk = server.local_addr();

    let app = Router::new().route(
        "/metrics",
        get(move || std::future::ready(prometheus.render())),
    );
    let listener = tokio::net::TcpListener::bind(metrics_addr).await?;
    let metrics = listener.local_addr()?;
    tokio::spawn(async move { gotalk::axum::serve(listener, app).await });
    Ok((server, gotalk, metrics))
}

/// `GET /metrics`, over a plain TCP connection (no HTTP client needed for one request).
async fn scrape(addr: SocketAddr) -> std::io::Result<String> {
    let mut conn = tokio::net::TcpStream::connect(addr).await?;
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: metrics\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = String::new();
    conn.read_to_string(&mut response).await?;
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // The span of each request (`gotalk.request`) is at DEBUG.
                .unwrap_or_else(|_| "gotalk=info,gotalk::observe=debug".into()),
        )
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .init();
    // Installed before the first request: each operation's metrics are registered then.
    // Latencies as Prometheus histograms, from 50 µs to 5 s.
    let buckets = [
        0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
        1.0, 2.5, 5.0,
    ];
    let prometheus = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_duration_seconds".into()), &buckets)?
        .install_recorder()?;

    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, gotalk_addr, metrics_addr] = args.as_slice() {
        if flag == "--serve" {
            let (server, gotalk, metrics) = serve(gotalk_addr, metrics_addr, prometheus).await?;
            println!("gotalk on {gotalk}, metrics on http://{metrics}/metrics");
            tokio::signal::ctrl_c().await?;
            server.shutdown().await;
            return Ok(());
        }
    }

    let (server, gotalk, metrics) = serve("127.0.0.1:0", "127.0.0.1:0", prometheus).await?;
    let sock = gotalk::tcp::connect(gotalk).await?;
    KvClient::put(&sock, ("greeting".into(), "hello".into())).await?;
    println!(
        "get answer: {}",
        KvClient::get(&sock, "answer".into()).await?
    );
    match KvClient::get(&sock, "missing".into()).await {
        Err(CallError::Remote(KvError::NotFound { key })) => println!("get {key}: not found"),
        other => println!("get missing: {other:?}"),
    }
    sock.close();

    let response = scrape(metrics).await?;
    println!("\nGET http://{metrics}/metrics (the gotalk_ series that are not 0):");
    let mut lines: Vec<&str> = response
        .lines()
        .filter(|l| l.starts_with("gotalk_") && !l.ends_with(" 0") && !l.contains("_bucket"))
        .collect();
    lines.sort_unstable();
    for line in lines {
        println!("  {line}");
    }
    server.shutdown().await;
    Ok(())
}
