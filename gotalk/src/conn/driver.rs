//! The one task of a connection: it reads and routes what the peer sends (`reader.rs`),
//! writes what is queued (`outbox.rs`), and keeps the connection's time (the read
//! timeout, the write timeout, heartbeats) with a single timer.
//!
//! Each poll reads first, as far as it can without waiting, and then writes: the answers
//! of every handler that answered at once go out in one write, with no second task and
//! no wake-up. The [`Schedule`] it owns says when to write earlier, while reading, and
//! the outbox's [`TaskWake`](super::schedule::TaskWake) when queuing from elsewhere (a
//! spawned handler, a caller on another task) must wake the task.

use std::{
    future::{poll_fn, Future},
    pin::{pin, Pin},
    task::{Context, Poll, Waker},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::{Instant, Sleep},
};

use super::{
    outbox::{Writer, Written},
    reader::{ReadPoll, Reader},
    schedule::Schedule,
    Sock,
};
use crate::{error::CloseReason, wire::ProtocolErrorCode, Error};

/// Runs the connection over `io` until it is closed and everything queued was written.
pub(super) async fn run<S: AsyncRead + AsyncWrite + Send>(sock: Sock, io: S) {
    // Boxed: the task of every connection holds this future, and one that is observed
    // must not make the others larger.
    #[cfg(feature = "metrics")]
    if sock.config().observe {
        return Box::pin(drive(sock, super::metrics::Counted::new(io))).await;
    }
    drive(sock, io).await
}

async fn drive<S: AsyncRead + AsyncWrite + Send>(sock: Sock, io: S) {
    let mut io = pin!(io);
    // On the timer thread, so that the connections' runtime parks as if it had no timers.
    let mut timer = pin!(super::timers::sleep_until(far_future()));
    let heartbeat = sock.config().heartbeat_interval;
    let mut driver = Driver {
        reader: Reader::new(sock.clone()),
        writer: Writer::default(),
        schedule: Schedule::default(),
        reading: Reading::Open,
        next_heartbeat: heartbeat.map(|every| Instant::now() + every),
        stalled_until: None,
        timer_armed: false,
        rearm: true,
        timer_waker: sock.timer_waker(),
        sock,
    };
    poll_fn(|cx| driver.poll(io.as_mut(), timer.as_mut(), cx)).await;
}

struct Driver {
    sock: Sock,
    reader: Reader,
    writer: Writer,
    /// When to write while reading.
    schedule: Schedule,
    reading: Reading,
    /// When the next heartbeat goes out, if this side sends them.
    next_heartbeat: Option<Instant>,
    /// When a write that makes no progress times out, while one is blocked.
    stalled_until: Option<Instant>,
    /// Whether the timer is set to a deadline (else nothing is due, ever).
    timer_armed: bool,
    /// A deadline may have come sooner than the timer's (or the timer fired).
    rearm: bool,
    /// What the timer wakes: notes that it fired, then wakes the task.
    timer_waker: Waker,
}

enum Reading {
    Open,
    /// The peer ended its write side (a half-close, PROTOCOL.md 6): it can answer none of
    /// our calls any more, but the requests it sent before still run to completion and
    /// their results are written before the connection closes.
    Draining(Pin<Box<dyn Future<Output = ()> + Send>>),
    Over,
}

impl Driver {
    fn poll<S: AsyncRead + AsyncWrite + ?Sized>(
        &mut self,
        mut io: Pin<&mut S>,
        mut timer: Pin<&mut Sleep>,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        self.sock.outbox().task().begin_poll(cx);
        if self.timer_armed && self.sock.outbox().task().take_timer_fired() {
            let mut timer_cx = Context::from_waker(&self.timer_waker);
            if timer.as_mut().poll(&mut timer_cx).is_ready() {
                if self.on_timer() {
                    return Poll::Ready(());
                }
                self.rearm = true;
            }
        }
        if self.poll_reading(io.as_mut(), cx) || self.write(io.as_mut(), cx) {
            return Poll::Ready(());
        }
        // The read timeout's next look comes sooner after a quiet spell.
        let sooner = |d: Instant| !self.timer_armed || d < timer.deadline();
        let reading = matches!(self.reading, Reading::Open);
        if self.rearm || (reading && self.reader.deadline().is_some_and(sooner)) {
            self.arm(timer);
        }
        Poll::Pending
    }

    /// Reads as far as it can now; returns whether the connection is done (a write it
    /// asked for failed).
    fn poll_reading<S: AsyncRead + AsyncWrite + ?Sized>(
        &mut self,
        mut io: Pin<&mut S>,
        cx: &mut Context<'_>,
    ) -> bool {
        if matches!(self.reading, Reading::Open) {
            if self.sock.is_closed() {
                self.stop_reading(CloseReason::Local);
            }
            loop {
                if !matches!(self.reading, Reading::Open) {
                    break;
                }
                match self.reader.poll_read(io.as_mut(), cx, &mut self.schedule) {
                    ReadPoll::Pending => break,
                    ReadPoll::Write => {
                        if self.write(io.as_mut(), cx) {
                            return true;
                        }
                        // Reading goes on in the same poll, which writes again before it
                        // returns: queuing meanwhile need not wake the task.
                        self.sock.outbox().task().begin_poll(cx);
                    }
                    ReadPoll::Done(reason) => self.stop_reading(reason),
                }
            }
        }
        if let Reading::Draining(drained) = &mut self.reading {
            if drained.as_mut().poll(cx).is_ready() {
                self.reading = Reading::Over;
                self.sock.close_with(CloseReason::PeerClosed);
            }
        }
        false
    }

