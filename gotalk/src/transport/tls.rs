//! Gotalk over TLS (rustls): serve with a certificate from PEM files or a rustls config of
//! your own, connect verifying the server against the platform's roots or roots you give.
//! The configurations made here use rustls's default provider, aws-lc-rs, which offers
//! post-quantum key exchange (X25519MLKEM768) first.
//!
//! ```no_run
//! # async fn run(handlers: gotalk::Handlers) -> Result<(), gotalk::Error> {
//! use gotalk::{tls, Config, Server};
//! let certs = tls::server_config("cert.pem", "key.pem")?;
//! let server = Server::new(Config::accepting().handlers(handlers))
//!     .listen_tls("0.0.0.0:1234", certs)
//!     .await?;
//! // Elsewhere:
//! let sock = tls::connect("example.com:1234").await?;
//! # Ok(()) }
//! ```

use std::{io, net::SocketAddr, path::Path, sync::Arc, time::Duration};

use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, ServerName};
use tokio::{
    net::{TcpListener, TcpStream, ToSocketAddrs},
    sync::mpsc,
};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::{Accept, Listening, Peer};
use crate::{Config, Error, Server, Sock};

pub use rustls;

/// A TLS handshake that has not finished after this long is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for the accept loop.
const READY_QUEUE: usize = 64;

fn tls_error(e: impl std::fmt::Display) -> Error {
    Error::Io(Arc::new(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("tls: {e}"),
    )))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A server configuration from a PEM certificate chain and a PEM private key.
pub fn server_config(
    cert_chain: impl AsRef<Path>,
    key: impl AsRef<Path>,
) -> Result<Arc<rustls::ServerConfig>, Error> {
    let chain = CertificateDer::pem_file_iter(cert_chain.as_ref())
        .map_err(tls_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(tls_error)?;
    let key = PrivateKeyDer::from_pem_file(key.as_ref()).map_err(tls_error)?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(tls_error)?;
    Ok(Arc::new(config))
}

/// A client configuration that trusts exactly `roots` (e.g. a private CA).
pub fn client_config(roots: rustls::RootCertStore) -> Result<Arc<rustls::ClientConfig>, Error> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A client configuration that trusts the platform's root certificates.
pub fn platform_client_config() -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        // One unusable system certificate is no reason to refuse the others.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(tls_error(format!(
            "no usable root certificates on this platform ({} errors)",
            found.errors.len()
        )));
    }
    client_config(roots)
}

/// Connects to `host:port` over TLS, verifying the server against the platform's roots,
/// with [`Config::dialling`] defaults.
pub async fn connect(host_port: &str) -> Result<Sock, Error> {
    connect_with(host_port, Config::dialling(), platform_client_config()?).await
}

/// Connects to `host:port` over TLS with `tls` (its roots decide whom to trust).
pub async fn connect_with(
    host_port: &str,
    config: Config,
    tls: Arc<rustls::ClientConfig>,
) -> Result<Sock, Error> {
    let host = host_of(host_port);
    let tcp = TcpStream::connect(host_port).await?;
    let peer = Peer::Tcp(tcp.peer_addr()?);
    let stream = handshake(host, tcp, tls).await?;
    Ok(Sock::adopt(stream, format!("tls:{peer}"), config))
}

/// Opens a TLS connection to `host:port` as a plain byte stream (for tools that relay or
/// inspect the protocol; most programs want [`connect_with`]).
pub async fn connect_stream(
    host_port: &str,
    tls: Arc<rustls::ClientConfig>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Error> {
    let host = host_of(host_port);
    let tcp = TcpStream::connect(host_port).await?;
    handshake(host, tcp, tls).await
}

fn host_of(host_port: &str) -> &str {
    host_port
        .rsplit_once(':')
        .map_or(host_port, |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']')
}

/// The client's TLS handshake over `tcp` with the server named `host`.
pub(crate) async fn handshake(
    host: &str,
    tcp: TcpStream,
    tls: Arc<rustls::ClientConfig>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Error> {
    let name = ServerName::try_from(host.to_string()).map_err(tls_error)?;
    let _ = tcp.set_nodelay(true);
    TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(handshake_error)
}

/// A failed client handshake; says so plainly when the server does not speak TLS.
fn handshake_error(e: io::Error) -> Error {
    let plaintext = matches!(
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        Some(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType
        ))
    );
    if plaintext {
        tls_error(format!(
            "the server does not speak TLS (plain Gotalk?): {e}"
        ))
    } else {
        tls_error(e)
    }
}

/// Accepts TCP connections and completes their TLS handshakes concurrently (a slow or
/// hostile client holds back no one), handing over only finished ones.
struct TlsListener {
    ready: mpsc::Receiver<(tokio_rustls::server::TlsStream<TcpStream>, Peer)>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsListener {
    fn new(listener: TcpListener, acceptor: TlsAcceptor) -> Self {
        let (tx, ready) = mpsc::channel(READY_QUEUE);
        let task = tokio::spawn(async move {
            loop {
                let (tcp, addr) = match listener.accept().await {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, Peer::Tcp(addr))).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%addr, "tls handshake failed: {e}"),
                        Err(_) => tracing::debug!(%addr, "tls handshake timed out"),
                    }
                });
            }
        });
        Self { ready, task }
    }
}

impl Accept for TlsListener {
    type Stream = tokio_rustls::server::TlsStream<TcpStream>;

    async fn accept(&mut self) -> io::Result<(Self::Stream, Peer)> {
        self.ready
            .recv()
            .await
            .ok_or_else(|| io::Error::other("tls listener stopped"))
    }

    fn start(stream: Self::Stream, peer: &Peer, config: Arc<Config>) -> Sock {
        Sock::adopt_shared(stream, format!("tls:{peer}"), config)
    }
}

impl Server {
    /// Listens on a TCP address and serves every connection over TLS.
    pub async fn listen_tls(
        self,
        addr: impl ToSocketAddrs,
        tls: Arc<rustls::ServerConfig>,
    ) -> Result<Listening<SocketAddr>, Error> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        tracing::info!("gotalk listening on tls:{local}");
        Ok(self.start(TlsListener::new(listener, TlsAcceptor::from(tls)), local))
    }
}
