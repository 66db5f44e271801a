//! How a connection is set up: its handlers, limits, heartbeats and hooks.

use std::{fmt, future::Future, sync::Arc, time::Duration};

use bytes::Bytes;

use super::{
    around_calls::{AroundCall, NextCall, Outgoing},
    Handlers, Limits, SharedBudget, Sock,
};
use crate::error::{CloseReason, Error};

/// A heartbeat received from the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeartbeatInfo {
    /// The peer's load: 0 idle .. 0xffff overloaded.
    pub load: u16,
    /// The peer's clock, UNIX seconds.
    pub time: u32,
}

type CloseHook = Arc<dyn Fn(&Sock, &CloseReason) + Send + Sync>;
type HeartbeatHook = Arc<dyn Fn(&Sock, HeartbeatInfo) + Send + Sync>;

/// The setup of one connection: the handlers that answer the peer, the limits, the
/// heartbeat interval and the hooks.
///
/// Start from [`Config::dialling`] for connections this side opens, or
/// [`Config::accepting`] for ones it accepts: they differ in their defaults the way the
/// reference does (a dialling side sends a heartbeat every 20 s and has no read timeout;
/// an accepting side sends none and closes after 30 s without a message).
///
/// ```
/// use std::time::Duration;
/// use gotalk::{Config, Handlers, Limits};
/// let config = Config::accepting()
///     .handlers(Handlers::new())
///     .limits(Limits::default().max_single_requests(16))
///     .on_close(|sock, reason| eprintln!("{} closed: {reason}", sock.peer()));
/// ```
#[derive(Clone)]
pub struct Config {
    pub(super) handlers: Handlers,
    pub(super) limits: Limits,
    pub(super) heartbeat_interval: Option<Duration>,
    pub(super) on_heartbeat: Option<HeartbeatHook>,
    pub(super) on_close: Vec<CloseHook>,
    pub(super) shared_budget: Option<SharedBudget>,
    /// Whether this side speaks our extension (cancellation and deadlines).
    pub(super) extensions: bool,
    /// Whether this side announces the extension first (it dials), or only in answer.
    pub(super) announces_first: bool,
    /// Whether this side describes its handlers to a peer that asks.
    pub(super) describe: bool,
    /// Middleware around this side's single-result calls, innermost first.
    pub(super) around_calls: Vec<AroundCall>,
    /// Whether the connection keeps its metrics (`observe`).
    #[cfg(feature = "metrics")]
    pub(super) observe: bool,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("handlers", &self.handlers)
            .field("limits", &self.limits)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("on_heartbeat", &self.on_heartbeat.is_some())
            .field("on_close", &self.on_close.len())
            .field("shared_budget", &self.shared_budget)
            .field("extensions", &self.extensions)
            .field("describe", &self.describe)
            .field("around_calls", &self.around_calls.len())
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Defaults for a connection this side dials: heartbeats every 20 s, no read timeout,
    /// no default call timeout.
    pub fn dialling() -> Self {
        Self {
            handlers: Handlers::new(),
            limits: Limits::default().read_timeout(None).call_timeout(None),
            heartbeat_interval: Some(Duration::from_secs(20)),
            on_heartbeat: None,
            on_close: Vec::new(),
            shared_budget: None,
            extensions: true,
            announces_first: true,
            describe: false,
            around_calls: Vec::new(),
            #[cfg(feature = "metrics")]
            observe: false,
        }
    }

    /// Defaults for a connection this side accepts: no heartbeats, a 30 s read timeout,
    /// and calls to the peer time out after 30 s.
    pub fn accepting() -> Self {
        Self {
            limits: Limits::default(),
            heartbeat_interval: None,
            announces_first: false,
            ..Self::dialling()
        }
    }

    /// The handlers that answer the peer's requests and notifications.
    pub fn handlers(mut self, handlers: Handlers) -> Self {
        self.handlers = handlers;
        self
    }

