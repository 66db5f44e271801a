//! `gotalk trace`: a transparent proxy that prints every message both ways.

use std::sync::atomic::Ordering;

use crate::{
    addr::{open, Listener, TlsArgs},
    listen::NEXT_CONN,
    log::{now, relay, Log},
    Failure,
};

/// Accepts on `listen_addr`, forwards each connection to `upstream` and logs both ways.
pub async fn trace(listen_addr: &str, upstream: &str, tls: TlsArgs) -> Result<(), Failure> {
    let listener = Listener::bind(listen_addr).await?;
    println!("tracing {} → {upstream}", listener.local_addr());
    loop {
        let (client, peer) = listener.accept().await;
        let (upstream, tls) = (upstream.to_string(), tls.clone());
        tokio::spawn(async move {
            let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
            let server = match open(&upstream, &tls).await {
                Ok(server) => server,
                Err(Failure(_, e)) => {
                    println!("{} #{conn} {peer}: {e}", now());
                    return;
                }
            };
            println!("{} #{conn} {peer} ⇄ {upstream}", now());
            let (client_r, client_w) = tokio::io::split(client);
            let (server_r, server_w) = tokio::io::split(server);
            let up = relay(client_r, server_w, Log::new(format!("#{conn} →")));
            let down = relay(server_r, client_w, Log::new(format!("#{conn} ←")));
            let _ = tokio::join!(up, down);
            println!("{} #{conn} closed", now());
        });
    }
}
