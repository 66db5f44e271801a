//! Connecting to a Gotalk WebSocket endpoint from Rust, over `ws://` or `wss://`.

use std::sync::Arc;

use axum::http::{HeaderValue, Uri};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::{
    handshake::{self, HandshakeError},
    socket::{Role, WsSocket},
};
use crate::{Config, Error, Sock};

/// The largest WebSocket message a stream opened by [`connect_stream`] accepts.
const STREAM_MAX_MESSAGE: usize = 64 << 20;

/// Connects to a Gotalk WebSocket endpoint (`ws://host:port/path` or `wss://…`) with
/// [`Config::dialling`] defaults. `wss://` verifies the server against the web's root
/// certificates (Mozilla's, built in).
pub async fn connect(url: &str) -> Result<Sock, Error> {
    connect_with(url, Config::dialling()).await
}

/// Connects to a Gotalk WebSocket endpoint with `config`. The request carries an
/// `Origin` made of the URL's scheme, host and port, as a browser's would.
pub async fn connect_with(url: &str, config: Config) -> Result<Sock, Error> {
    open(url, config, None).await
}

/// Connects over `wss://` with a TLS configuration of your own (e.g. a private root
/// certificate, or client certificates).
pub async fn connect_tls(
    url: &str,
    config: Config,
    tls: Arc<rustls::ClientConfig>,
) -> Result<Sock, Error> {
    open(url, config, Some(tls)).await
}

async fn open(
    url: &str,
    config: Config,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Sock, Error> {
    // The largest message we take: a payload within our limit and its header.
    let max_message = config.get_limits().max_payload as usize + 4096 + 32;
    let stream = open_stream(url, tls, max_message).await?;
    Ok(stream.adopt(url.to_string(), Arc::new(config)))
}

/// Opens a WebSocket to a Gotalk endpoint as a plain byte stream (for tools that relay or
/// inspect the protocol; most programs want [`connect`]). `tls` is for `wss://` with a
/// configuration of your own.
pub async fn connect_stream(
    url: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<impl AsyncRead + AsyncWrite + Send + Unpin + 'static, Error> {
    open_stream(url, tls, STREAM_MAX_MESSAGE).await
}

async fn open_stream(
    url: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
    max_message: usize,
) -> Result<WsSocket<TokioIo<Upgraded>>, Error> {
    let uri: Uri = url
        .parse()
        .map_err(|e| invalid(format!("bad websocket url {url:?}: {e}")))?;
    let secure = match uri.scheme_str() {
        Some("ws") => false,
        Some("wss") => true,
        _ => return Err(invalid(format!("{url:?} is not a ws:// or wss:// url"))),
    };
    let Some(authority) = uri.authority() else {
        return Err(invalid(format!("{url:?} names no host")));
    };
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = authority
        .port_u16()
        .unwrap_or(if secure { 443 } else { 80 });
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let scheme = if secure { "https" } else { "http" };
    let origin = HeaderValue::from_str(&format!("{scheme}://{authority}")).ok();
    let tcp = TcpStream::connect((host, port)).await?;
    tcp.set_nodelay(true)?;
    let upgraded = if secure {
        let tls = match tls {
            Some(tls) => tls,
            None => crate::tls::client_config(web_roots())?,
        };
        let stream = crate::tls::handshake(host, tcp, tls).await?;
        handshake::open(stream, authority.as_str(), path, origin).await
    } else {
        handshake::open(tcp, authority.as_str(), path, origin).await
    };
    let io = upgraded.map_err(|e| match e {
        HandshakeError::Http(e) => Error::Io(Arc::new(std::io::Error::other(e))),
        other => Error::Io(Arc::new(std::io::Error::other(other))),
    })?;
    Ok(WsSocket::new(io, Role::Client, max_message))
}

/// The web's root certificates (Mozilla's), built in.
fn web_roots() -> rustls::RootCertStore {
    rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

fn invalid(message: String) -> Error {
    Error::Io(Arc::new(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        message,
    )))
}
