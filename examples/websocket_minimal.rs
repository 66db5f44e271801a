//! The smallest web app: an `echo` operation on the server, and a page that loads
//! gotalk.js from the server, connects, and calls it.
//!
//!     cargo run --example websocket_minimal     # then open http://127.0.0.1:1235/

use gotalk::{ws, Config, Error, Handlers};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let handlers =
        Handlers::new().handle("echo", |text: String| async move { Ok::<_, Error>(text) });
    let endpoint = ws::Endpoint::new(Config::accepting().handlers(handlers));
    let page = concat!(env!("CARGO_MANIFEST_DIR"), "/websocket/minimal");
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:1235".into());
    let server = ws::WebServer::bind(addr, endpoint, Some(page.into())).await?;
    println!("open http://{}/", server.local_addr());
    server.wait().await;
    Ok(())
}
