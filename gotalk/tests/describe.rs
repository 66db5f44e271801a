//! Services that describe themselves (`gotalk::describe`, EXTENSIONS.md): every method
//! shape as the macros record it, handlers registered by hand by name and kind, and the
//! description on the wire only between peers that announced it.

use std::time::Duration;

use gotalk::{
    describe::{DescribeError, Description, Kind, Operation},
    Config, Error, Handlers, Reply, Sock, StreamIn, StreamOut,
};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

mod support;
use support::{raw_peer, read_n, read_until_closed, start, SECOND};

#[derive(Debug, Serialize, Deserialize)]
pub enum KvError {
    NotFound,
}

impl std::fmt::Display for KvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not found")
    }
}

/// Every method shape a service may have.
#[gotalk::service(prefix = "kv.")]
pub trait Shapes {
    /// Reads a key.
    ///
    /// Second paragraph.
    #[gotalk(timeout = "5s")]
    async fn get(&self, key: String) -> Result<Vec<u8>, KvError>;
    async fn text_error(&self, key: (u32, String)) -> Result<u64, Error>;
    async fn nothing(&self);
    async fn value(&self, sock: &Sock) -> Option<String>;
    /// Counts.
    async fn count(&self, n: u32) -> StreamOut<u32>;
    async fn failing_count(&self, n: u32) -> Result<StreamOut<u32, KvError>, KvError>;
    #[gotalk(name = "sum all")]
    async fn sum(&self, parts: StreamIn<u64>) -> u64;
    async fn upper(&self, parts: StreamIn<String>) -> StreamOut<String, Error>;
}

#[gotalk::notification]
pub trait Events {
    /// Someone joined.
    #[gotalk(name = "joined")]
    async fn joined(&self, user: String);
    async fn tick(&self);
}

struct Impl;

impl Shapes for Impl {
    async fn get(&self, _: String) -> Result<Vec<u8>, KvError> {
        Err(KvError::NotFound)
    }
    async fn text_error(&self, _: (u32, String)) -> Result<u64, Error> {
        Ok(1)
    }
    async fn nothing(&self) {}
    async fn value(&self, _: &Sock) -> Option<String> {
        None
    }
    async fn count(&self, n: u32) -> StreamOut<u32> {
        StreamOut::iter(0..n)
    }
    async fn failing_count(&self, _: u32) -> Result<StreamOut<u32, KvError>, KvError> {
        Err(KvError::NotFound)
    }
    async fn sum(&self, _: StreamIn<u64>) -> u64 {
        0
    }
    async fn upper(&self, _: StreamIn<String>) -> StreamOut<String, Error> {
        StreamOut::iter(Vec::new())
    }
}

impl Events for Impl {
    async fn joined(&self, _: String) {}
    async fn tick(&self) {}
}

fn handlers() -> Handlers {
    Handlers::new()
        .with(ShapesService::new(Impl))
        .with(EventsService::new(Impl))
        .handle_raw("bytes", |req: gotalk::Request| async move {
            Ok::<_, Error>(req.payload)
        })
        .handle_stream("raw stream", |_| async {
            Reply::Result(Default::default())
        })
        .handle_notification_raw("raw note", |_| async {})
        // A fallback answers every other name: it is not an operation of its own.
        .handle_raw("", |_| async { Ok::<_, Error>("fallback") })
}

