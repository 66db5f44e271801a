//! Gotalk over Unix domain sockets.

use std::{
    io,
    path::{Path, PathBuf},
    sync::Arc,
};

use tokio::net::{UnixListener, UnixStream};

use super::{Accept, Listening, Peer, Server};
use crate::{Config, Error, Handlers, Sock};

/// Connects to a Gotalk peer on a Unix socket with [`Config::dialling`] defaults.
pub async fn connect(path: impl AsRef<Path>) -> Result<Sock, Error> {
    connect_with(path, Config::dialling()).await
}

/// Connects to a Gotalk peer on a Unix socket with `config`.
pub async fn connect_with(path: impl AsRef<Path>, config: Config) -> Result<Sock, Error> {
    let stream = UnixStream::connect(path.as_ref()).await?;
    let peer = Peer::Unix(path.as_ref().display().to_string());
    Ok(start(stream, &peer, Arc::new(config)))
}

/// Serves `handlers` on a Unix socket at `path` until the process ends.
pub async fn serve(path: impl AsRef<Path>, handlers: Handlers) -> Result<(), Error> {
    let server = Server::new(Config::accepting().handlers(handlers))
        .listen_unix(path)
        .await?;
    server.wait().await;
    Ok(())
}

fn start(stream: UnixStream, peer: &Peer, config: Arc<Config>) -> Sock {
    Sock::adopt_shared(stream, peer.to_string(), config)
}

impl Accept for UnixListener {
    type Stream = UnixStream;

    async fn accept(&mut self) -> io::Result<(UnixStream, Peer)> {
        let (stream, addr) = UnixListener::accept(self).await?;
        let name = addr
            .as_pathname()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        Ok((stream, Peer::Unix(name)))
    }

    fn start(stream: UnixStream, peer: &Peer, config: Arc<Config>) -> Sock {
        start(stream, peer, config)
    }
}

impl Server {
    /// Listens on a Unix socket at `path` and serves every connection in the background.
    pub async fn listen_unix(self, path: impl AsRef<Path>) -> Result<Listening<PathBuf>, Error> {
        let path = path.as_ref().to_path_buf();
        let listener = UnixListener::bind(&path)?;
        tracing::info!("gotalk listening on unix:{}", path.display());
        Ok(self.start(listener, path))
    }
}
