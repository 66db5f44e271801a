//! The reference's greet example in Rust: a server that answers the operation `greet`
//! and a client that calls it, over TCP on 127.0.0.1.
//!
//! ```text
//! cargo run --example greet            # server and client in one process
//! cargo run --example greet -- server  # just the server, on 127.0.0.1:1234
//! cargo run --example greet -- client  # just the client, against 127.0.0.1:1234
//! ```

use gotalk::{Error, Handlers};
use serde::{Deserialize, Serialize};

/// Expected input (request parameters) of the `greet` operation.
#[derive(Serialize, Deserialize, Debug)]
pub struct GreetIn {
    pub name: String,
}

/// The result of the `greet` operation.
#[derive(Serialize, Deserialize, Debug)]
pub struct GreetOut {
    pub greeting: String,
}

/// One trait is both sides' contract: the server implements it, the client calls it.
#[gotalk::service]
pub trait Greet {
    async fn greet(&self, input: GreetIn) -> Result<GreetOut, Error>;
}

struct Greeter;

impl Greet for Greeter {
    async fn greet(&self, input: GreetIn) -> Result<GreetOut, Error> {
        Ok(GreetOut {
            greeting: format!("Hello {}", input.name),
        })
    }
}

const ADDR: &str = "127.0.0.1:1234";

async fn server(addr: &str) -> Result<gotalk::Listening<std::net::SocketAddr>, Error> {
    let handlers = Handlers::new().with(GreetService::new(Greeter));
    gotalk::Server::new(gotalk::Config::accepting().handlers(handlers))
        .listen_tcp(addr)
        .await
}

async fn client(addr: impl tokio::net::ToSocketAddrs) -> Result<(), Error> {
    let sock = gotalk::tcp::connect(addr).await?;
    let greeting = GreetClient::greet(
        &sock,
        GreetIn {
            name: "Rasmus".into(),
        },
    )
    .await?;
    println!("greeting: {greeting:?}");
    sock.close();
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    match std::env::args().nth(1).as_deref() {
        Some("server") => {
            let server = server(ADDR).await?;
            println!("listening on {}", server.local_addr());
            server.wait().await;
        }
        Some("client") => client(ADDR).await?,
        _ => {
            let server = server("127.0.0.1:0").await?;
            client(server.local_addr()).await?;
            server.shutdown().await;
        }
    }
    Ok(())
}
