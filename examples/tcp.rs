//! The reference's tcp example: a server and a client over TCP on 127.0.0.1, both
//! serving operations the other calls, with a typed request, a raw (bytes) request and a
//! notification.
//!
//!     cargo run --example tcp

use gotalk::{Config, Error, Handlers, Server};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug)]
pub struct GreetIn {
    pub name: String,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct GreetOut {
    pub greeting: String,
}

/// What the server serves.
#[gotalk::service]
pub trait Greeter {
    async fn greet(&self, input: GreetIn) -> Result<GreetOut, Error>;
}

struct Server1;

impl Greeter for Server1 {
    async fn greet(&self, input: GreetIn) -> Result<GreetOut, Error> {
        Ok(GreetOut {
            greeting: format!("Hello {}", input.name),
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let handlers = Handlers::new()
        .with(GreeterService::new(Server1))
        // Without the macro: a raw operation and a notification handler.
        .handle_raw("echo", |req: gotalk::Request| async move {
            Ok::<_, Error>(req.payload)
        })
        .handle_notification("news", |text: String| async move {
            println!("server got notification: {text}");
        });
    let server = Server::new(Config::accepting().handlers(handlers))
        .listen_tcp("127.0.0.1:0")
        .await?;
    println!("listening on {}", server.local_addr());

    let sock = gotalk::tcp::connect(server.local_addr()).await?;
    let out = GreeterClient::greet(
        &sock,
        GreetIn {
            name: "Rasmus".into(),
        },
    )
    .await?;
    println!("greet: {out:?}");
    let echoed = sock.request_raw("echo", "raw bytes").await?;
    println!("echo: {}", String::from_utf8_lossy(&echoed));
    sock.notify("news", "the client was here").await?;
    sock.shutdown().await;
    server.shutdown().await;
    Ok(())
}
