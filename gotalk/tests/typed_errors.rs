//! Typed errors end to end: a service's own error type comes back to the caller as that
//! type (`CallError::Remote`), travels as JSON text that any peer can read, and every
//! other failure stays a `gotalk::Error` (`CallError::Rpc`).

use std::fmt;

use bytes::Bytes;
use futures_util::StreamExt;
use gotalk::{
    middleware::{Incoming, Next},
    CallError, CallOptions, Config, Error, Handlers, Reply, Sock, StreamOut,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub enum KvError {
    NotFound { key: String },
    Full,
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound { key } => write!(f, "key not found: {key}"),
            Self::Full => f.write_str("the store is full"),
        }
    }
}

/// An error that is only `Display`: it travels as its text, as before.
#[derive(Debug)]
pub struct Opaque;

impl fmt::Display for Opaque {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("opaque failure")
    }
}

#[gotalk::service]
pub trait Kv {
    async fn get(&self, key: String) -> Result<String, KvError>;
    async fn put(&self, key: String) -> Result<(), KvError>;
    async fn opaque(&self) -> Result<(), Opaque>;
    async fn scan(&self, prefix: String) -> Result<StreamOut<String>, KvError>;
    async fn busy(&self) -> Result<(), Error>;
    /// Streams the keys it has, then fails with its own error type.
    async fn keys(&self, count: u32) -> StreamOut<String, KvError>;
}

struct Store;

impl Kv for Store {
    async fn get(&self, key: String) -> Result<String, KvError> {
        match key.as_str() {
            "present" => Ok("value".into()),
            _ => Err(KvError::NotFound { key }),
        }
    }
    async fn put(&self, _key: String) -> Result<(), KvError> {
        Err(KvError::Full)
    }
    async fn opaque(&self) -> Result<(), Opaque> {
        Err(Opaque)
    }
    async fn scan(&self, prefix: String) -> Result<StreamOut<String>, KvError> {
        Err(KvError::NotFound { key: prefix })
    }
    async fn busy(&self) -> Result<(), Error> {
        Err(Error::retry(std::time::Duration::from_millis(5), "busy"))
    }
    async fn keys(&self, count: u32) -> StreamOut<String, KvError> {
        let keys = (0..count).map(|n| Ok(format!("k{n}")));
        let end = KvError::NotFound {
            key: format!("k{count}"),
        };
        StreamOut::new(futures_util::stream::iter(keys.chain([Err(end)])))
    }
}

fn connect(handlers: Handlers) -> (Sock, Sock) {
    gotalk::pipe(Config::dialling(), Config::accepting().handlers(handlers))
}

fn served() -> (Sock, Sock) {
    connect(Handlers::new().with(KvService::new(Store)))
}

