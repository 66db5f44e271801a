//! Gotalk over TCP.

use std::{io, net::SocketAddr, sync::Arc};

use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};

use super::{Accept, Listening, Peer, Server};
use crate::{Config, Error, Handlers, Sock};

/// Connects to a Gotalk peer over TCP with [`Config::dialling`] defaults.
pub async fn connect(addr: impl ToSocketAddrs) -> Result<Sock, Error> {
    connect_with(addr, Config::dialling()).await
}

/// Connects to a Gotalk peer over TCP with `config` (e.g. handlers the peer may call).
pub async fn connect_with(addr: impl ToSocketAddrs, config: Config) -> Result<Sock, Error> {
    let stream = TcpStream::connect(addr).await?;
    let peer = Peer::Tcp(stream.peer_addr()?);
    Ok(start(stream, &peer, Arc::new(config)))
}

/// Serves `handlers` on `addr` until the process ends, with [`Config::accepting`] defaults.
/// For an accept hook, limits, or a way to stop, use [`Server`].
pub async fn serve(addr: impl ToSocketAddrs, handlers: Handlers) -> Result<(), Error> {
    let server = Server::new(Config::accepting().handlers(handlers))
        .listen_tcp(addr)
        .await?;
    server.wait().await;
    Ok(())
}

fn start(stream: TcpStream, peer: &Peer, config: Arc<Config>) -> Sock {
    // Small messages must not wait for Nagle's algorithm: the writer already batches.
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!("cannot set TCP_NODELAY: {e}");
    }
    Sock::adopt_shared(stream, peer.to_string(), config)
}

impl Accept for TcpListener {
    type Stream = TcpStream;

    async fn accept(&mut self) -> io::Result<(TcpStream, Peer)> {
        let (stream, addr) = TcpListener::accept(self).await?;
        Ok((stream, Peer::Tcp(addr)))
    }

    fn start(stream: TcpStream, peer: &Peer, config: Arc<Config>) -> Sock {
        start(stream, peer, config)
    }
}

impl Server {
    /// Listens on a TCP address and serves every connection in the background.
    pub async fn listen_tcp(
        self,
        addr: impl ToSocketAddrs,
    ) -> Result<Listening<SocketAddr>, Error> {
        let listener = TcpListener::bind(addr).await?;
        Ok(self.serve_tcp(listener)?)
    }

    /// Serves connections accepted from a bound TCP listener.
    pub fn serve_tcp(self, listener: TcpListener) -> io::Result<Listening<SocketAddr>> {
        let addr = listener.local_addr()?;
        tracing::info!("gotalk listening on tcp:{addr}");
        Ok(self.start(listener, addr))
    }
}
