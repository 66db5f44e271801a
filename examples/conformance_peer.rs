//! A Gotalk peer serving the operations of the conformance transcripts, for replaying
//! them and for pointing any Gotalk client at:
//!
//! ```text
//! cargo run --release --example conformance_peer -- --tcp 127.0.0.1:1234 --limited 127.0.0.1:1235
//! ```
//!
//! `--tcp` serves echo, greet, fail, bytes, sleep, stream-echo, notify-me and call-back
//! with the default limits; `--limited` serves the same with one single request at a time
//! (retry wait 100 to 200 ms) and no stream requests. `--unix PATH` serves the default set
//! on a Unix socket. `--ws ADDR` serves the default set over WebSocket at
//! `http://ADDR/gotalk/` (our gotalk.js at `/gotalk/gotalk.js`, the default origin
//! policy), with `--files DIR` served at `/` beside it. Set `RUST_LOG=gotalk=trace` to see
//! every message.

#[path = "bench_ops.rs"]
mod bench_ops;
#[path = "conformance_ops.rs"]
mod conformance_ops;

use gotalk::{Config, Server};

const USAGE: &str =
    "usage: conformance_peer [--tcp ADDR] [--limited ADDR] [--unix PATH] [--ws ADDR [--files DIR]] [--tls ADDR --cert PEM --key PEM] [--middleware noop|observe]";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "gotalk=info".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let mut tcp = None;
    let mut limited = None;
    let mut unix = None;
    let mut ws = None;
    let mut files = None;
    let mut tls = None;
    let mut cert = None;
    let mut key = None;
    // For the benchmarks: what middleware costs (`--middleware noop`: one that only runs
    // the handler; `--middleware observe`: `observe::requests()` and `Config::observe`,
    // recording into no recorder unless one is installed).
    let mut middleware = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let slot = match flag.as_str() {
            "--middleware" => &mut middleware,
            "--tcp" => &mut tcp,
            "--limited" => &mut limited,
            "--unix" => &mut unix,
            "--ws" => &mut ws,
            "--files" => &mut files,
            "--tls" => &mut tls,
            "--cert" => &mut cert,
            "--key" => &mut key,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}").into()),
        };
        *slot = Some(
            args.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?,
        );
    }
    if tcp.is_none() && limited.is_none() && unix.is_none() && ws.is_none() && tls.is_none() {
        tcp = Some("127.0.0.1:1234".to_owned());
    }
    // The conformance operations, and the benchmarks' typed one.
    let mut handlers =
        conformance_ops::handlers().with(bench_ops::BenchService::new(bench_ops::Bencher));
    let mut config = Config::accepting();
    match middleware.as_deref() {
        None => {}
        Some("noop") => {
            handlers = handlers.wrap(|_, next: gotalk::middleware::Next| next.run());
        }
        Some("observe") => {
            handlers = handlers.wrap(gotalk::observe::requests());
            config = config.observe();
        }
        Some(other) => return Err(format!("unknown middleware {other:?}\n{USAGE}").into()),
    }
    let config = config.handlers(handlers);
    let mut servers = Vec::new();
    if let Some(addr) = tcp {
        let server = Server::new(config.clone()).listen_tcp(&addr).await?;
        println!("conformance peer: tcp {}", server.local_addr());
        servers.push(server);
    }
    if let Some(addr) = limited {
        let limited_config = config.clone().limits(conformance_ops::limited());
        let server = Server::new(limited_config).listen_tcp(&addr).await?;
        println!("conformance peer: limited tcp {}", server.local_addr());
        servers.push(server);
    }
    let _tls = match tls {
        Some(addr) => {
            let (cert, key) = match (cert, key) {
                (Some(cert), Some(key)) => (cert, key),
                _ => return Err(format!("--tls needs --cert and --key\n{USAGE}").into()),
            };
            if !std::path::Path::new(&cert).exists() || !std::path::Path::new(&key).exists() {
                let made = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
                std::fs::write(&cert, made.cert.pem())?;
                std::fs::write(&key, made.signing_key.serialize_pem())?;
            }
            let certs = gotalk::tls::server_config(&cert, &key)?;
            let server = Server::new(config.clone()).listen_tls(&addr, certs).await?;
            println!("conformance peer: tls {}", server.local_addr());
            Some(server)
        }
        None => None,
    };
    let _web = match ws {
        Some(addr) => {
            let endpoint = gotalk::ws::Endpoint::new(config.clone());
            let server =
                gotalk::ws::WebServer::bind(&addr, endpoint, files.map(Into::into)).await?;
            println!("conformance peer: ws://{}/gotalk/", server.local_addr());
            Some(server)
        }
        None => None,
    };
    #[cfg(unix)]
    let _unix = match unix {
        Some(path) => {
            let _ = std::fs::remove_file(&path);
            let server = Server::new(config.clone()).listen_unix(&path).await?;
            println!("conformance peer: unix {path}");
            Some(server)
        }
        None => None,
    };
    tokio::signal::ctrl_c().await?;
    println!("shutting down");
    for server in &servers {
        server.shutdown().await;
    }
    Ok(())
}