#[tokio::test]
async fn the_caller_gets_the_handlers_error_typed() {
    let (sock, _server) = served();
    assert_eq!(
        KvClient::get(&sock, "present".into()).await.unwrap(),
        "value"
    );
    match KvClient::get(&sock, "missing".into()).await {
        Err(CallError::Remote(KvError::NotFound { key })) => assert_eq!(key, "missing"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    let with = KvClient::with(&sock, CallOptions::new().retries(1));
    match with.get("gone".into()).await {
        Err(CallError::Remote(KvError::NotFound { key })) => assert_eq!(key, "gone"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    // A unit variant travels as its name and comes back as itself.
    match KvClient::put(&sock, "k".into()).await {
        Err(e @ CallError::Remote(KvError::Full)) => {
            assert_eq!(e.to_string(), "the store is full");
            assert_eq!(e.into_remote(), Some(KvError::Full));
        }
        other => panic!("expected Full, got {other:?}"),
    }
}

#[tokio::test]
async fn a_typed_error_is_json_text_on_the_wire() {
    let (sock, _server) = served();
    // What a peer that is not ours (the Go peer, the reference gotalk.js) receives.
    let text = |r: Result<Bytes, Error>| match r {
        Err(Error::Remote(text)) => text,
        other => panic!("expected an ErrorResult, got {other:?}"),
    };
    let payload = Bytes::from_static(b"\"missing\"");
    assert_eq!(
        text(sock.request_raw("get", payload).await),
        r#"{"NotFound":{"key":"missing"}}"#
    );
    let payload = Bytes::from_static(b"\"k\"");
    assert_eq!(text(sock.request_raw("put", payload).await), "Full");
    assert_eq!(
        text(sock.request_raw("opaque", Bytes::new()).await),
        "opaque failure"
    );
    // A stream operation's error is typed on the wire too, before the stream and in it.
    let payload = Bytes::from_static(b"\"p\"");
    let mut results = sock.request_results("scan", payload).await.unwrap();
    match results.next().await {
        Some(Err(Error::Remote(text))) => assert_eq!(text, r#"{"NotFound":{"key":"p"}}"#),
        other => panic!("expected an ErrorResult, got {other:?}"),
    }
    let mut results = sock
        .request_results("keys", Bytes::from_static(b"1"))
        .await
        .unwrap();
    assert_eq!(results.next().await.unwrap().unwrap(), "\"k0\"");
    match results.next().await {
        Some(Err(Error::Remote(text))) => assert_eq!(text, r#"{"NotFound":{"key":"k1"}}"#),
        other => panic!("expected an ErrorResult, got {other:?}"),
    }
    assert!(results.next().await.is_none());
}

#[tokio::test]
async fn a_streamed_error_is_typed_like_a_single_one() {
    let (sock, _server) = served();
    let mut keys = KvClient::keys(&sock, 2).await.unwrap();
    assert_eq!(keys.next_value().await.unwrap().unwrap(), "k0");
    assert_eq!(keys.next_value().await.unwrap().unwrap(), "k1");
    match keys.next_value().await {
        Some(Err(CallError::Remote(KvError::NotFound { key }))) => assert_eq!(key, "k2"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(keys.next_value().await.is_none());
    // The error of `Result<StreamOut<T>, E>` comes back typed as the stream's first item.
    let mut scan = KvClient::scan(&sock, "p".into()).await.unwrap();
    match scan.next().await {
        Some(Err(CallError::Remote(KvError::NotFound { key }))) => assert_eq!(key, "p"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    // Anything else stays the call's own failure.
    let (sock, _server) = connect(Handlers::new());
    let mut keys = KvClient::keys(&sock, 1).await.unwrap();
    match keys.next_value().await {
        Some(Err(CallError::Rpc(Error::Remote(text)))) => {
            assert!(text.starts_with("unknown operation"), "{text}")
        }
        other => panic!("expected the peer's own error, got {other:?}"),
    }
}

/// Middleware that refuses every operation but `get` with the application's error type.
fn refusing() -> Handlers {
    let handlers = Handlers::new().with(KvService::new(Store)).wrap(
        |incoming: Incoming, next: Next| async move {
            if incoming.op.as_str() == "get" {
                return next.run().await;
            }
            Reply::json_error(&KvError::Full)
        },
    );
    handlers
}

#[tokio::test]
async fn middleware_refuses_with_the_operations_typed_error() {
    let (sock, _server) = connect(refusing());
    assert_eq!(
        KvClient::get(&sock, "present".into()).await.unwrap(),
        "value"
    );
    match KvClient::put(&sock, "k".into()).await {
        Err(CallError::Remote(KvError::Full)) => {}
        other => panic!("expected the refusal as a KvError, got {other:?}"),
    }
    let mut keys = KvClient::keys(&sock, 3).await.unwrap();
    match keys.next_value().await {
        Some(Err(CallError::Remote(KvError::Full))) => {}
        other => panic!("expected the refusal as a KvError, got {other:?}"),
    }
    // An operation whose error type is another gets the refusal's text.
    match KvClient::opaque(&sock).await {
        Err(CallError::Rpc(Error::Remote(text))) => assert_eq!(text, "Full"),
        other => panic!("expected the refusal's text, got {other:?}"),
    }
}

#[tokio::test]
async fn every_other_failure_is_the_calls_own() {
    // A server without the service: its "unknown operation" text is not a KvError.
    let (sock, _server) = connect(Handlers::new());
    match KvClient::get(&sock, "k".into()).await {
        Err(CallError::Rpc(Error::Remote(text))) => {
            assert!(text.starts_with("unknown operation"), "{text}")
        }
        other => panic!("expected the peer's own error, got {other:?}"),
    }
    // An error type that cannot be decoded comes back as its text.
    let (sock, _server) = served();
    match KvClient::opaque(&sock).await {
        Err(CallError::Rpc(Error::Remote(text))) => assert_eq!(text, "opaque failure"),
        other => panic!("expected the text, got {other:?}"),
    }
    // `gotalk::Error` keeps its own shape: a retry stays a retry.
    match KvClient::busy(&sock).await {
        Err(Error::Retry { reason, .. }) => assert_eq!(reason, "busy"),
        other => panic!("expected a retry, got {other:?}"),
    }
    // A closed connection is the call's failure.
    sock.close();
    assert!(matches!(
        KvClient::get(&sock, "k".into()).await,
        Err(CallError::Rpc(Error::Closed(_)))
    ));
}

#[tokio::test]
async fn a_typed_error_converts_for_the_question_mark() {
    async fn lookup(sock: &Sock) -> Result<String, Error> {
        Ok(KvClient::get(sock, "missing".into()).await?)
    }
    let (sock, _server) = served();
    match lookup(&sock).await {
        Err(Error::Remote(text)) => assert_eq!(text, "key not found: missing"),
        other => panic!("expected the error's text, got {other:?}"),
    }
    let boxed: Result<String, Box<dyn std::error::Error>> = KvClient::get(&sock, "missing".into())
        .await
        .map_err(Into::into);
    assert_eq!(boxed.unwrap_err().to_string(), "key not found: missing");
}
