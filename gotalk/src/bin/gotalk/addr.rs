//! ADDR, parsed in one place: what a peer's address means and how to reach it or listen
//! on it.

use std::{path::PathBuf, sync::Arc};

use gotalk::{tls, ws, Config, Error, Sock};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::Failure;

/// A peer's address, in any of the forms the help lists (`EXIT_CODES` in `main.rs`).
pub enum Addr<'a> {
    Tcp(&'a str),
    Unix(&'a str),
    Tls(&'a str),
    WebSocket(&'a str),
}

impl<'a> Addr<'a> {
    pub fn parse(addr: &'a str) -> Self {
        if addr.starts_with("ws://") || addr.starts_with("wss://") {
            Self::WebSocket(addr)
        } else if let Some(host_port) = addr.strip_prefix("tls://") {
            Self::Tls(host_port)
        } else if let Some(path) = addr.strip_prefix("unix:") {
            Self::Unix(path)
        } else {
            Self::Tcp(addr.strip_prefix("tcp://").unwrap_or(addr))
        }
    }
}

/// For tls:// and wss://: whom to trust.
#[derive(clap::Args, Clone)]
pub struct TlsArgs {
    /// For tls:// and wss://: trust the certificates in this PEM file instead of the
    /// platform's roots.
    #[arg(long, value_name = "PEM")]
    ca: Option<PathBuf>,
}

/// Any byte stream the CLI talks over.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Connects to any ADDR form, as a byte stream.
pub async fn open(addr: &str, tls: &TlsArgs) -> Result<Box<dyn Io>, Failure> {
    let unreachable = |e: Error| Failure(3, format!("cannot reach {addr}: {e}"));
    Ok(match Addr::parse(addr) {
        Addr::WebSocket(url) => {
            let config = match &tls.ca {
                Some(_) => Some(client_tls(tls)?),
                None => None,
            };
            Box::new(ws::connect_stream(url, config).await.map_err(unreachable)?)
        }
        Addr::Tls(host_port) => {
            let config = client_tls(tls)?;
            Box::new(
                tls::connect_stream(host_port, config)
                    .await
                    .map_err(unreachable)?,
            )
        }
        #[cfg(unix)]
        Addr::Unix(path) => Box::new(
            tokio::net::UnixStream::connect(path)
                .await
                .map_err(|e| unreachable(e.into()))?,
        ),
        #[cfg(not(unix))]
        Addr::Unix(path) => return Err(no_unix(path)),
        Addr::Tcp(host_port) => {
            let stream = tokio::net::TcpStream::connect(host_port)
                .await
                .map_err(|e| unreachable(e.into()))?;
            let _ = stream.set_nodelay(true);
            Box::new(stream)
        }
    })
}

/// Connects to any ADDR form and speaks Gotalk over it.
pub async fn connect(addr: &str, tls: &TlsArgs) -> Result<Sock, Failure> {
    let stream = open(addr, tls).await?;
    Ok(Sock::adopt(stream, addr, Config::dialling()))
}

#[cfg(not(unix))]
pub fn no_unix(path: &str) -> Failure {
    Failure(2, format!("unix sockets are not available here: {path}"))
}

fn client_tls(args: &TlsArgs) -> Result<Arc<tls::rustls::ClientConfig>, Failure> {
    let bad = |e: String| Failure(2, e);
    match &args.ca {
        None => tls::platform_client_config().map_err(|e| bad(e.to_string())),
        Some(path) => {
            use tls::rustls::pki_types::{pem::PemObject, CertificateDer};
            let mut roots = tls::rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(format!("{}: {e}", path.display())))?
            {
                let cert = cert.map_err(|e| bad(format!("{}: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| bad(format!("{}: {e}", path.display())))?;
            }
            tls::client_config(roots).map_err(|e| bad(e.to_string()))
        }
    }
}

/// Where `listen` and `trace` accept connections: a TCP address or a Unix socket path.
pub enum Listener {
    Tcp(tokio::net::TcpListener),
    #[cfg(unix)]
    Unix(tokio::net::UnixListener, String),
}

impl Listener {
    /// Listens on `addr` (host:port, tcp://host:port or unix:/path).
    pub async fn bind(addr: &str) -> Result<Self, Failure> {
        let cannot = |e: std::io::Error| Failure(3, format!("cannot listen on {addr}: {e}"));
        match Addr::parse(addr) {
            Addr::Tcp(host_port) => Ok(Self::Tcp(
                tokio::net::TcpListener::bind(host_port)
                    .await
                    .map_err(cannot)?,
            )),
            #[cfg(unix)]
            Addr::Unix(path) => {
                let _ = std::fs::remove_file(path);
                let listener = tokio::net::UnixListener::bind(path).map_err(cannot)?;
                Ok(Self::Unix(listener, format!("unix:{path}")))
            }
            #[cfg(not(unix))]
            Addr::Unix(path) => Err(no_unix(path)),
            Addr::Tls(_) | Addr::WebSocket(_) => Err(Failure(
                2,
                format!("cannot listen on {addr}: give host:port or unix:/path"),
            )),
        }
    }

    /// Where it listens, for the first line printed.
    pub fn local_addr(&self) -> String {
        match self {
            Self::Tcp(l) => l
                .local_addr()
                .map_or_else(|e| e.to_string(), |a| a.to_string()),
            #[cfg(unix)]
            Self::Unix(_, name) => name.clone(),
        }
    }

    /// The next connection and who it is from. Accept errors (out of file descriptors, a
    /// connection reset before it was taken) are waited out, as the library's own accept
    /// loop does: the listener itself is fine.
    pub async fn accept(&self) -> (Box<dyn Io>, String) {
        loop {
            let accepted: std::io::Result<(Box<dyn Io>, String)> = match self {
                Self::Tcp(l) => l.accept().await.map(|(stream, peer)| {
                    let _ = stream.set_nodelay(true);
                    (Box::new(stream) as Box<dyn Io>, peer.to_string())
                }),
                #[cfg(unix)]
                Self::Unix(l, name) => l
                    .accept()
                    .await
                    .map(|(stream, _)| (Box::new(stream) as Box<dyn Io>, name.clone())),
            };
            match accepted {
                Ok(pair) => return pair,
                Err(e) => {
                    eprintln!("gotalk: accept failed (going on): {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
}
