//! A service's own error types come back typed: concrete, and a trait's type parameter
//! bounded for it, from single results and from streamed ones; errors spelled as text
//! keep `gotalk::Error`.

use std::fmt::{self, Display};

use gotalk::{CallError, Error, JsonResults, StreamIn, StreamOut};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug)]
pub enum KvError {
    NotFound,
}

impl Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not found")
    }
}

#[gotalk::service]
pub trait Kv {
    async fn get(&self) -> Result<u32, KvError>;
    async fn text(&self) -> Result<u32, String>;
    async fn ours(&self) -> Result<u32, gotalk::Error>;
    async fn watch(&self) -> StreamOut<u32, KvError>;
    async fn both(&self, items: StreamIn<u32>) -> Result<StreamOut<u32, KvError>, KvError>;
    async fn text_stream(&self) -> StreamOut<u32, String>;
}

#[gotalk::service]
pub trait Store<E: Serialize + DeserializeOwned + Display + Send + Sync + 'static> {
    async fn get(&self) -> Result<u32, E>;
    async fn watch(&self) -> StreamOut<u32, E>;
}

struct Impl;

impl Kv for Impl {
    async fn get(&self) -> Result<u32, KvError> {
        Err(KvError::NotFound)
    }
    async fn text(&self) -> Result<u32, String> {
        Err("text".into())
    }
    async fn ours(&self) -> Result<u32, gotalk::Error> {
        Err(Error::message("ours"))
    }
    async fn watch(&self) -> StreamOut<u32, KvError> {
        StreamOut::new(futures_util::stream::iter([Ok(1), Err(KvError::NotFound)]))
    }
    async fn both(&self, _items: StreamIn<u32>) -> Result<StreamOut<u32, KvError>, KvError> {
        Err(KvError::NotFound)
    }
    async fn text_stream(&self) -> StreamOut<u32, String> {
        StreamOut::new(futures_util::stream::iter([Err("text".to_string())]))
    }
}

impl Store<KvError> for Impl {
    async fn get(&self) -> Result<u32, KvError> {
        Err(KvError::NotFound)
    }
    async fn watch(&self) -> StreamOut<u32, KvError> {
        StreamOut::iter([1])
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let handlers = gotalk::Handlers::new().with(KvService::new(Impl));
    let (sock, _server) = gotalk::pipe(gotalk::Config::dialling(), gotalk::Config::accepting().handlers(handlers));
    let typed: Result<u32, CallError<KvError>> = KvClient::get(&sock).await;
    assert!(matches!(typed, Err(CallError::Remote(KvError::NotFound))));
    let text: Result<u32, Error> = KvClient::text(&sock).await;
    assert!(matches!(text, Err(Error::Remote(t)) if t == "text"));
    let ours: Result<u32, Error> = KvClient::ours(&sock).await;
    assert!(matches!(ours, Err(Error::Remote(t)) if t == "ours"));
    let mut watch: JsonResults<u32, CallError<KvError>> = KvClient::watch(&sock).await.unwrap();
    assert!(matches!(watch.next_value().await, Some(Ok(1))));
    assert!(matches!(watch.next_value().await, Some(Err(CallError::Remote(KvError::NotFound)))));
    let (sender, results) = KvClient::both(&sock).await.unwrap();
    sender.finish().await.unwrap();
    let both: Result<u32, CallError<KvError>> = results.result().await;
    assert!(matches!(both, Err(CallError::Remote(KvError::NotFound))));
    let mut text: JsonResults<u32> = KvClient::text_stream(&sock).await.unwrap();
    assert!(matches!(text.next_value().await, Some(Err(Error::Remote(t))) if t == "text"));

    let handlers = gotalk::Handlers::new().with(StoreService::new(Impl));
    let (sock, _server) = gotalk::pipe(gotalk::Config::dialling(), gotalk::Config::accepting().handlers(handlers));
    let generic = StoreClient::<KvError>::get(&sock).await;
    assert!(matches!(generic, Err(CallError::Remote(KvError::NotFound))));
    let mut watch: JsonResults<u32, CallError<KvError>> = StoreClient::<KvError>::watch(&sock).await.unwrap();
    assert!(matches!(watch.next_value().await, Some(Ok(1))));
}
