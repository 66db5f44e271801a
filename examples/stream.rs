//! The reference's stream example: a streaming request (the client sends words one by
//! one) answered with a streaming result (the server sends each back as it comes), and a
//! single request answered with a stream.
//!
//!     cargo run --example stream

use futures_util::StreamExt;
use gotalk::{Config, Error, Handlers, Server, StreamIn, StreamOut};

#[gotalk::service]
pub trait Words {
    /// Echoes every word streamed to it, upper-cased, as it arrives.
    async fn shout(&self, words: StreamIn<String>) -> StreamOut<String>;
    /// Counts down from `from` to 1, one number per stream result.
    async fn countdown(&self, from: u32) -> StreamOut<u32>;
}

struct Impl;

impl Words for Impl {
    async fn shout(&self, words: StreamIn<String>) -> StreamOut<String> {
        StreamOut::new(words.map(|word| word.map(|w| w.to_uppercase())))
    }

    async fn countdown(&self, from: u32) -> StreamOut<u32> {
        StreamOut::iter((1..=from).rev())
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let server =
        Server::new(Config::accepting().handlers(Handlers::new().with(WordsService::new(Impl))))
            .listen_tcp("127.0.0.1:0")
            .await?;
    let sock = gotalk::tcp::connect(server.local_addr()).await?;

    let (mut words, mut shouted) = WordsClient::shout(&sock).await?;
    for word in ["streams", "go", "both", "ways"] {
        words.send(&word.to_owned()).await?;
        // Each answer arrives before the next word is sent.
        let back = shouted
            .next()
            .await
            .ok_or(Error::message("stream ended early"))??;
        println!("sent {word:?}, got {back:?}");
    }
    words.finish().await?;
    assert!(shouted.next().await.is_none());

    let mut numbers = WordsClient::countdown(&sock, 3).await?;
    let mut got = Vec::new();
    while let Some(n) = numbers.next().await {
        got.push(n?);
    }
    println!("countdown: {got:?}");
    server.shutdown().await;
    Ok(())
}
