//! Authentication: a peer signs in with `login`, and until it has, middleware refuses
//! every other operation of the service.
//!
//! The pieces: the connection's state holds the session (`sock.set_state`), middleware
//! (`Handlers::wrap`) checks it in one place for every operation, and a context type
//! (`#[gotalk(context)] user: User`, `User: FromSock`) hands the signed-in user to the
//! methods that need it. A wrong password is a typed error the caller matches.
//!
//! (Another way with the same pieces: serve only `login` at first, and give the
//! connection a child set with the other operations once it signs in,
//! `sock.set_handlers(signed_in)`. Middleware keeps every operation in one set and the
//! rule in one place; a WebSocket server can also sign a peer in from a cookie in its
//! connect hook, `ws::Endpoint::on_connect`, by setting the same state.)
//!
//! ```text
//! cargo run --example auth
//! ```

use gotalk::{
    middleware::{Incoming, Kind, Next},
    CallError, Config, Error, FromSock, Handlers, Reply, Sock,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

#[derive(Serialize, Deserialize, Debug)]
pub enum AuthError {
    WrongPassword,
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("wrong user or password")
    }
}

#[gotalk::service]
pub trait Notes {
    async fn login(&self, sock: &Sock, credentials: Credentials) -> Result<String, AuthError>;
    async fn notes(&self, #[gotalk(context)] user: User) -> Vec<String>;
}

/// The signed-in user: the connection's state once `login` succeeded.
#[derive(Clone)]
pub struct User(String);

impl FromSock for User {
    fn from_sock(sock: &Sock) -> Result<Self, Error> {
        sock.state::<User>()
            .map(|user| (*user).clone())
            .ok_or_else(|| Error::message("sign in first"))
    }
}

struct NoteBook;

impl Notes for NoteBook {
    async fn login(&self, sock: &Sock, credentials: Credentials) -> Result<String, AuthError> {
        // A real server checks a password hash; this one knows one user.
        if (credentials.user.as_str(), credentials.password.as_str()) != ("ana", "secret") {
            return Err(AuthError::WrongPassword);
        }
        sock.set_state(User(credentials.user.clone()));
        Ok(format!("welcome, {}", credentials.user))
    }

    async fn notes(&self, user: User) -> Vec<String> {
        vec![format!("{}'s first note", user.0)]
    }
}

/// Refuses every operation but `login` to a connection that has not signed in.
async fn require_login(incoming: Incoming, next: Next) -> Reply {
    let open = &*incoming.handler == "login" || incoming.kind == Kind::Notification;
    if open || incoming.sock.state::<User>().is_some() {
        next.run().await
    } else {
        tracing::info!(peer = incoming.sock.peer(), op = %incoming.op, "refused: not signed in");
        Reply::Error("sign in first".into())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let handlers = Handlers::new()
        .with(NotesService::new(NoteBook))
        .wrap(require_login);
    let server = gotalk::Server::new(Config::accepting().handlers(handlers));
    // `auth --serve ADDR`: only serve (for `gotalk call ADDR notes --before login …`).
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, addr] = &args[..] {
        if flag == "--serve" {
            let serving = server.clone().listen_tcp(addr.as_str()).await?;
            println!("serving on {}", serving.local_addr());
            std::future::pending::<()>().await;
        }
    }
    let server = server.listen_tcp("127.0.0.1:0").await?;
    let sock = gotalk::tcp::connect(server.local_addr()).await?;

    match NotesClient::notes(&sock).await {
        Err(e) => println!("notes before login: {e}"),
        Ok(notes) => println!("notes before login?! {notes:?}"),
    }
    let wrong = Credentials {
        user: "ana".into(),
        password: "guess".into(),
    };
    match NotesClient::login(&sock, wrong).await {
        Err(CallError::Remote(AuthError::WrongPassword)) => println!("login: wrong password"),
        other => println!("login: {other:?}"),
    }
    let right = Credentials {
        user: "ana".into(),
        password: "secret".into(),
    };
    println!("login: {}", NotesClient::login(&sock, right).await?);
    println!("notes: {:?}", NotesClient::notes(&sock).await?);

    // Another connection is not signed in.
    let other = gotalk::tcp::connect(server.local_addr()).await?;
    if let Err(e) = NotesClient::notes(&other).await {
        println!("another connection: {e}");
    }
    server.shutdown().await;
    Ok(())
}
