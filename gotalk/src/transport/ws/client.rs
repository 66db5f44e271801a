//! Connecting to a Gotalk WebSocket endpoint from Rust, over `ws://` or `wss://`.

use std::sync::Arc;

use tokio_tungstenite::{
    tungstenite::{client::IntoClientRequest, http::HeaderValue},
    Connector,
};

use super::WsStream;
use crate::{Config, Error, Sock};

/// Connects to a Gotalk WebSocket endpoint (`ws://host:port/path` or `wss://…`) with
/// [`Config::dialling`] defaults. `wss://` verifies the server against the web's root
/// certificates (Mozilla's, built in).
pub async fn connect(url: &str) -> Result<Sock, Error> {
    connect_with(url, Config::dialling()).await
}

/// Connects to a Gotalk WebSocket endpoint with `config`. The request carries an
/// `Origin` made of the URL's scheme, host and port (servers refuse a missing one by
/// default, as browsers always send it).
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
    open(url, config, Some(Connector::Rustls(tls))).await
}

async fn open(url: &str, config: Config, tls: Option<Connector>) -> Result<Sock, Error> {
    let stream = open_stream(url, tls).await?;
    Ok(Sock::adopt(stream, url, config))
}

/// Opens a WebSocket to a Gotalk endpoint as a plain byte stream (for tools that relay or
/// inspect the protocol; most programs want [`connect`]). `tls` is for `wss://` with a
/// configuration of your own.
pub async fn connect_stream(
    url: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static, Error> {
    open_stream(url, tls.map(Connector::Rustls)).await
}

async fn open_stream(
    url: &str,
    tls: Option<Connector>,
) -> Result<impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static, Error> {
    let mut request = url.into_client_request().map_err(io_error)?;
    let uri = request.uri().clone();
    let scheme = if uri.scheme_str() == Some("wss") {
        "https"
    } else {
        "http"
    };
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    if let Ok(origin) = HeaderValue::from_str(&format!("{scheme}://{authority}")) {
        request.headers_mut().entry("origin").or_insert(origin);
    }
    let (ws, _response) =
        tokio_tungstenite::connect_async_tls_with_config(request, None, true, tls)
            .await
            .map_err(io_error)?;
    Ok(WsStream::new(ws))
}

fn io_error(e: tokio_tungstenite::tungstenite::Error) -> Error {
    Error::Io(std::sync::Arc::new(std::io::Error::other(e)))
}
