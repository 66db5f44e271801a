//! Every accepted method shape, called through the generated client over a pipe.

use gotalk::{Config, Error, Handlers, Sock, StreamIn, StreamOut};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct In {
    pub n: u32,
}

#[gotalk::service]
pub trait Shapes {
    async fn nothing(&self);
    async fn unit_out(&self, input: In);
    async fn value(&self, input: In) -> u32;
    async fn unit_tuple(&self) -> ();
    async fn result(&self, input: In) -> Result<u32, Error>;
    async fn result_string_error(&self) -> Result<String, String>;
    async fn with_sock(&self, sock: &Sock, input: In) -> u64;
    async fn with_owned_sock(&self, sock: Sock) -> u64;
    async fn stream_in(&self, items: StreamIn<In>) -> u32;
    async fn stream_out(&self, input: In) -> StreamOut<u32>;
    async fn stream_both(&self, sock: &Sock, items: StreamIn<u32>) -> Result<StreamOut<u32>, Error>;
    #[gotalk(name = "renamed op", timeout = "2s")]
    async fn renamed(&self) -> Option<Vec<String>>;
}

#[gotalk::notification(prefix = "events.")]
pub trait Events {
    async fn tick(&self, n: u64);
    async fn empty(&self);
    #[gotalk(name = "with sock")]
    async fn with_sock(&self, sock: &Sock, text: String);
}

struct Impl;

impl Shapes for Impl {
    async fn nothing(&self) {}
    async fn unit_out(&self, _input: In) {}
    async fn value(&self, input: In) -> u32 {
        input.n
    }
    async fn unit_tuple(&self) -> () {}
    async fn result(&self, input: In) -> Result<u32, Error> {
        Ok(input.n)
    }
    async fn result_string_error(&self) -> Result<String, String> {
        Err("no".into())
    }
    async fn with_sock(&self, sock: &Sock, _input: In) -> u64 {
        sock.id()
    }
    async fn with_owned_sock(&self, sock: Sock) -> u64 {
        sock.id()
    }
    async fn stream_in(&self, _items: StreamIn<In>) -> u32 {
        0
    }
    async fn stream_out(&self, input: In) -> StreamOut<u32> {
        StreamOut::iter(0..input.n)
    }
    async fn stream_both(&self, _sock: &Sock, items: StreamIn<u32>) -> Result<StreamOut<u32>, Error> {
        Ok(StreamOut::new(items))
    }
    async fn renamed(&self) -> Option<Vec<String>> {
        None
    }
}

impl Events for Impl {
    async fn tick(&self, _n: u64) {}
    async fn empty(&self) {}
    async fn with_sock(&self, _sock: &Sock, _text: String) {}
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let handlers = Handlers::new().with(ShapesService::new(Impl)).with(EventsService::new(Impl));
    let (sock, _server) = gotalk::pipe(Config::dialling(), Config::accepting().handlers(handlers));
    ShapesClient::nothing(&sock).await.unwrap();
    ShapesClient::unit_out(&sock, In { n: 1 }).await.unwrap();
    assert_eq!(ShapesClient::value(&sock, In { n: 7 }).await.unwrap(), 7);
    ShapesClient::unit_tuple(&sock).await.unwrap();
    assert_eq!(ShapesClient::result(&sock, In { n: 8 }).await.unwrap(), 8);
    assert!(ShapesClient::result_string_error(&sock).await.is_err());
    ShapesClient::with_sock(&sock, In { n: 1 }).await.unwrap();
    ShapesClient::with_owned_sock(&sock).await.unwrap();
    let (tx, rx) = ShapesClient::stream_in(&sock).await.unwrap();
    tx.finish().await.unwrap();
    assert_eq!(rx.result().await.unwrap(), 0);
    let _results = ShapesClient::stream_out(&sock, In { n: 3 }).await.unwrap();
    let (_tx, _rx) = ShapesClient::stream_both(&sock).await.unwrap();
    assert_eq!(ShapesClient::renamed(&sock).await.unwrap(), None);
    // Per-call options: the single-result operations, with a timeout and retries.
    let options = gotalk::CallOptions::new().timeout(std::time::Duration::from_secs(5)).retries(2);
    let with = ShapesClient::with(&sock, options);
    assert_eq!(with.value(In { n: 9 }).await.unwrap(), 9);
    with.nothing().await.unwrap();
    with.with_sock(In { n: 1 }).await.unwrap();
    EventsNotifier::tick(&sock, 1).await.unwrap();
    EventsNotifier::empty(&sock).await.unwrap();
    EventsNotifier::with_sock(&sock, "hi".into()).await.unwrap();
    assert_eq!(EventsNotifier::NOTIFICATIONS, ["events.tick", "events.empty", "events.with sock"]);
}
