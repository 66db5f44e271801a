//! Serving HTTP with bounds, for a server that faces the internet: what `axum::serve`
//! does, plus hyper's header-read timeout (which also ends idle keep-alive connections)
//! and a cap on connections that have not become sockets yet.

use std::{
    future::{poll_fn, Future},
    net::SocketAddr,
    sync::Arc,
    time::Duration,
};

use axum::{extract::ConnectInfo, Router};
use hyper::{body::Incoming, server::conn::http1, service::service_fn, Request};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower_service::Service;

/// The bounds of the HTTP side of a web server: what a client may hold before its
/// connection becomes a socket (or while it only fetches files).
///
/// ```
/// use std::time::Duration;
/// let limits = gotalk::ws::HttpLimits::default()
///     .header_read_timeout(Duration::from_secs(5))
///     .max_connections(64);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HttpLimits {
    /// A connection that has not sent a whole request header this long after it opened,
    /// or after its last response, is closed: a silent client, one sending its header a
    /// byte at a time, and an idle keep-alive connection all end here. Default: 10 s.
    pub header_read_timeout: Duration,
    /// HTTP connections served at once, not counting those that became sockets (the
    /// [`Limits`](crate::Limits) of the endpoint bound those). Past it, new connections
    /// wait in the kernel's listen queue, holding no descriptor of this process, so its
    /// other listeners keep serving. Default: 256.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 256,
        }
    }
}

impl HttpLimits {
    /// Sets [`header_read_timeout`](Self::header_read_timeout).
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// Sets [`max_connections`](Self::max_connections).
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections;
        self
    }
}

/// Serves `app` (e.g. an [`Endpoint`](super::Endpoint)'s routes merged into your own)
/// on `listener` within `limits` until `shutdown` completes; then stops accepting and
/// lets open requests finish. Handlers can read the client's address with
/// `ConnectInfo<SocketAddr>`. This is `axum::serve` with the bounds a server facing the
/// internet needs ([`WebServer`](super::WebServer) serves this way).
///
/// ```no_run
/// # async fn run(endpoint: gotalk::ws::Endpoint) -> std::io::Result<()> {
/// let app: axum::Router = endpoint.routes("/gotalk");
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:1234").await?;
/// let forever = std::future::pending::<()>(); // or e.g. a Ctrl-C future
/// gotalk::ws::serve(listener, app, gotalk::ws::HttpLimits::default(), forever).await;
/// # Ok(()) }
/// ```
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let stop = CancellationToken::new();
    let stopping = stop.clone();
    tokio::join!(
        async move {
            shutdown.await;
            stopping.cancel();
        },
        accept_loop(listener, app, limits, stop)
    );
}

async fn accept_loop(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    stop: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let open = TaskTracker::new();
    loop {
        // A slot first: past the cap, connections wait in the kernel, not here.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            () = stop.cancelled() => break,
        };
        let Ok(slot) = slot else { break };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was
                    // taken: wait a little and go on; the listener itself is fine.
                    tracing::warn!("http accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        let (app, stop, header_read_timeout) =
            (app.clone(), stop.clone(), limits.header_read_timeout);
        open.spawn(async move {
            serve_connection(stream, peer, app, header_read_timeout, stop).await;
            // The slot is held until the connection closes or becomes a socket (hyper
            // hands the upgraded stream on and ends the connection).
            drop(slot);
        });
    }
    open.close();
    open.wait().await;
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    header_read_timeout: Duration,
    stop: CancellationToken,
) {
    let service = service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let mut app = app.clone();
        async move {
            poll_fn(|cx| Service::<Request<Incoming>>::poll_ready(&mut app, cx)).await?;
            app.call(request).await
        }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%peer, "http connection ended: {e}");
            }
        }
        () = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// The elements of a header that is a comma-separated list (RFC 9110 5.6.1), across all
/// its lines, trimmed: `Connection`, `Upgrade`, `If-None-Match`, `Accept-Encoding`.
pub(super) fn list(
    headers: &axum::http::HeaderMap,
    name: axum::http::header::HeaderName,
) -> impl Iterator<Item = &str> {
    headers
        .get_all(name)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}
