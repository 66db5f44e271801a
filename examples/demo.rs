//! The demo: a Gotalk server and a client talking over TCP on 127.0.0.1, no setup.
//!
//! ```text
//! cargo run --example demo
//! ```
//!
//! One trait per side describes what that side serves; `#[gotalk::service]` turns each
//! into a client the other side calls and a service this side registers. It shows a
//! typed request, an error result, the server calling the client back on the same
//! connection, a notification, a stream request answered with a stream result, and a
//! graceful shutdown. Run with `RUST_LOG=gotalk=trace` to see every message on the wire.

use std::time::Duration;

use futures_util::StreamExt;
use gotalk::{Config, Error, Handlers, Server, Sock, StreamIn, StreamOut};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug)]
pub struct GreetIn {
    pub name: String,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct GreetOut {
    pub greeting: String,
}

/// What the server offers.
#[gotalk::service]
pub trait Greet {
    /// Greets someone by name; an empty name is an error.
    async fn greet(&self, input: GreetIn) -> Result<GreetOut, Error>;
    /// Asks the caller who it is (calling it back), then says so.
    async fn whoami(&self, sock: &Sock) -> Result<String, Error>;
    /// Upper-cases every word streamed to it, streaming the results back.
    async fn shout(&self, words: StreamIn<String>) -> StreamOut<String>;
}

/// What the client offers the server.
#[gotalk::service]
pub trait Identity {
    #[gotalk(name = "your-name")]
    async fn name(&self) -> String;
}

/// What the server may tell the client.
#[gotalk::notification]
pub trait News {
    async fn welcome(&self, text: String);
}

struct Greeter;

impl Greet for Greeter {
    async fn greet(&self, input: GreetIn) -> Result<GreetOut, Error> {
        if input.name.is_empty() {
            return Err(Error::message("a name, please"));
        }
        Ok(GreetOut {
            greeting: format!("Hello {}", input.name),
        })
    }

    async fn whoami(&self, sock: &Sock) -> Result<String, Error> {
        let name = IdentityClient::name(sock).await?;
        NewsNotifier::welcome(sock, format!("welcome back, {name}")).await?;
        Ok(format!("you are {name}, at {}", sock.peer()))
    }

    async fn shout(&self, words: StreamIn<String>) -> StreamOut<String> {
        StreamOut::new(words.map(|word| word.map(|w| w.to_uppercase())))
    }
}

struct Me;

impl Identity for Me {
    async fn name(&self) -> String {
        "Rasmus".into()
    }
}

impl News for Me {
    async fn welcome(&self, text: String) {
        println!("notification from the server: {text}");
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "gotalk=warn".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();

    let server_handlers = Handlers::new().with(GreetService::new(Greeter));
    let server = Server::new(Config::accepting().handlers(server_handlers))
        .listen_tcp("127.0.0.1:0")
        .await?;
    println!("server listening on {}", server.local_addr());

    let client_handlers = Handlers::new()
        .with(IdentityService::new(Me))
        .with(NewsService::new(Me));
    let sock = gotalk::tcp::connect_with(
        server.local_addr(),
        Config::dialling().handlers(client_handlers),
    )
    .await?;

    let out = GreetClient::greet(
        &sock,
        GreetIn {
            name: "Rasmus".into(),
        },
    )
    .await?;
    println!("greet -> {out:?}");

    let err = GreetClient::greet(
        &sock,
        GreetIn {
            name: String::new(),
        },
    )
    .await
    .unwrap_err();
    println!("greet with no name -> error result: {err}");

    let who = GreetClient::whoami(&sock).await?;
    println!("whoami -> {who}");

    let (mut words, mut shouted) = GreetClient::shout(&sock).await?;
    for word in ["hello", "stream", "world"] {
        words.send(&word.to_owned()).await?;
    }
    words.finish().await?;
    let mut all = Vec::new();
    while let Some(word) = shouted.next_value().await {
        all.push(word?);
    }
    println!("shout (stream) -> {}", all.join(" "));

    // Let the notification handler print before we go.
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.shutdown().await;
    println!("connection closed: {}", sock.closed().await);
    Ok(())
}