    /// Whether this side speaks gotalk-rs's protocol extension: a call given up (its
    /// future dropped, its timeout passed) is cancelled at the peer, and a call's timeout
    /// travels with it as the handler's deadline (`EXTENSIONS.md`). On by default. It is
    /// only used with a peer that announces it too: a dialling side announces it right
    /// after its version (a plain protocol-1 peer ignores that notification), an accepting
    /// side only in answer. Off, the connection is plain protocol version 1 both ways.
    pub fn extensions(mut self, on: bool) -> Self {
        self.extensions = on;
        self
    }

    /// Whether this side describes what it serves to a peer that asks: it announces
    /// `describe` with the extension and answers `gotalk:describe` with the description
    /// of the connection's handlers ([`Handlers::describe`]: names, kinds, docs,
    /// timeouts, types and their JSON Schemas), which `gotalk describe`, `gotalk call`'s
    /// payload check and the inspector page read. Off by default: a public server need
    /// not publish its API. The answer does not pass through the handlers' middleware;
    /// it lists the set the connection has when asked (see
    /// [`Sock::set_handlers`](crate::Sock::set_handlers)). Needs
    /// [`extensions`](Self::extensions), which is on by default.
    pub fn describe(mut self, on: bool) -> Self {
        self.describe = on;
        self
    }

    /// The limits this side enforces on the peer.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// How often to send a heartbeat; `None` for never.
    pub fn heartbeat_interval(mut self, every: Option<Duration>) -> Self {
        self.heartbeat_interval = every;
        self
    }

    /// Called for every heartbeat the peer sends.
    pub fn on_heartbeat(
        mut self,
        hook: impl Fn(&Sock, HeartbeatInfo) + Send + Sync + 'static,
    ) -> Self {
        self.on_heartbeat = Some(Arc::new(hook));
        self
    }

    /// Called once when the connection closes, with the reason. Several hooks may be added.
    pub fn on_close(mut self, hook: impl Fn(&Sock, &CloseReason) + Send + Sync + 'static) -> Self {
        self.on_close.push(Arc::new(hook));
        self
    }

    /// A byte budget this connection shares with every other connection given the same
    /// one (see [`SharedBudget`]). A [`Server`](crate::Server) or WebSocket
    /// [`Endpoint`](crate::ws::Endpoint) whose config has none gives its connections one
    /// of [`SharedBudget::DEFAULT`] bytes.
    pub fn shared_budget(mut self, budget: &SharedBudget) -> Self {
        self.shared_budget = Some(budget.clone());
        self
    }

    /// The config with a shared budget: its own, or a new default one.
    pub(crate) fn with_default_shared_budget(mut self) -> Self {
        if self.shared_budget.is_none() {
            self.shared_budget = Some(SharedBudget::new(SharedBudget::DEFAULT));
        }
        self
    }

    /// Wraps every single-result call this side makes on the connection
    /// (`request_raw`, `request`, a generated client's single-result methods) in
    /// `middleware`: an async function of the call about to go out ([`Outgoing`]: the
    /// connection, operation, size, timeout and retries) and the rest of the chain
    /// ([`NextCall`]: the call itself, with its timeout and retries). It may refuse
    /// (return an error without running `next`), time, log or count. Middleware added
    /// later runs first. Stream requests and notifications do not pass through it.
    ///
    /// ```
    /// use gotalk::{middleware::{NextCall, Outgoing}, Config};
    /// let config = Config::dialling().wrap_calls(|call: Outgoing, next: NextCall| async move {
    ///     let started = std::time::Instant::now();
    ///     let result = next.run().await;
    ///     tracing::debug!(op = &*call.op, took = ?started.elapsed(), ok = result.is_ok());
    ///     result
    /// });
    /// ```
    pub fn wrap_calls<F, Fut>(mut self, middleware: F) -> Self
    where
        F: Fn(Outgoing, NextCall) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Bytes, Error>> + Send + 'static,
    {
        self.around_calls
            .push(Arc::new(move |call, next| Box::pin(middleware(call, next))));
        self
    }

    /// Counts the connection in the connection metrics (`Config::observe`, in
    /// `observe.rs`, which also counts its calls).
    #[cfg(feature = "metrics")]
    pub(crate) fn count_connection(mut self) -> Self {
        self.observe = true;
        self
    }

    /// The limits set so far.
    pub fn get_limits(&self) -> &Limits {
        &self.limits
    }
}
