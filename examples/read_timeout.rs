//! The reference's read_timeout example: a server that closes a connection on which
//! nothing arrives for 500 ms, with the timeout protocol error (code 3). The client stays
//! silent (no heartbeats) and is told why it was closed.
//!
//!     cargo run --example read_timeout

use std::time::{Duration, Instant};

use gotalk::{CloseReason, Config, Error, Handlers, Limits, Server};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let limits = Limits::default().read_timeout(Some(Duration::from_millis(500)));
    let server = Server::new(Config::accepting().handlers(Handlers::new()).limits(limits))
        .listen_tcp("127.0.0.1:0")
        .await?;
    // The dialling side sends heartbeats by default (every 20 s); this client does not.
    let client = gotalk::tcp::connect_with(
        server.local_addr(),
        Config::dialling().heartbeat_interval(None),
    )
    .await?;
    let started = Instant::now();
    let reason = client.closed().await;
    println!(
        "closed after {:.1} s: {reason}",
        started.elapsed().as_secs_f32()
    );
    match reason {
        CloseReason::ProtocolError { code, .. } => println!("protocol error code {}", code.0),
        other => println!("unexpected: {other:?}"),
    }
    Ok(())
}
