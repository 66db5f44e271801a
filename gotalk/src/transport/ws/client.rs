//! Connecting to a Gotalk WebSocket endpoint from Rust.

use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};

use super::WsStream;
use crate::{Config, Error, Sock};

/// Connects to a Gotalk WebSocket endpoint (`ws://host:port/path`) with
/// [`Config::dialling`] defaults.
pub async fn connect(url: &str) -> Result<Sock, Error> {
    connect_with(url, Config::dialling()).await
}

/// Connects to a Gotalk WebSocket endpoint with `config`. The request carries an
/// `Origin` made of the URL's scheme, host and port (servers refuse a missing one by
/// default, as browsers always send it).
pub async fn connect_with(url: &str, config: Config) -> Result<Sock, Error> {
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
    let (ws, _response) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(io_error)?;
    Ok(Sock::adopt(WsStream::new(ws), url, config))
}

fn io_error(e: tokio_tungstenite::tungstenite::Error) -> Error {
    Error::Io(std::sync::Arc::new(std::io::Error::other(e)))
}
