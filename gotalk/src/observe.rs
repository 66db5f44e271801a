//! Observability built in (feature `metrics`): a `tracing` span and metrics for every
//! request a set of handlers answers and every call a connection makes, through the
//! [`metrics`](https://docs.rs/metrics) facade, so any exporter (Prometheus, StatsD, …)
//! collects them.
//!
//! ```
//! use gotalk::{observe, Config, Handlers};
//!
//! let handlers = Handlers::new()
//!     .handle("greet", |name: String| async move {
//!         Ok::<_, gotalk::Error>(format!("Hello {name}"))
//!     })
//!     .wrap(observe::requests()); // the requests the handlers answer
//! let config = Config::accepting().handlers(handlers).observe(); // connections and calls
//! ```
//!
//! Install the metrics recorder before the first request: each operation's metrics are
//! registered with the recorder there is when it is first seen.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `gotalk_requests_total` | counter | `op`, `outcome` (`ok`, `error`, `retry`, `stream`, `notification`) |
//! | `gotalk_requests_in_flight` | gauge | `op` |
//! | `gotalk_request_duration_seconds` | histogram | `op` |
//! | `gotalk_request_bytes_in_total` | counter | `op` (request payloads) |
//! | `gotalk_request_bytes_out_total` | counter | `op` (single results and errors) |
//! | `gotalk_calls_total` | counter | `op`, `outcome` (`ok`, `error`, `retry`, `timeout`, `closed`, `other`) |
//! | `gotalk_calls_in_flight` | gauge | `op` |
//! | `gotalk_call_duration_seconds` | histogram | `op` |
//! | `gotalk_connections_open` | gauge | |
//! | `gotalk_connections_total` | counter | |
//! | `gotalk_bytes_read_total`, `gotalk_bytes_written_total` | counter | |
//!
//! A request's `op` label is the name of the handler that ran it (`*` for a set's
//! fallback), never a name the peer made up, so a peer cannot grow the label set. The
//! connection metrics are kept by connections whose [`Config`] has
//! `observe()`; nothing is counted, or costs anything, without it.
//!
//! The span, `gotalk.request` at level `DEBUG` (`RUST_LOG=gotalk=debug`), has the fields `conn`, `peer`, `op`, `id`
//! (the request ID on the wire), `kind`, and, once the handler is done, `outcome` and
//! `duration_us`; a handler's own events are inside it.

use std::{
    collections::HashMap,
    sync::{Arc, PoisonError, RwLock},
    time::Instant,
};

use bytes::Bytes;
use metrics::{Counter, Gauge, Histogram};
use tracing::{field, Instrument};

use crate::{
    conn::{BYTES_READ, BYTES_WRITTEN, CONNECTIONS, CONNECTIONS_OPEN},
    middleware::{Incoming, Kind, Next, NextCall, Outgoing},
    BoxFuture, Config, Error, Reply,
};

impl Config {
    /// Keeps metrics of the connection (open, opened, bytes read and written) and of
    /// its single-result calls ([`observe::calls`](calls)), through the `metrics` facade
    /// (feature `metrics`). For the requests its handlers answer, wrap them in
    /// [`observe::requests`](requests).
    pub fn observe(self) -> Self {
        self.count_connection().wrap_calls(calls())
    }
}

/// Middleware for [`Handlers::wrap`](crate::Handlers::wrap): a span and metrics for
/// every request and notification the set handles.
pub fn requests() -> impl Fn(Incoming, Next) -> BoxFuture<Reply> + Send + Sync + 'static {
    describe();
    let metrics = PerOp::<RequestMetrics>::default();
    move |incoming, next| {
        let handler = if incoming.handler.is_empty() {
            "*"
        } else {
            &*incoming.handler
        };
        let m = metrics.get(handler);
        let span = tracing::debug_span!(
            "gotalk.request",
            conn = incoming.sock.id(),
            peer = incoming.sock.peer(),
            op = %incoming.op,
            id = field::Empty,
            kind = ?incoming.kind,
            outcome = field::Empty,
            duration_us = field::Empty,
        );
        if let (Some(id), false) = (incoming.id, span.is_disabled()) {
            span.record("id", String::from_utf8_lossy(&id).as_ref());
        }
        Box::pin(async move {
            m.bytes_in.increment(incoming.size as u64);
            m.in_flight.increment(1.0);
            let started = Instant::now();
            let reply = next.run().instrument(span.clone()).await;
            let took = started.elapsed();
            m.in_flight.decrement(1.0);
            m.duration.record(took.as_secs_f64());
            let (outcome, counter) = match (&reply, incoming.kind) {
                (_, Kind::Notification) => ("notification", &m.notification),
                (Reply::Result(bytes), _) => {
                    m.bytes_out.increment(bytes.len() as u64);
                    ("ok", &m.ok)
                }
                (Reply::Error(text), _) => {
                    m.bytes_out.increment(text.len() as u64);
                    ("error", &m.error)
                }
                (Reply::Retry { .. }, _) => ("retry", &m.retry),
                (Reply::Stream(_), _) => ("stream", &m.stream),
            };
            counter.increment(1);
            if !span.is_disabled() {
                span.record("outcome", outcome);
                span.record("duration_us", took.as_micros() as u64);
            }
            reply
        })
    }
}

