//! Gotalk over WebSocket: the endpoint a web server mounts (the socket and our gotalk.js),
//! a one-call web server, and a client.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use gotalk::{ws, Config, Error, Handlers};
//! let handlers = Handlers::new()
//!     .handle("echo", |text: String| async move { Ok::<_, Error>(text) });
//! let endpoint = ws::Endpoint::new(Config::accepting().handlers(handlers));
//! // The socket at /gotalk/, the script at /gotalk/gotalk.js, files from ./public.
//! let server = ws::WebServer::bind("127.0.0.1:1234", endpoint, Some("public".into())).await?;
//! println!("http://{}/", server.local_addr());
//! server.wait().await;
//! # Ok(()) }
//! ```
//!
//! The endpoint's routes are an axum 0.8 `Router`: merge them into an app built with
//! [`gotalk::axum`](crate::axum) (the same axum), or with your own axum of the same minor
//! version. An app on another axum (say 0.7) fails to merge them with
//! `the trait bound Router<_>: From<axum::routing::Router<_>> is not satisfied`.

mod client;
mod endpoint;
mod frame;
mod handshake;
mod http;
mod inspector;
mod origin;
mod script;
mod socket;
mod stream;

/// The rustls this crate's `wss://` client is built with (for [`connect_tls`]).
pub use crate::tls::rustls;
pub use client::{connect, connect_stream, connect_tls, connect_with};
pub use endpoint::{ConnectRequest, Endpoint, Refusal, WebServer};
pub use http::{serve, HttpLimits};
pub use origin::OriginPolicy;
pub use script::{GOTALK_DTS, GOTALK_JS};
pub use stream::{Incoming, WsMessage, WsStream};
