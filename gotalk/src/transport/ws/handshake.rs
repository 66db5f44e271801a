//! The opening handshake (RFC 6455 section 4) on both ends, over hyper: the server answers
//! an upgrade request with `101`; the client sends one and checks the answer. What hyper
//! hands over afterwards (with any bytes read past the handshake) is the WebSocket's
//! byte stream.

use axum::{
    body::Body,
    http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode},
};
use bytes::Bytes;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::handshake::{client::generate_key, derive_accept_key};

/// Whether a comma-separated header (`Connection`, `Upgrade`) lists `token`, in any case.
fn lists(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    super::http::list(headers, name).any(|t| t.eq_ignore_ascii_case(token))
}

/// Checks a request to open a WebSocket: the `101` that accepts it, or why not (the
/// status, `400` or `426`, and a reason).
pub(super) fn accept(headers: &HeaderMap) -> Result<Response<Body>, (StatusCode, &'static str)> {
    if !lists(headers, header::CONNECTION, "upgrade")
        || !lists(headers, header::UPGRADE, "websocket")
    {
        return Err((StatusCode::BAD_REQUEST, "not a websocket upgrade request"));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        return Err((StatusCode::UPGRADE_REQUIRED, "websocket version 13 only"));
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return Err((StatusCode::BAD_REQUEST, "no Sec-WebSocket-Key"));
    };
    let accept = derive_accept_key(key.as_bytes());
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    Ok(response)
}

/// The answer to a request [`accept`] refused (naming the version we speak on a `426`).
pub(super) fn refusal(status: StatusCode, reason: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(reason));
    *response.status_mut() = status;
    if status == StatusCode::UPGRADE_REQUIRED {
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
    }
    response
}

/// Why a client's handshake failed.
#[derive(Debug)]
pub(super) enum HandshakeError {
    Http(hyper::Error),
    /// The server answered with another status than `101`.
    Refused(StatusCode, String),
    /// A `101` without the accept key RFC 6455 requires.
    BadAccept,
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Http(e) => write!(f, "websocket handshake: {e}"),
            Self::Refused(status, body) if body.is_empty() => {
                write!(f, "websocket handshake refused: {status}")
            }
            Self::Refused(status, body) => {
                write!(f, "websocket handshake refused: {status}: {body}")
            }
            Self::BadAccept => f.write_str("websocket handshake: the server's accept key is wrong"),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// Sends the opening handshake over `io` for `path_and_query` on `authority` with these
/// extra headers (an `Origin`); returns the stream once the server switched protocols.
pub(super) async fn open<IO>(
    io: IO,
    authority: &str,
    path_and_query: &str,
    origin: Option<HeaderValue>,
) -> Result<TokioIo<Upgraded>, HandshakeError>
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    use http_body_util::{BodyExt, Empty, Limited};
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(HandshakeError::Http)?;
    // The connection ends once it has handed the stream over.
    tokio::spawn(async move {
        if let Err(e) = connection.with_upgrades().await {
            tracing::debug!("websocket handshake connection: {e}");
        }
    });
    let key = generate_key();
    let mut request = Request::get(path_and_query)
        .header(header::HOST, authority)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_VERSION, "13")
        .header(header::SEC_WEBSOCKET_KEY, &key)
        .body(Empty::<Bytes>::new())
        .map_err(|e| HandshakeError::Refused(StatusCode::BAD_REQUEST, e.to_string()))?;
    if let Some(origin) = origin {
        request.headers_mut().insert(header::ORIGIN, origin);
    }
    let response = sender
        .send_request(request)
        .await
        .map_err(HandshakeError::Http)?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        let status = response.status();
        // The reason, as far as its first few kilobytes.
        let body = match Limited::new(response.into_body(), 4096).collect().await {
            Ok(body) => String::from_utf8_lossy(&body.to_bytes()).trim().to_string(),
            Err(_) => String::new(),
        };
        return Err(HandshakeError::Refused(status, body));
    }
    let accepted = response.headers().get(header::SEC_WEBSOCKET_ACCEPT);
    if accepted.map(|a| a.as_bytes()) != Some(derive_accept_key(key.as_bytes()).as_bytes()) {
        return Err(HandshakeError::BadAccept);
    }
    let upgraded = hyper::upgrade::on(response)
        .await
        .map_err(HandshakeError::Http)?;
    Ok(TokioIo::new(upgraded))
}
