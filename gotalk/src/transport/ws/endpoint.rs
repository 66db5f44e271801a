//! The HTTP side: axum routes to merge at any path, which upgrade `<mount>` to a Gotalk
//! WebSocket and answer `<mount>/gotalk.js` (and its declarations, `<mount>/gotalk.d.ts`);
//! and a one-call web server.

use std::{fmt, net::SocketAddr, path::PathBuf, sync::Arc};

use axum::{
    extract::{ConnectInfo, State},
    http::{header, HeaderMap, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use tokio_util::sync::CancellationToken;

use hyper_util::rt::TokioIo;

use super::{
    handshake,
    http::serve,
    inspector,
    origin::OriginPolicy,
    script,
    socket::{Role, WsSocket},
    HttpLimits,
};
use crate::transport::{start_tracked, tracking, Conns};
use crate::{sync::lock, Config, Sock};

/// The HTTP request that asks to open a socket, as the connect hook sees it.
#[derive(Debug)]
pub struct ConnectRequest {
    /// Its headers (cookies, authorization, …).
    pub headers: HeaderMap,
    /// The URI it asked for.
    pub uri: Uri,
    /// The peer's address, when the server was started with connect info (as
    /// [`WebServer`] is).
    pub peer: Option<SocketAddr>,
}

impl ConnectRequest {
    /// The value of cookie `name`, if the request has it.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }
}

/// A refused socket: the HTTP status and a reason sent as the body.
#[derive(Clone, Debug)]
pub struct Refusal {
    /// The status, e.g. 401 or 403.
    pub status: StatusCode,
    /// Why, in a few words.
    pub reason: String,
}

impl Refusal {
    /// A refusal with this status and reason.
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.reason)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.status, self.reason).into_response()
    }
}

type ConnectHook = Arc<dyn Fn(&ConnectRequest) -> Result<(), Refusal> + Send + Sync>;

/// A Gotalk WebSocket endpoint: merge its [`routes`](Self::routes) into an axum
/// application at any path (`app.merge(endpoint.routes("/gotalk"))`); the socket is then
/// at `/gotalk` and `/gotalk/`, our gotalk.js at `/gotalk/gotalk.js` and its TypeScript
/// declarations at `/gotalk/gotalk.d.ts`.
#[derive(Clone)]
pub struct Endpoint {
    /// Shared by every socket, with the hook that takes each out of `conns`.
    config: Arc<Config>,
    origins: OriginPolicy,
    on_connect: Option<ConnectHook>,
    max_message_size: usize,
    conns: Arc<Conns>,
    /// Where [`routes`](Self::routes) serves the inspector page, if anywhere.
    inspector: Option<Arc<str>>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("config", &*self.config)
            .field("origins", &self.origins)
            .field("max_message_size", &self.max_message_size)
            .field("inspector", &self.inspector)
            .finish()
    }
}

impl Endpoint {
    /// An endpoint serving every socket with `config` (handlers, limits, heartbeats).
    /// The largest WebSocket message accepted is the limits' `max_payload` plus room for
    /// a header, unless set with [`max_message_size`](Self::max_message_size).
    ///
    /// Its sockets share one [`SharedBudget`](crate::SharedBudget): the config's, or one
    /// of [`SharedBudget::DEFAULT`](crate::SharedBudget::DEFAULT) bytes.
    pub fn new(config: Config) -> Self {
        let max_message_size = config.get_limits().max_payload as usize + 4096 + 32;
        let conns = Arc::default();
        Self {
            config: tracking(&Arc::downgrade(&conns), config.with_default_shared_budget()),
            origins: OriginPolicy::default(),
            on_connect: None,
            max_message_size,
            conns,
            inspector: None,
        }
    }

    /// Which origins may open a socket. Default: [`OriginPolicy::SameOrigin`].
    pub fn origins(mut self, policy: OriginPolicy) -> Self {
        self.origins = policy;
        self
    }

    /// Called for every request to open a socket, after the origin check: returning a
    /// [`Refusal`] answers it with that status instead.
    pub fn on_connect(
        mut self,
        hook: impl Fn(&ConnectRequest) -> Result<(), Refusal> + Send + Sync + 'static,
    ) -> Self {
        self.on_connect = Some(Arc::new(hook));
        self
    }

    /// The largest WebSocket message (and frame) accepted from a peer, in bytes.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Also serves the inspector page at `path` (e.g. `/inspector`; never by default): a
    /// page for developers that connects to this endpoint with our gotalk.js, lists the
    /// operations the server describes (with [`Config::describe`](crate::Config::describe)
    /// on) with their docs, offers each a JSON editor prefilled from its input schema,
    /// makes requests, stream requests and notifications, shows results, errors and
    /// streamed parts as they come and the notifications the server sends, and logs every
    /// message both ways in the words of `gotalk trace`. It needs nothing from the
    /// network beyond this server. Anyone who may open a socket here may use it: mount it
    /// on servers for development, or behind the same sign-in as the socket.
    pub fn inspector(mut self, path: &str) -> Self {
        self.inspector = Some(path.into());
        self
    }

