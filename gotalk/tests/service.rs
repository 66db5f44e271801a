//! `#[gotalk::service]` and `#[gotalk::notification]` end to end, over TCP and pipes:
//! every method shape, errors, retries, streams both ways, notifications, both peers
//! serving traits the other calls, and registration conflicts.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::StreamExt;
use gotalk::{Config, Error, Handlers, Server, Sock, StreamIn, StreamOut};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct GreetIn {
    pub name: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
pub struct GreetOut {
    pub greeting: String,
}

/// A service with one method of every shape.
#[gotalk::service]
pub trait Greet {
    /// Greets someone.
    async fn greet(&self, input: GreetIn) -> Result<GreetOut, Error>;
    #[gotalk(name = "echo")]
    async fn echo_text(&self, text: String) -> String;
    async fn ping(&self);
    async fn count(&self) -> u64;
    async fn fail(&self, why: String) -> Result<(), String>;
    async fn busy(&self) -> Result<(), Error>;
    async fn whoami(&self, sock: &Sock) -> String;
    async fn ask_back(&self, sock: &Sock, n: i64) -> Result<i64, Error>;
    #[gotalk(name = "sum stream")]
    async fn sum(&self, numbers: StreamIn<i64>) -> Result<i64, Error>;
    async fn countdown(&self, from: u32) -> StreamOut<u32>;
    async fn upper(&self, words: StreamIn<String>) -> StreamOut<String>;
    async fn maybe_stream(&self, ok: bool) -> Result<StreamOut<u8>, String>;
    #[gotalk(timeout = "100ms")]
    async fn slow(&self, ms: u64) -> u64;
}

struct Greeter {
    pings: Mutex<u64>,
}

impl Greet for Greeter {
    async fn greet(&self, input: GreetIn) -> Result<GreetOut, Error> {
        Ok(GreetOut {
            greeting: format!("Hello {}", input.name),
        })
    }
    async fn echo_text(&self, text: String) -> String {
        text
    }
    async fn ping(&self) {
        *self.pings.lock().unwrap() += 1;
    }
    async fn count(&self) -> u64 {
        *self.pings.lock().unwrap()
    }
    async fn fail(&self, why: String) -> Result<(), String> {
        Err(why)
    }
    async fn busy(&self) -> Result<(), Error> {
        Err(Error::retry(Duration::from_millis(25), "busy now"))
    }
    async fn whoami(&self, sock: &Sock) -> String {
        format!("connection {}", sock.id())
    }
    async fn ask_back(&self, sock: &Sock, n: i64) -> Result<i64, Error> {
        Ok(CalcClient::double(sock, n).await? + 1)
    }
    async fn sum(&self, mut numbers: StreamIn<i64>) -> Result<i64, Error> {
        let mut total = 0;
        while let Some(n) = numbers.next_value().await {
            total += n?;
        }
        Ok(total)
    }
    async fn countdown(&self, from: u32) -> StreamOut<u32> {
        StreamOut::iter((0..=from).rev())
    }
    async fn upper(&self, words: StreamIn<String>) -> StreamOut<String> {
        StreamOut::new(words.map(|w| w.map(|w| w.to_uppercase())))
    }
    async fn maybe_stream(&self, ok: bool) -> Result<StreamOut<u8>, String> {
        if ok {
            Ok(StreamOut::iter([1, 2, 3]))
        } else {
            Err("no stream today".into())
        }
    }
    async fn slow(&self, ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }
}

/// What the calling side serves, for the server to call back.
#[gotalk::service(prefix = "calc.")]
pub trait Calc {
    async fn double(&self, n: i64) -> i64;
}

struct Calculator;

impl Calc for Calculator {
    async fn double(&self, n: i64) -> i64 {
        n * 2
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ChatMessage {
    pub text: String,
}

#[gotalk::notification]
pub trait Chat {
    #[gotalk(name = "chat message")]
    async fn message(&self, msg: ChatMessage);
    async fn left(&self, sock: &Sock);
}

struct ChatLog(Arc<Mutex<Vec<String>>>);

impl Chat for ChatLog {
    async fn message(&self, msg: ChatMessage) {
        self.0.lock().unwrap().push(msg.text);
    }
    async fn left(&self, sock: &Sock) {
        self.0.lock().unwrap().push(format!("left {}", sock.peer()));
    }
}

async fn connect() -> (gotalk::Listening<std::net::SocketAddr>, Sock) {
    let handlers = Handlers::new().with(GreetService::new(Greeter {
        pings: Mutex::new(0),
    }));
    let server = Server::new(Config::accepting().handlers(handlers))
        .listen_tcp("127.0.0.1:0")
        .await
        .unwrap();
    let client_handlers = Handlers::new().with(CalcService::new(Calculator));
    let sock = gotalk::tcp::connect_with(
        server.local_addr(),
        Config::dialling().handlers(client_handlers),
    )
    .await
    .unwrap();
    (server, sock)
}

#[tokio::test]
async fn single_requests_of_every_shape() {
    let (_server, sock) = connect().await;
    let out = GreetClient::greet(
        &sock,
        GreetIn {
            name: "Rasmus".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        out,
        GreetOut {
            greeting: "Hello Rasmus".into()
        }
    );
    assert_eq!(
        GreetClient::echo_text(&sock, "hi".into()).await.unwrap(),
        "hi"
    );
    GreetClient::ping(&sock).await.unwrap();
    GreetClient::ping(&sock).await.unwrap();
    assert_eq!(GreetClient::count(&sock).await.unwrap(), 2);
    assert!(GreetClient::whoami(&sock)
        .await
        .unwrap()
        .starts_with("connection "));
}

#[tokio::test]
async fn the_wire_names_are_the_method_names_or_renamed() {
    assert_eq!(
        GreetClient::OPERATIONS,
        [
            "greet",
            "echo",
            "ping",
            "count",
            "fail",
            "busy",
            "whoami",
            "ask_back",
            "sum stream",
            "countdown",
            "upper",
            "maybe_stream",
            "slow"
        ]
    );
    assert_eq!(CalcClient::OPERATIONS, ["calc.double"]);
    assert_eq!(ChatNotifier::NOTIFICATIONS, ["chat message", "left"]);
    // A raw caller reaches the typed service by its wire name.
    let (_server, sock) = connect().await;
    let out: String = sock.request("echo", "raw").await.unwrap();
    assert_eq!(out, "raw");
}

#[tokio::test]
async fn errors_and_retries() {
    let (_server, sock) = connect().await;
    let err = GreetClient::fail(&sock, "nope".into()).await.unwrap_err();
    assert!(matches!(&err, Error::Remote(t) if t == "nope"), "{err:?}");
    let err = GreetClient::busy(&sock).await.unwrap_err();
    assert!(
        matches!(&err, Error::Retry { wait, reason } if *wait == Duration::from_millis(25) && reason == "busy now")
    );
    let err = sock.request_raw("greet", "{}").await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with(r#"invalid input for "greet": missing field `name`"#),
        "{err}"
    );
}

#[tokio::test]
async fn a_per_method_timeout() {
    let (_server, sock) = connect().await;
    assert_eq!(GreetClient::slow(&sock, 10).await.unwrap(), 10);
    let err = GreetClient::slow(&sock, 500).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert_eq!(sock.pending_requests(), 0);
}

#[tokio::test]
async fn a_handler_calls_back_the_peer_that_called_it() {
    let (_server, sock) = connect().await;
    assert_eq!(GreetClient::ask_back(&sock, 20).await.unwrap(), 41);
}

#[tokio::test]
async fn each_peer_serves_a_trait_the_other_calls() {
    let (server, client) = connect().await;
    // Once a request was answered, the server has registered the connection.
    assert_eq!(
        GreetClient::echo_text(&client, "x".into()).await.unwrap(),
        "x"
    );
    let server_side = server.connections().pop().unwrap();
    assert_eq!(CalcClient::double(&server_side, 21).await.unwrap(), 42);
}

#[tokio::test]
async fn streams_in_and_out() {
    let (_server, sock) = connect().await;
    let (mut numbers, total) = GreetClient::sum(&sock).await.unwrap();
    for n in 1..=10 {
        numbers.send(&n).await.unwrap();
    }
    numbers.finish().await.unwrap();
    assert_eq!(total.result().await.unwrap(), 55);

    let countdown = GreetClient::countdown(&sock, 3).await.unwrap();
    let values: Vec<u32> = countdown.map(Result::unwrap).collect().await;
    assert_eq!(values, [3, 2, 1, 0]);

    let (mut words, mut shouted) = GreetClient::upper(&sock).await.unwrap();
    words.send(&"hello".to_owned()).await.unwrap();
    assert_eq!(shouted.next_value().await.unwrap().unwrap(), "HELLO");
    words.send(&"world".to_owned()).await.unwrap();
    words.finish().await.unwrap();
    assert_eq!(shouted.next_value().await.unwrap().unwrap(), "WORLD");
    assert!(shouted.next_value().await.is_none());

    let ok: Vec<u8> = GreetClient::maybe_stream(&sock, true)
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(ok, [1, 2, 3]);
    let mut failed = GreetClient::maybe_stream(&sock, false).await.unwrap();
    let err = failed.next_value().await.unwrap().unwrap_err();
    assert_eq!(err.to_string(), "no stream today");
}

#[tokio::test]
async fn notifications_through_the_macro() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let server_handlers = Handlers::new().with(ChatService::new(ChatLog(log.clone())));
    let (client, _server) = gotalk::pipe(
        Config::dialling(),
        Config::accepting().handlers(server_handlers),
    );
    ChatNotifier::message(&client, ChatMessage { text: "hi".into() })
        .await
        .unwrap();
    ChatNotifier::message(
        &client,
        ChatMessage {
            text: "there".into(),
        },
    )
    .await
    .unwrap();
    ChatNotifier::left(&client).await.unwrap();
    // A request after the notifications: answered once they were handled, in order.
    let err = client.request_raw("nothing", "null").await.unwrap_err();
    assert_eq!(err.to_string(), r#"unknown operation "nothing""#);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(*log.lock().unwrap(), ["hi", "there", "left pipe"]);
}

#[tokio::test]
async fn services_register_side_by_side_and_conflicts_are_refused() {
    let handlers = Handlers::new()
        .with(GreetService::new(Greeter {
            pings: Mutex::new(0),
        }))
        .with(CalcService::new(Calculator))
        .with(ChatService::new(ChatLog(Arc::default())));
    let mut ops = handlers.operations();
    ops.sort_unstable();
    assert!(ops.contains(&"calc.double") && ops.contains(&"greet"));

    /// Claims `echo`, which `Greet` already has.
    #[gotalk::service]
    trait Echo {
        async fn echo(&self, s: String) -> String;
    }
    struct Echoer;
    impl Echo for Echoer {
        async fn echo(&self, s: String) -> String {
            s
        }
    }
    let err = handlers
        .clone()
        .try_with(EchoService::new(Echoer))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"operation "echo" is registered twice: by Greet and by Echo"#
    );
    let by_hand = Handlers::new().handle("echo", |s: String| async move { Ok::<_, Error>(s) });
    let err = by_hand.try_with(EchoService::new(Echoer)).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"operation "echo" is registered twice: by a handler registered by hand and by Echo"#
    );
}

/// A generic service: the value type is the trait's parameter.
#[gotalk::service]
pub trait Store<T: Serialize + serde::de::DeserializeOwned + Clone> {
    async fn put(&self, value: T);
    async fn get(&self) -> Option<T>;
}

struct Memory<T>(Mutex<Option<T>>);

impl<T: Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static> Store<T>
    for Memory<T>
{
    async fn put(&self, value: T) {
        *self.0.lock().unwrap() = Some(value);
    }
    async fn get(&self) -> Option<T> {
        self.0.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn generic_services() {
    let handlers = Handlers::new().with(StoreService::<_, Vec<String>>::new(Memory(Mutex::new(
        None,
    ))));
    let (client, _server) =
        gotalk::pipe(Config::dialling(), Config::accepting().handlers(handlers));
    assert_eq!(
        StoreClient::<Vec<String>>::get(&client).await.unwrap(),
        None
    );
    StoreClient::put(&client, vec!["a".to_owned()])
        .await
        .unwrap();
    assert_eq!(
        StoreClient::<Vec<String>>::get(&client).await.unwrap(),
        Some(vec!["a".to_owned()])
    );
}

/// The signed-in user: a context type of ours, made from the connection's state.
#[derive(Clone, Debug, PartialEq)]
pub struct User(pub String);

impl gotalk::FromSock for User {
    fn from_sock(sock: &Sock) -> Result<Self, Error> {
        sock.state::<User>()
            .map(|user| (*user).clone())
            .ok_or_else(|| Error::message("sign in first"))
    }
}

/// Methods that take a context of the user's own type.
#[gotalk::service]
pub trait Account {
    async fn sign_in(&self, sock: &Sock, name: String);
    async fn whoami(&self, #[gotalk(context)] user: User) -> String;
    async fn greet_as(&self, #[gotalk(context)] user: User, whom: String) -> String;
}

#[gotalk::notification]
pub trait Presence {
    async fn wave(&self, #[gotalk(context)] user: User, to: String);
}

struct Accounts(Arc<Mutex<Vec<String>>>);

impl Account for Accounts {
    async fn sign_in(&self, sock: &Sock, name: String) {
        sock.set_state(User(name));
    }
    async fn whoami(&self, user: User) -> String {
        user.0
    }
    async fn greet_as(&self, user: User, whom: String) -> String {
        format!("{} greets {whom}", user.0)
    }
}

impl Presence for Accounts {
    async fn wave(&self, user: User, to: String) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{} waves to {to}", user.0));
    }
}

#[tokio::test]
async fn a_context_type_of_ours_is_made_from_the_connection() {
    let waves = Arc::new(Mutex::new(Vec::new()));
    let handlers = Handlers::new()
        .with(AccountService::new(Accounts(waves.clone())))
        .with(PresenceService::new(Accounts(waves.clone())));
    let (stranger, _server1) = gotalk::pipe(
        Config::dialling(),
        Config::accepting().handlers(handlers.clone()),
    );
    let err = AccountClient::whoami(&stranger).await.unwrap_err();
    assert!(
        matches!(&err, Error::Remote(text) if text == "sign in first"),
        "{err:?}"
    );
    PresenceNotifier::wave(&stranger, "nobody".into())
        .await
        .unwrap();
    let (client, _server2) =
        gotalk::pipe(Config::dialling(), Config::accepting().handlers(handlers));
    AccountClient::sign_in(&client, "Ana".into()).await.unwrap();
    assert_eq!(AccountClient::whoami(&client).await.unwrap(), "Ana");
    assert_eq!(
        AccountClient::greet_as(&client, "Bo".into()).await.unwrap(),
        "Ana greets Bo"
    );
    PresenceNotifier::wave(&client, "Bo".into()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), async {
        while waves.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        *waves.lock().unwrap(),
        ["Ana waves to Bo"],
        "the stranger's wave was dropped"
    );
}