    /// Reading ended for `reason`: what the reader holds is released, and the
    /// connection closes (once the peer's requests are answered, after a half-close).
    fn stop_reading(&mut self, reason: CloseReason) {
        let sock = &self.sock;
        let closed = Error::Closed(sock.close_reason().unwrap_or_else(|| reason.clone()));
        self.reader.finish(&closed);
        if matches!(reason, CloseReason::PeerClosed) && !sock.is_closed() {
            sock.pending().close(closed);
            let sock = sock.clone();
            self.reading = Reading::Draining(Box::pin(async move {
                sock.admission().drain(|| sock.is_closed()).await;
            }));
        } else {
            self.reading = Reading::Over;
            sock.close_with(reason);
        }
    }

    /// Writes what is queued, as far as the stream takes it now; returns whether the
    /// connection is done. Inline: it runs on every poll.
    #[inline]
    fn write<S: AsyncWrite + ?Sized>(&mut self, io: Pin<&mut S>, cx: &mut Context<'_>) -> bool {
        let outbox = self.sock.outbox();
        outbox.task().writes_next();
        match self.writer.poll_write(outbox, io, cx) {
            Ok(Written::Idle) => {
                self.stalled_until = None;
                self.writer.shrink(false);
            }
            Ok(Written::Blocked) => {
                self.rearm |= self.stalled_until.is_none();
                if self.writer.take_progress() || self.stalled_until.is_none() {
                    self.stalled_until =
                        self.sock.limits().write_timeout.map(|t| Instant::now() + t);
                }
            }
            Ok(Written::Finished) => {
                self.finish(CloseReason::Local);
                return true;
            }
            Err(e) => {
                self.finish(CloseReason::Io(std::sync::Arc::new(e)));
                return true;
            }
        }
        false
    }

    /// The connection is done: closed for `reason` unless it already was, the reader's
    /// holdings released, and everyone waiting for the end told.
    fn finish(&mut self, reason: CloseReason) {
        self.sock.close_with(reason);
        if matches!(self.reading, Reading::Open) {
            self.reader.finish(&self.sock.close_error());
        }
        self.reading = Reading::Over;
        self.sock.finished().set();
    }

    /// The timer fired: a deadline may have passed. Returns whether the connection is
    /// done (a write stalled).
    fn on_timer(&mut self) -> bool {
        let now = Instant::now();
        if self.stalled_until.is_some_and(|t| t <= now) {
            let limit = self.sock.limits().write_timeout.unwrap_or_default();
            self.finish(CloseReason::Io(std::sync::Arc::new(stalled(limit))));
            return true;
        }
        if matches!(self.reading, Reading::Open) && self.reader.timed_out(now) {
            let secs = self
                .sock
                .limits()
                .read_timeout
                .unwrap_or_default()
                .as_secs_f32();
            self.stop_reading(Sock::protocol_error(
                ProtocolErrorCode::TIMEOUT,
                format!("no message for {secs} s"),
            ));
        }
        if let (Some(at), Some(every)) =
            (self.next_heartbeat, self.sock.config().heartbeat_interval)
        {
            if at <= now {
                let _ = self.sock.send_heartbeat();
                self.next_heartbeat = Some(now + every);
            }
        }
        self.reader.quiet();
        if self.sock.outbox().queued() == 0 {
            self.writer.shrink(true);
            self.sock.outbox().shrink_idle();
        }
        false
    }

    /// Sets the timer to the earliest deadline, and registers it.
    fn arm(&mut self, mut timer: Pin<&mut Sleep>) {
        self.rearm = false;
        let read = match self.reading {
            Reading::Open => self.reader.deadline(),
            _ => None,
        };
        let next = [read, self.next_heartbeat, self.stalled_until]
            .into_iter()
            .flatten()
            .min();
        let Some(next) = next else {
            self.timer_armed = false;
            return;
        };
        // Kept at an earlier deadline (it looks again when it fires), so that a read
        // timeout moved on by every message costs no timer reset.
        if !self.timer_armed || next < timer.deadline() || timer.is_elapsed() {
            timer.as_mut().reset(next);
            self.timer_armed = true;
            let mut timer_cx = Context::from_waker(&self.timer_waker);
            if timer.as_mut().poll(&mut timer_cx).is_ready() {
                // Due already: look at it at once.
                self.timer_waker.wake_by_ref();
            }
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86400 * 365)
}

fn stalled(limit: Duration) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!(
            "the peer read nothing for {} ms (write timeout)",
            limit.as_millis()
        ),
    )
}

/// A stream made of a read half and a write half.
pub(super) struct Halves<R, W> {
    pub(super) read: R,
    pub(super) write: W,
}

impl<R: AsyncRead + Unpin, W: Unpin> AsyncRead for Halves<R, W> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().read).poll_read(cx, buf)
    }
}

impl<R: Unpin, W: AsyncWrite + Unpin> AsyncWrite for Halves<R, W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().write).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().write).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.write.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().write).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().write).poll_shutdown(cx)
    }
}
