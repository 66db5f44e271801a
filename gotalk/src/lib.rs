//! # Gotalk for Rust
//!
//! Gotalk is a bidirectional, multiplexed, human-readable RPC protocol over any byte
//! stream. Either peer of a connection may answer requests and send its own; requests,
//! results and notifications share one connection without blocking each other; and the
//! wire format is ASCII you can read in a trace:
//! `r0001004echo00000019{"message":"Hello World"}`.
//!
//! This crate speaks protocol version 1 byte for byte with the Go and JavaScript
//! implementations.
//!
//! - [`Sock`]: one connection. `request`, `notify`, streams, limits, shutdown.
//! - [`Handlers`]: what this side answers, by operation name, raw or typed (serde_json).
//! - [`tcp`], [`unix`], [`pipe`], [`Sock::adopt`]: transports. [`Server`] accepts
//!   connections with an accept hook and graceful shutdown.
//! - [`wire`]: the message types, parser, encoder and `tokio_util` codec.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), gotalk::Error> {
//! use gotalk::{Config, Handlers};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct GreetIn { name: String }
//! #[derive(Serialize, Deserialize)]
//! struct GreetOut { greeting: String }
//!
//! let mut handlers = Handlers::new();
//! handlers.handle("greet", |input: GreetIn| async move {
//!     Ok::<_, gotalk::Error>(GreetOut { greeting: format!("Hello {}", input.name) })
//! });
//! let server = gotalk::Server::new(Config::accepting().handlers(handlers))
//!     .listen_tcp("127.0.0.1:0")
//!     .await?;
//!
//! let sock = gotalk::tcp::connect(server.local_addr()).await?;
//! let out: GreetOut = sock.request("greet", &GreetIn { name: "Rasmus".into() }).await?;
//! assert_eq!(out.greeting, "Hello Rasmus");
//! server.shutdown().await;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod conn;
mod error;
mod handlers;
mod json;
mod service;
mod sync;
mod transport;
mod typed;
pub mod wire;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use conn::{
    pipe, BoxFuture, BoxStream, CallOptions, Config, HeartbeatInfo, Limits, Notification, Reply,
    Request, RequestChunks, ResultStream, SharedBudget, Sock, StreamRequest, StreamWriter,
};
pub use error::{CloseReason, Error, Side};
pub use gotalk_macros::{notification, service};
pub use handlers::Handlers;
pub use service::{
    FromSock, JsonResults, JsonSender, RegistrationError, Service, StreamIn, StreamOut,
};
#[cfg(feature = "tls")]
pub use transport::tls;
#[cfg(feature = "websocket")]
pub use transport::ws;
pub use transport::{tcp, Listening, Peer, Server};

#[cfg(unix)]
pub use transport::unix;
