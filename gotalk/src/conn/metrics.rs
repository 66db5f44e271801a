//! The connection's own metrics (feature `metrics`, see `observe`): connections open
//! and opened, bytes read and written. The connection's stream is wrapped in a counter,
//! one atomic add per read or write (not per message).

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use metrics::{Counter, Gauge};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The connection metrics' names (`observe` describes them with the others).
pub(crate) const CONNECTIONS_OPEN: &str = "gotalk_connections_open";
pub(crate) const CONNECTIONS: &str = "gotalk_connections_total";
pub(crate) const BYTES_READ: &str = "gotalk_bytes_read_total";
pub(crate) const BYTES_WRITTEN: &str = "gotalk_bytes_written_total";

/// A connection's stream, counted; it counts as open until dropped.
pub(super) struct Counted<S> {
    io: Pin<Box<S>>,
    read: Counter,
    written: Counter,
    open: Gauge,
}

impl<S> Counted<S> {
    pub(super) fn new(io: S) -> Self {
        metrics::counter!(CONNECTIONS).increment(1);
        let open = metrics::gauge!(CONNECTIONS_OPEN);
        open.increment(1.0);
        Self {
            io: Box::pin(io),
            read: metrics::counter!(BYTES_READ),
            written: metrics::counter!(BYTES_WRITTEN),
            open,
        }
    }
}

impl<S> Drop for Counted<S> {
    fn drop(&mut self) {
        self.open.decrement(1.0);
    }
}

impl<S: AsyncRead> AsyncRead for Counted<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = this.io.as_mut().poll_read(cx, buf);
        this.read.increment((buf.filled().len() - before) as u64);
        polled
    }
}

impl<S: AsyncWrite> AsyncWrite for Counted<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = this.io.as_mut().poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            this.written.increment(n as u64);
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = this.io.as_mut().poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled {
            this.written.increment(n as u64);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().io.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().io.as_mut().poll_shutdown(cx)
    }
}