/// Middleware for [`Config::wrap_calls`](crate::Config::wrap_calls): metrics for every
/// single-result call the connection makes.
pub fn calls(
) -> impl Fn(Outgoing, NextCall) -> BoxFuture<Result<Bytes, Error>> + Send + Sync + 'static {
    describe();
    let metrics = PerOp::<CallMetrics>::default();
    move |call, next| {
        let m = metrics.get(&call.op);
        Box::pin(async move {
            m.in_flight.increment(1.0);
            let started = Instant::now();
            let result = next.run().await;
            m.in_flight.decrement(1.0);
            m.duration.record(started.elapsed().as_secs_f64());
            let counter = match &result {
                Ok(_) => &m.ok,
                Err(Error::Remote(_)) => &m.error,
                Err(Error::Retry { .. }) => &m.retry,
                Err(Error::Timeout { .. }) => &m.timeout,
                Err(Error::Closed(_)) => &m.closed,
                Err(_) => &m.other,
            };
            counter.increment(1);
            result
        })
    }
}

/// Each operation's metric handles, registered once: a request costs a map lookup
/// under a read lock, not the recorder's own lookup of every metric by name and labels.
struct PerOp<M>(Arc<RwLock<HashMap<Box<str>, Arc<M>>>>);

impl<M> Default for PerOp<M> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

trait ForOp {
    fn register(op: &str) -> Self;
}

impl<M: ForOp> PerOp<M> {
    fn get(&self, op: &str) -> Arc<M> {
        if let Some(m) = self
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(op)
        {
            return m.clone();
        }
        let mut map = self.0.write().unwrap_or_else(PoisonError::into_inner);
        map.entry(op.into())
            .or_insert_with(|| Arc::new(M::register(op)))
            .clone()
    }
}

struct RequestMetrics {
    ok: Counter,
    error: Counter,
    retry: Counter,
    stream: Counter,
    notification: Counter,
    in_flight: Gauge,
    duration: Histogram,
    bytes_in: Counter,
    bytes_out: Counter,
}

impl ForOp for RequestMetrics {
    fn register(op: &str) -> Self {
        let outcome = |outcome: &'static str| metrics::counter!(REQUESTS, "op" => op.to_owned(), "outcome" => outcome);
        Self {
            ok: outcome("ok"),
            error: outcome("error"),
            retry: outcome("retry"),
            stream: outcome("stream"),
            notification: outcome("notification"),
            in_flight: metrics::gauge!(REQUESTS_IN_FLIGHT, "op" => op.to_owned()),
            duration: metrics::histogram!(REQUEST_DURATION, "op" => op.to_owned()),
            bytes_in: metrics::counter!(REQUEST_BYTES_IN, "op" => op.to_owned()),
            bytes_out: metrics::counter!(REQUEST_BYTES_OUT, "op" => op.to_owned()),
        }
    }
}

struct CallMetrics {
    ok: Counter,
    error: Counter,
    retry: Counter,
    timeout: Counter,
    closed: Counter,
    other: Counter,
    in_flight: Gauge,
    duration: Histogram,
}

impl ForOp for CallMetrics {
    fn register(op: &str) -> Self {
        let outcome = |outcome: &'static str| metrics::counter!(CALLS, "op" => op.to_owned(), "outcome" => outcome);
        Self {
            ok: outcome("ok"),
            error: outcome("error"),
            retry: outcome("retry"),
            timeout: outcome("timeout"),
            closed: outcome("closed"),
            other: outcome("other"),
            in_flight: metrics::gauge!(CALLS_IN_FLIGHT, "op" => op.to_owned()),
            duration: metrics::histogram!(CALL_DURATION, "op" => op.to_owned()),
        }
    }
}

const REQUESTS: &str = "gotalk_requests_total";
const REQUESTS_IN_FLIGHT: &str = "gotalk_requests_in_flight";
const REQUEST_DURATION: &str = "gotalk_request_duration_seconds";
const REQUEST_BYTES_IN: &str = "gotalk_request_bytes_in_total";
const REQUEST_BYTES_OUT: &str = "gotalk_request_bytes_out_total";
const CALLS: &str = "gotalk_calls_total";
const CALLS_IN_FLIGHT: &str = "gotalk_calls_in_flight";
const CALL_DURATION: &str = "gotalk_call_duration_seconds";

/// The metrics' help texts, for exporters that show them.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(REQUESTS, "Requests and notifications handled, by outcome");
    describe_gauge!(REQUESTS_IN_FLIGHT, "Requests being handled");
    describe_histogram!(REQUEST_DURATION, Unit::Seconds, "Time to handle a request");
    describe_counter!(REQUEST_BYTES_IN, Unit::Bytes, "Request payload bytes");
    describe_counter!(
        REQUEST_BYTES_OUT,
        Unit::Bytes,
        "Single result and error bytes"
    );
    describe_counter!(CALLS, "Calls made to peers, by outcome");
    describe_gauge!(CALLS_IN_FLIGHT, "Calls waiting for their result");
    describe_histogram!(CALL_DURATION, Unit::Seconds, "Time for a call's result");
    describe_gauge!(CONNECTIONS_OPEN, "Connections open");
    describe_counter!(CONNECTIONS, "Connections opened");
    describe_counter!(BYTES_READ, Unit::Bytes, "Bytes read from peers");
    describe_counter!(BYTES_WRITTEN, Unit::Bytes, "Bytes written to peers");
}
