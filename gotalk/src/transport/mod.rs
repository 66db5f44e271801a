//! Transports: TCP, Unix sockets, TLS and WebSocket (one module each), and [`Server`],
//! the accept loop they share. (In-memory pipes are [`crate::pipe`]; any other stream is
//! [`Sock::adopt`].)

use std::{
    collections::HashMap,
    fmt,
    future::Future,
    io,
    sync::{Arc, Weak},
    time::Duration,
};

use tokio_util::sync::CancellationToken;

use crate::{
    sync::{lock, Mutex},
    Config, Sock,
};

pub mod tcp;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(unix)]
pub mod unix;
#[cfg(feature = "websocket")]
pub mod ws;

/// Who is on the other end of a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Peer {
    /// A TCP peer.
    Tcp(std::net::SocketAddr),
    /// A Unix-socket peer (usually unnamed).
    Unix(String),
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(addr) => write!(f, "tcp:{addr}"),
            Self::Unix(path) if path.is_empty() => f.write_str("unix:(unnamed)"),
            Self::Unix(path) => write!(f, "unix:{path}"),
        }
    }
}

type AcceptHook = Arc<dyn Fn(&Peer) -> bool + Send + Sync>;

/// Accepts connections and serves each with the same [`Config`].
///
/// ```no_run
/// # async fn run(handlers: gotalk::Handlers) -> Result<(), gotalk::Error> {
/// use gotalk::{Config, Peer, Server};
/// let server = Server::new(Config::accepting().handlers(handlers))
///     .accept_hook(|peer| matches!(peer, Peer::Tcp(addr) if addr.ip().is_loopback()))
///     .listen_tcp("127.0.0.1:1234")
///     .await?;
/// // ... later: stop accepting, let running requests finish, close.
/// server.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Server {
    config: Config,
    accept_hook: Option<AcceptHook>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .field("accept_hook", &self.accept_hook.is_some())
            .finish()
    }
}

/// A running server: its address, its open connections, and the way to stop it.
/// Dropping it does not stop it; call [`shutdown`](Self::shutdown) or [`close`](Self::close).
pub struct Listening<A> {
    local_addr: A,
    stop: CancellationToken,
    stopped: CancellationToken,
    conns: Arc<Conns>,
}

/// The open connections of a listener or a WebSocket endpoint.
pub(crate) type Conns = Mutex<HashMap<u64, Sock>>;

/// `config` for the connections kept in `conns`: one copy, shared by all of them, whose
/// close hook takes each out of the table. The hook holds the table weakly: a dropped
/// table does not live on in its connections.
pub(crate) fn tracking(conns: &Weak<Conns>, config: Config) -> Arc<Config> {
    let forget = conns.clone();
    Arc::new(config.on_close(move |sock, _| {
        if let Some(conns) = forget.upgrade() {
            lock(&conns).remove(&sock.id());
        }
    }))
}

/// Starts a connection with `config` (from [`tracking`]) and keeps it in `conns` until it
/// closes.
pub(crate) fn start_tracked(
    conns: &Weak<Conns>,
    config: &Arc<Config>,
    start: impl FnOnce(Arc<Config>) -> Sock,
) {
    let sock = start(config.clone());
    if let Some(conns) = conns.upgrade() {
        let mut conns = lock(&conns);
        if !sock.is_closed() {
            conns.insert(sock.id(), sock);
        }
    }
}

impl<A: fmt::Debug> fmt::Debug for Listening<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listening")
            .field("local_addr", &self.local_addr)
            .field("connections", &lock(&self.conns).len())
            .finish()
    }
}

/// What the accept loop needs from a listener.
pub(crate) trait Accept: Send + 'static {
    type Stream: Send + 'static;
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Stream, Peer)>> + Send;
    fn start(stream: Self::Stream, peer: &Peer, config: Arc<Config>) -> Sock;
}

impl Server {
    /// A server whose connections use `config` (usually based on [`Config::accepting`]).
    /// Its connections share one [`SharedBudget`](crate::SharedBudget): the config's,
    /// or one of [`SharedBudget::DEFAULT`](crate::SharedBudget::DEFAULT) bytes.
    pub fn new(config: Config) -> Self {
        Self {
            config: config.with_default_shared_budget(),
            accept_hook: None,
        }
    }

    /// Called for each new connection before anything is read from it; returning `false`
    /// closes it at once.
    pub fn accept_hook(mut self, hook: impl Fn(&Peer) -> bool + Send + Sync + 'static) -> Self {
        self.accept_hook = Some(Arc::new(hook));
        self
    }

    pub(crate) fn start<L: Accept, A>(self, listener: L, local_addr: A) -> Listening<A> {
        let stop = CancellationToken::new();
        let stopped = CancellationToken::new();
        let conns: Arc<Conns> = Arc::default();
        let config = tracking(&Arc::downgrade(&conns), self.config);
        tokio::spawn(accept_loop(
            listener,
            config,
            self.accept_hook,
            stop.clone(),
            stopped.clone(),
            Arc::downgrade(&conns),
        ));
        Listening {
            local_addr,
            stop,
            stopped,
            conns,
        }
    }
}

async fn accept_loop<L: Accept>(
    mut listener: L,
    config: Arc<Config>,
    accept_hook: Option<AcceptHook>,
    stop: CancellationToken,
    stopped: CancellationToken,
    conns: Weak<Conns>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors or a connection reset before accept: wait a
                // little and go on; the listener itself is fine.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Some(hook) = &accept_hook {
            if !hook(&peer) {
                tracing::debug!(%peer, "connection refused by the accept hook");
                continue;
            }
        }
        start_tracked(&conns, &config, |config| L::start(stream, &peer, config));
    }
    stopped.cancel();
}

impl<A: Clone> Listening<A> {
    /// The address the server listens on.
    pub fn local_addr(&self) -> A {
        self.local_addr.clone()
    }

    /// The connections open now.
    pub fn connections(&self) -> Vec<Sock> {
        lock(&self.conns).values().cloned().collect()
    }

    /// Stops accepting, then shuts every connection down gracefully (running requests
    /// finish and their results go out) and waits for all of them.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        self.stopped.cancelled().await;
        let socks = self.connections();
        futures_util::future::join_all(socks.iter().map(Sock::shutdown)).await;
    }

    /// Stops accepting and closes every connection now.
    pub fn close(&self) {
        self.stop.cancel();
        for sock in self.connections() {
            sock.close();
        }
    }

    /// Waits until the server stops accepting (after `shutdown` or `close`).
    pub async fn wait(&self) {
        self.stopped.cancelled().await;
    }
}
