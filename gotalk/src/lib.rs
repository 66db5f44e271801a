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
//! ## Quick start: one trait, both sides
//!
//! [`#[gotalk::service]`](macro@service) turns a trait into a typed client for the
//! caller and a service for the responder ([`#[gotalk::notification]`](macro@notification)
//! does the same for one-way messages):
//!
//! ```
//! use gotalk::{Config, Error, Handlers, Server};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! pub struct GreetIn { pub name: String }
//! #[derive(Serialize, Deserialize)]
//! pub struct GreetOut { pub greeting: String }
//!
//! #[gotalk::service]
//! pub trait Greet {
//!     async fn greet(&self, input: GreetIn) -> Result<GreetOut, Error>;
//! }
//!
//! struct Greeter;
//! impl Greet for Greeter {
//!     async fn greet(&self, input: GreetIn) -> Result<GreetOut, Error> {
//!         Ok(GreetOut { greeting: format!("Hello {}", input.name) })
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Error> {
//! // Server: one line registers every operation of the trait.
//! let handlers = Handlers::new().with(GreetService::new(Greeter));
//! let server = Server::new(Config::accepting().handlers(handlers))
//!     .listen_tcp("127.0.0.1:0")
//!     .await?;
//!
//! // Client (either peer may be one): a typed call over any connected `Sock`.
//! let sock = gotalk::tcp::connect(server.local_addr()).await?;
//! let out = GreetClient::greet(&sock, GreetIn { name: "Rasmus".into() }).await?;
//! assert_eq!(out.greeting, "Hello Rasmus");
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Methods may take the connection (`sock: &Sock`, to call the caller back) or a
//! context made from it (`#[gotalk(context)] user: User`, see [`FromSock`]), stream
//! their input ([`StreamIn`]) or output ([`StreamOut`]), and return `T`,
//! `Result<T, E: Display>` or a retry ([`Error::retry`]). An error type of the service's
//! own comes back to the caller typed, in a [`CallError`]. The [`service`] docs have the
//! whole list.
//!
//! ## Underneath
//!
//! Everything the macros generate is built on an untyped core, usable by hand:
//!
//! - [`Sock`]: one connection. `request`, `notify`, streams, limits, shutdown.
//! - [`Handlers`]: what this side answers, by operation name, raw or typed (serde_json).
//! - [`tcp`], [`unix`], [`pipe`], [`Sock::adopt`]: transports. [`Server`] accepts
//!   connections with an accept hook and graceful shutdown. With the default features,
//!   `tls` (rustls) and `ws` (WebSocket: an endpoint to mount in an [axum](https://docs.rs/axum/0.8/axum/) app, serving
//!   our gotalk.js to browsers, and a client).
//! - [`Limits`] and [`SharedBudget`]: every bound a connection sets its peer.
//! - [`middleware`]: code around every handler ([`Handlers::wrap`]) and every call
//!   ([`Config::wrap_calls`]): sign-in checks, logs, timing, metrics.
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
//! let handlers = Handlers::new()
//!     .handle("greet", |input: GreetIn| async move {
//!         Ok::<_, gotalk::Error>(GreetOut { greeting: format!("Hello {}", input.name) })
//!     });
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
//!
//! ## Features
//!
//! - `websocket` (default): [`ws`], on axum 0.8, re-exported as [`gotalk::axum`](#reexport.axum) so that an app
//!   mounts the endpoint on the same version (`gotalk::axum::Router`).
//! - `tls` (default): [`tls`], on rustls 0.23.
//! - `typescript`: `typescript`, a TypeScript module for the browser from the traits
//!   (`#[gotalk::service(typescript)]`), with types declared by ts-rs.
//! - `schema`: JSON Schemas (schemars 1) of the types services carry, in their
//!   [`describe`] description.
//! - `cli`: the `gotalk` command-line tool (`cargo install gotalk --features cli`).
//! - `tower`: tower layers around handlers (`middleware::tower::layer`).
//! - `metrics`: `observe`, metrics (through the `metrics` facade) and a `tracing` span
//!   for every request, call and connection.
//! - `redis`: topics shared by several nodes through Redis (`Topics::redis`).

#![warn(missing_docs)]
// On docs.rs (`--cfg docsrs`, nightly): each gated item says which feature it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod conn;
mod connection;
pub mod describe;
mod error;
mod json;
pub mod middleware;
#[cfg(feature = "metrics")]
pub mod observe;
mod reconnect;
mod service;
mod sync;
mod topics;
mod transport;
mod typed;
#[cfg(feature = "typescript")]
pub mod typescript;
pub mod wire;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

/// The axum the WebSocket endpoint is built on (0.8): build the app that mounts
/// [`ws::Endpoint::routes`] with this one, so that the versions match.
#[cfg(feature = "websocket")]
pub use axum;
pub use conn::{
    pipe, BoxFuture, BoxStream, CallOptions, Config, Handlers, HeartbeatInfo, Limits, Notification,
    RegistrationError, Reply, Request, RequestChunks, ResultStream, SharedBudget, Sock,
    StreamRequest, StreamWriter, RESERVED_PREFIX,
};
pub use connection::{Connection, RESENDS};
pub use error::{CallError, CloseReason, Error, Side};
pub use gotalk_macros::{notification, service};
pub use reconnect::{Reconnecting, ReconnectingBuilder, WhileDisconnected};
/// The schemars that [`describe`] takes JSON Schemas from: derive its `JsonSchema` with
/// `#[schemars(crate = "gotalk::schemars")]`, or depend on schemars 1 yourself.
#[cfg(feature = "schema")]
pub use schemars;
pub use service::{
    CallInfo, Deadline, FromSock, JsonResults, JsonSender, Service, StreamIn, StreamOut,
};
pub use topics::{Everyone, Notify, Topic, Topics};
#[cfg(feature = "tls")]
pub use transport::tls;
#[cfg(feature = "websocket")]
pub use transport::ws;
pub use transport::{tcp, Listening, Peer, Server};
/// The ts-rs that [`typescript`] declares types with: derive its `TS` with
/// `#[ts(crate = "gotalk::ts_rs")]`, or depend on ts-rs 12 yourself.
#[cfg(feature = "typescript")]
pub use ts_rs;

#[cfg(unix)]
pub use transport::unix;
