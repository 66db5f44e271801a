//! The demo: a Gotalk server and a client talking over TCP on 127.0.0.1, no setup.
//!
//! ```text
//! cargo run --example demo
//! ```
//!
//! It shows a typed request, an error result, the server calling the client back on the
//! same connection, a notification, a stream request with a stream result, and a
//! graceful shutdown. Run with `RUST_LOG=gotalk=trace` to see every message on the wire.

use std::time::Duration;

use futures_util::StreamExt;
use gotalk::{Config, Error, Handlers, Reply, Server, Sock, StreamRequest};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug)]
struct GreetIn {
    name: String,
}

#[derive(Serialize, Deserialize, Debug)]
struct GreetOut {
    greeting: String,
}

fn server_handlers() -> Handlers {
    let mut h = Handlers::new();
    h.handle("greet", |input: GreetIn| async move {
        if input.name.is_empty() {
            return Err(Error::message("a name, please"));
        }
        Ok(GreetOut {
            greeting: format!("Hello {}", input.name),
        })
    })
    // The server asks the client something while answering the client's request.
    .handle_with_sock("whoami", |sock: Sock, _: ()| async move {
        let name: String = sock.request("your-name", &()).await?;
        sock.notify("welcome", &format!("welcome back, {name}"))
            .await?;
        Ok::<_, Error>(format!("you are {name}, at {}", sock.peer()))
    })
    // Every chunk of the request comes back upper-cased, as a stream of results.
    .handle_stream("shout", |req: StreamRequest| async move {
        Reply::stream(
            req.chunks
                .map(|chunk| chunk.map(|c| c.to_ascii_uppercase().into())),
        )
    });
    h
}

fn client_handlers() -> Handlers {
    let mut h = Handlers::new();
    h.handle("your-name", |_: ()| async move { Ok::<_, Error>("Rasmus") })
        .handle_notification("welcome", |text: String| async move {
            println!("notification from the server: {text}");
        });
    h
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

    let server = Server::new(Config::accepting().handlers(server_handlers()))
        .listen_tcp("127.0.0.1:0")
        .await?;
    println!("server listening on {}", server.local_addr());

    let sock = gotalk::tcp::connect_with(
        server.local_addr(),
        Config::dialling().handlers(client_handlers()),
    )
    .await?;

    let out: GreetOut = sock
        .request(
            "greet",
            &GreetIn {
                name: "Rasmus".into(),
            },
        )
        .await?;
    println!("greet -> {out:?}");

    let err = sock
        .request::<_, GreetOut>(
            "greet",
            &GreetIn {
                name: String::new(),
            },
        )
        .await
        .unwrap_err();
    println!("greet with no name -> error result: {err}");

    let who: String = sock.request("whoami", &()).await?;
    println!("whoami -> {who}");

    let (mut words, mut results) = sock.stream_request("shout", "hello ").await?;
    words.send("stream ").await?;
    words.send("world").await?;
    words.finish().await?;
    let mut shouted = String::new();
    while let Some(chunk) = results.next_chunk().await {
        shouted.push_str(&String::from_utf8_lossy(&chunk?));
    }
    println!("shout (stream) -> {shouted}");

    // Let the notification handler print before we go.
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.shutdown().await;
    println!("connection closed: {}", sock.closed().await);
    Ok(())
}