    /// The sockets open now (e.g. to notify every page).
    pub fn connections(&self) -> Vec<Sock> {
        lock(&self.conns).values().cloned().collect()
    }

    /// The routes for an endpoint mounted at `path` (e.g. `/gotalk`): the socket at
    /// `path` and `path/`, gotalk.js at `path/gotalk.js` (where a page loading it makes it
    /// connect by default), its declarations at `path/gotalk.d.ts`
    /// ([`GOTALK_DTS`](super::GOTALK_DTS)), and the [`inspector`](Self::inspector) page
    /// if one was asked for. The router is axum 0.8's ([`crate::axum`]):
    ///
    /// ```
    /// fn app(endpoint: &gotalk::ws::Endpoint) -> gotalk::axum::Router {
    ///     gotalk::axum::Router::new().merge(endpoint.routes("/gotalk"))
    /// }
    /// ```
    pub fn routes<S: Clone + Send + Sync + 'static>(&self, path: &str) -> Router<S> {
        let path = path.trim_end_matches('/');
        let socket = if path.is_empty() { "/" } else { path };
        let mut router = Router::new().route(socket, get(upgrade));
        if !path.is_empty() {
            router = router.route(&format!("{path}/"), get(upgrade));
        }
        if let Some(page_path) = &self.inspector {
            let page: Arc<str> = inspector::page(path).into();
            router = router.route(
                page_path,
                get(move || {
                    let page = page.clone();
                    async move { inspector::serve(&page) }
                }),
            );
        }
        router
            .route(
                &format!("{path}/gotalk.js"),
                get(|headers: HeaderMap| async move { script::serve(&script::SCRIPT, &headers) }),
            )
            .route(
                &format!("{path}/gotalk.d.ts"),
                get(|headers: HeaderMap| async move {
                    script::serve(&script::DECLARATIONS, &headers)
                }),
            )
            .with_state(self.clone())
    }
}

async fn upgrade(
    State(endpoint): State<Endpoint>,
    mut parts: axum::http::request::Parts,
) -> Response {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let answer = match handshake::accept(&parts.headers) {
        Ok(answer) => answer,
        Err((status, reason)) => return handshake::refusal(status, reason),
    };
    let Some(upgrading) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
        // A request that did not come through hyper (e.g. a test calling the router).
        return Refusal::new(StatusCode::UPGRADE_REQUIRED, "no connection to upgrade")
            .into_response();
    };
    let (headers, uri) = (parts.headers, parts.uri);
    let text = |name| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("(not text)"))
    };
    if let Err(refusal) = endpoint
        .origins
        .check(text(header::ORIGIN), text(header::HOST))
    {
        tracing::debug!("websocket refused: {refusal}");
        return refusal.into_response();
    }
    let request = ConnectRequest { headers, uri, peer };
    if let Some(hook) = &endpoint.on_connect {
        if let Err(refusal) = hook(&request) {
            tracing::debug!("websocket refused by the connect hook: {refusal}");
            return refusal.into_response();
        }
    }
    let name = match request.peer {
        Some(addr) => format!("ws:{addr}"),
        None => "ws".to_string(),
    };
    tokio::spawn(async move {
        let io = match upgrading.await {
            Ok(upgraded) => TokioIo::new(upgraded),
            Err(e) => {
                tracing::debug!("websocket upgrade failed: {e}");
                return;
            }
        };
        let socket = WsSocket::new(io, Role::Server, endpoint.max_message_size);
        start_tracked(
            &Arc::downgrade(&endpoint.conns),
            &endpoint.config,
            |config| socket.adopt(name, config),
        );
    });
    answer
}

/// A web server in one call: the endpoint at `/gotalk/` and, optionally, the files of a
/// folder at `/` (an `index.html` answers for its folder), served within [`HttpLimits`].
#[derive(Debug)]
pub struct WebServer {
    local_addr: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl WebServer {
    /// Binds `addr` and starts serving, with the default [`HttpLimits`].
    pub async fn bind(
        addr: impl tokio::net::ToSocketAddrs,
        endpoint: Endpoint,
        files: Option<PathBuf>,
    ) -> std::io::Result<Self> {
        Self::bind_with(addr, endpoint, files, HttpLimits::default()).await
    }

    /// [`bind`](Self::bind) with the HTTP side bounded by `limits`.
    pub async fn bind_with(
        addr: impl tokio::net::ToSocketAddrs,
        endpoint: Endpoint,
        files: Option<PathBuf>,
        limits: HttpLimits,
    ) -> std::io::Result<Self> {
        let mut app: Router = endpoint.routes("/gotalk");
        if let Some(dir) = files {
            app = app.fallback_service(tower_http::services::ServeDir::new(dir));
        }
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(serve(listener, app, limits, async move {
            stopped.cancelled().await
        }));
        Ok(Self {
            local_addr,
            stop,
            task,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting and waits for open HTTP requests to finish. (Open sockets are
    /// the endpoint's: close them through [`Endpoint::connections`].)
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }

    /// Serves until the process ends.
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}
