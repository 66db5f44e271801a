//! Middleware: code around every handler of a [`Handlers`](crate::Handlers) set
//! ([`Handlers::wrap`](crate::Handlers::wrap)) and around every single-result call a
//! connection makes ([`Config::wrap_calls`](crate::Config::wrap_calls)), for what every
//! production service needs in one place: authentication, logging, timing, metrics,
//! rate limits.
//!
//! A middleware is a function of what is about to run and the rest of the chain:
//!
//! ```
//! use std::time::Instant;
//! use gotalk::{middleware::{Incoming, Next}, Handlers, Reply};
//!
//! let handlers = Handlers::new()
//!     .handle("greet", |name: String| async move {
//!         Ok::<_, gotalk::Error>(format!("Hello {name}"))
//!     })
//!     .wrap(|incoming: Incoming, next: Next| async move {
//!         if incoming.size > 1024 {
//!             return Reply::Error("too large".into()); // refused: the handler never runs
//!         }
//!         let started = Instant::now();
//!         let reply = next.run().await;
//!         tracing::info!(op = %incoming.op, peer = incoming.sock.peer(), took = ?started.elapsed());
//!         reply
//!     });
//! ```
//!
//! Middleware is applied when handlers are registered, so a set without any costs
//! nothing per request; with some, each request costs a boxed future per middleware and
//! one more for the handler (BENCHMARKS.md measures it).
//!
//! # Why not tower's `Service`
//!
//! Our own shape is a plain async function, because tower's `Service` takes `&mut self`
//! and `poll_ready`: a handler set is shared by every connection and every request, so
//! each request would clone the service stack and drive a readiness check it rarely
//! needs. Where tower's model fits (a concurrency limit shared by all connections, a
//! timeout, load shedding), bring its layers with `middleware::tower::layer`
//! (feature `tower`): each request then pays that clone, and only then.

#[cfg(feature = "tower")]
pub mod tower;

pub use crate::conn::{Incoming, Kind, Next, NextCall, Outgoing};
