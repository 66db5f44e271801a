//! A service's own error types come back typed: concrete, and a trait's type parameter
//! bounded for it; errors spelled as text keep `gotalk::Error`.

use std::fmt::{self, Display};

use gotalk::{CallError, Error};
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
}

#[gotalk::service]
pub trait Store<E: Serialize + DeserializeOwned + Display + Send + Sync + 'static> {
    async fn get(&self) -> Result<u32, E>;
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
}

impl Store<KvError> for Impl {
    async fn get(&self) -> Result<u32, KvError> {
        Err(KvError::NotFound)
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

    let handlers = gotalk::Handlers::new().with(StoreService::new(Impl));
    let (sock, _server) = gotalk::pipe(gotalk::Config::dialling(), gotalk::Config::accepting().handlers(handlers));
    let generic = StoreClient::<KvError>::get(&sock).await;
    assert!(matches!(generic, Err(CallError::Remote(KvError::NotFound))));
}