/// Every operation's signature, in order.
fn signatures(description: &Description) -> Vec<String> {
    description
        .operations
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn every_method_shape_is_described() {
    let description = handlers().describe();
    assert_eq!(
        signatures(&description),
        [
            "bytes (request, by hand)",
            "notification joined(String)",
            "kv.count(u32) -> stream of u32",
            "kv.failing_count(u32) -> Result<stream of u32, KvError>",
            "kv.get(String) -> Result<Vec<u8>, KvError>",
            "kv.nothing() -> ()",
            "\"kv.sum all\"(stream of u64) -> u64",
            "kv.text_error((u32, String)) -> Result<u64, Error>",
            "kv.upper(stream of String) -> Result<stream of String, Error>",
            "kv.value() -> Option<String>",
            "notification \"raw note\" (by hand)",
            "\"raw stream\" (stream request, by hand)",
            "notification tick()",
        ]
    );
    let get = description.get("kv.get").unwrap();
    assert_eq!(get.kind, Kind::Request);
    assert_eq!(get.service.as_deref(), Some("Shapes"));
    assert_eq!(get.docs, "Reads a key.\n\nSecond paragraph.");
    assert_eq!(get.timeout_ms, Some(5000));
    assert_eq!(description.get("kv.count").unwrap().docs, "Counts.");
    assert!(description.get("kv.count").unwrap().streams_results);
    assert_eq!(
        description.get("kv.sum all").unwrap().kind,
        Kind::StreamRequest
    );
    let joined = description.get("joined").unwrap();
    assert_eq!(
        (joined.kind, joined.service.as_deref()),
        (Kind::Notification, Some("Events"))
    );
    assert_eq!(joined.docs, "Someone joined.");
    assert!(joined.output.is_none());
    assert_eq!(
        description.get("bytes").unwrap(),
        &Operation::new("bytes", Kind::Request)
    );
    assert!(description.get("").is_none(), "the fallback is not listed");
    // With the feature `schema`, the schema of every type that has one: the standard
    // library's, not `KvError` (it derives no `JsonSchema`).
    #[cfg(feature = "schema")]
    {
        let schema = |ty: &Option<gotalk::describe::Type>| ty.as_ref().unwrap().schema.clone();
        assert_eq!(schema(&get.input).unwrap()["type"], "string");
        assert_eq!(schema(&get.output).unwrap()["type"], "array");
        assert_eq!(schema(&get.error), None);
        assert_eq!(
            schema(&description.get("kv.text_error").unwrap().error),
            None,
            "text"
        );
    }
    // Without it, no schemas.
    #[cfg(not(feature = "schema"))]
    assert!(description
        .operations
        .iter()
        .flat_map(|op| [&op.input, &op.output, &op.error])
        .flatten()
        .all(|ty| ty.schema.is_none()));
    // The JSON reads back as it was.
    let json = serde_json::to_string(&description).unwrap();
    assert_eq!(
        serde_json::from_str::<Description>(&json).unwrap(),
        description
    );
    assert!(
        json.contains(r#"{"name":"bytes","kind":"request"}"#),
        "{json}"
    );
    assert!(json.contains(r#""kind":"stream-request""#), "{json}");
}

#[test]
fn a_child_set_shows_its_own_and_its_parents_handlers() {
    let parent = Handlers::new()
        .with(EventsService::new(Impl))
        .handle_raw("bytes", |req: gotalk::Request| async move {
            Ok::<_, Error>(req.payload)
        });
    let child = parent
        .child()
        .with(ShapesService::new(Impl))
        .handle_notification_raw("joined", |_| async {});
    let names: Vec<String> = signatures(&child.describe());
    assert!(
        names.contains(&"bytes (request, by hand)".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"notification tick()".to_owned()),
        "{names:?}"
    );
    // The child's own `joined` hides its parent's.
    assert!(
        names.contains(&"notification joined (by hand)".to_owned()),
        "{names:?}"
    );
    assert!(
        !names.contains(&"notification joined(String)".to_owned()),
        "{names:?}"
    );
    assert_eq!(names.len(), 2 + 8 + 1, "{names:?}");
    // A child's fallback for requests hides every request of its parent.
    let caught = parent
        .child()
        .handle_raw("", |_| async { Ok::<_, Error>("") });
    assert_eq!(
        signatures(&caught.describe()),
        ["notification joined(String)", "notification tick()"]
    );
}

fn describing() -> Config {
    Config::accepting().handlers(handlers()).describe(true)
}

#[tokio::test]
async fn a_server_that_describes_itself_answers_over_tcp() {
    let server = start(describing()).await;
    let sock = gotalk::tcp::connect(server.local_addr()).await.unwrap();
    let description = sock.describe_peer(SECOND * 2).await.unwrap();
    assert_eq!(description, handlers().describe());
    // Calls go on as before.
    assert_eq!(sock.request_raw("bytes", "hi").await.unwrap(), "hi");
}

/// Off by default: nothing announced, and a client that asks anyway is told the name is
/// unknown, as for any other.
#[tokio::test]
async fn describing_is_off_unless_enabled() {
    let server = start(Config::accepting().handlers(Handlers::new())).await;
    let sock = gotalk::tcp::connect(server.local_addr()).await.unwrap();
    let started = std::time::Instant::now();
    let err = sock
        .describe_peer(Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(err, DescribeError::NotDescribed), "{err}");
    // The announcement came, without `describe`: no waiting for the bound.
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(
        err.to_string()
            .starts_with("the peer does not describe itself"),
        "{err}"
    );
    let err = sock.request_raw("gotalk:describe", "").await.unwrap_err();
    assert!(
        matches!(&err, Error::Remote(text) if text.contains("gotalk:describe")),
        "{err}"
    );
}

/// Bytes on the wire: the server announces `describe` in its answer, and answers
/// `gotalk:describe` with the description's JSON.
#[tokio::test]
async fn the_announcement_and_the_answer_on_the_wire() {
    let server = start(
        Config::accepting()
            .handlers(
                Handlers::new().handle_raw("echo", |req: gotalk::Request| async move {
                    Ok::<_, Error>(req.payload)
                }),
            )
            .describe(true),
    )
    .await;
    let mut raw = raw_peer(server.local_addr()).await;
    raw.write_all(b"n00cgotalk:hello0000000fcancel deadline")
        .await
        .unwrap();
    let hello = b"n00cgotalk:hello00000018cancel deadline describe";
    assert_eq!(read_n(&mut raw, hello.len()).await, hello);
    raw.write_all(b"r000100fgotalk:describe00000000")
        .await
        .unwrap();
    let json = br#"{"operations":[{"name":"echo","kind":"request"}]}"#;
    let answer = [format!("R0001{:08x}", json.len()).as_bytes(), json].concat();
    assert_eq!(read_n(&mut raw, answer.len()).await, answer);
}

/// A peer that does not speak the extension (the Go reference, the reference gotalk.js)
/// is sent nothing new: after the bound, the client says it does not describe itself.
#[tokio::test]
async fn a_plain_peer_is_not_asked() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        stream.write_all(b"01").await.unwrap();
        read_until_closed(&mut stream, SECOND * 3).await
    });
    let sock = gotalk::tcp::connect(addr).await.unwrap();
    let err = sock
        .describe_peer(Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(matches!(err, DescribeError::NotDescribed), "{err}");
    sock.close();
    assert_eq!(
        peer.await.unwrap(),
        b"01n00cgotalk:hello0000000fcancel deadline"
    );
}

/// A connection whose handlers change (say, at sign-in) describes the set it has then.
#[tokio::test]
async fn the_description_follows_the_connections_handlers() {
    let signed_in = Handlers::new().with(ShapesService::new(Impl));
    let login = Handlers::new().handle_raw("login", move |req: gotalk::Request| {
        let signed_in = signed_in.clone();
        async move {
            req.sock.set_handlers(signed_in);
            Ok::<_, Error>("")
        }
    });
    let server = start(Config::accepting().handlers(login).describe(true)).await;
    let sock = gotalk::tcp::connect(server.local_addr()).await.unwrap();
    let before = sock.describe_peer(SECOND * 2).await.unwrap();
    assert_eq!(signatures(&before), ["login (request, by hand)"]);
    sock.request_raw("login", "").await.unwrap();
    let after = sock.describe_peer(SECOND * 2).await.unwrap();
    assert_eq!(after.operations.len(), 8);
}

/// A plain peer dialling a server that describes itself (the reference gotalk.js, the Go
/// client) receives nothing new: the announcement only answers one.
#[tokio::test]
async fn a_plain_peer_dialling_a_describing_server_receives_nothing_new() {
    let server = start(describing()).await;
    let mut raw = raw_peer(server.local_addr()).await;
    raw.write_all(b"r0001005bytes00000002hi").await.unwrap();
    raw.shutdown().await.unwrap();
    assert_eq!(
        read_until_closed(&mut raw, SECOND * 2).await,
        b"R000100000002hi"
    );
}
