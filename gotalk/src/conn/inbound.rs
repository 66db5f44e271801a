//! The peer's requests and notifications, as the reader hands them on: a request to
//! admission and its handler (`admission.rs`, `respond.rs`), a stream request's parts to
//! its handler, a notification to the connection's notification queue; with what this
//! needs to remember between messages (`peer_requests.rs`) and the last request's
//! handler, kept for the next one.

use tokio::time::Instant;

use super::{
    admission::Kind,
    charge::{Detached, Keep},
    chunks::{self, ChunkSender},
    describe,
    extension::DESCRIBE,
    handler::{HandlerBox, Notification, Request, RequestFn, StreamRequest},
    peer_requests::{Deadlines, OpenStreams, Part},
    respond::{dispatch, Notifications, QueueFull},
    RequestChunks, Sock,
};
use crate::{
    error::{CloseReason, Error},
    wire::{self, Name, ProtocolErrorCode, RequestId},
};

/// The handler a request named `op` found, while the handlers were at `version`.
struct LastRequest {
    op: Name,
    version: u64,
    handler: RequestFn,
}

#[derive(Default)]
pub(super) struct Inbound {
    /// The peer's open stream requests.
    streams: OpenStreams,
    /// The deadlines the peer announced for its next requests.
    deadlines: Deadlines,
    notifications: Notifications,
    /// The handler of the last request (boxed: a connection that makes none holds a
    /// pointer).
    last_request: Option<Box<LastRequest>>,
    /// The memory of the last request handler's future, if it answered at once.
    handler_memory: Option<HandlerBox>,
}

impl Inbound {
    /// The name of the last request, if `op` is it and the handlers are still those it
    /// was looked up in: the decoder then takes it instead of splitting the name off the
    /// read buffer again.
    #[inline]
    pub(super) fn known(&self, sock: &Sock, op: &str) -> Option<Name> {
        match &self.last_request {
            Some(last) if last.op.as_str() == op && last.version == sock.handlers_version() => {
                Some(last.op.clone())
            }
            _ => None,
        }
    }

    /// Hands the peer's single request to admission and its handler.
    pub(super) fn request(&mut self, sock: &Sock, id: RequestId, op: Name, payload: Detached<'_>) {
        let deadline = self.deadlines.take(id);
        let handler = self.request_handler(sock, &op);
        let (running, handler) =
            match sock
                .admission()
                .admit(sock.limits(), Kind::Single, &op, handler)
            {
                Ok(admitted) => admitted,
                Err(refusal) => return refusal.send(sock, id),
            };
        let request = Request {
            sock: sock.clone(),
            op,
            id,
            payload: payload.bytes,
            deadline: deadline.map(Instant::into_std),
        };
        let handler = handler(request, self.handler_memory.take());
        self.handler_memory = dispatch(sock, id, running, handler, payload.keep, deadline);
    }

    /// The handler for a request named `op`. The last one looked up is kept while the
    /// handlers stay the same: most peers call one operation many times, and this saves
    /// a lock and a lookup per request.
    fn request_handler(&mut self, sock: &Sock, op: &Name) -> Option<RequestFn> {
        let version = sock.handlers_version();
        if let Some(last) = &self.last_request {
            // The same bytes when the decoder took the name from `last` (no compare).
            let same = |a: &Name, b: &Name| std::ptr::eq(a.as_str(), b.as_str()) || a == b;
            if last.version == version && same(&last.op, op) {
                return Some(last.handler.clone());
            }
        }
        // A reserved name no handler can have: answered by the connection itself.
        let handler = if op.as_str() == DESCRIBE && sock.extension().describes() {
            describe::handler()
        } else {
            sock.with_handlers(|h| h.request(op).cloned())?
        };
        self.last_request = Some(Box::new(LastRequest {
            // Copied: a slice of the read buffer would keep the buffer alive.
            op: Name::copy_of(op),
            version,
            handler: handler.clone(),
        }));
        Some(handler)
    }

    /// Opens the peer's stream request and hands it to admission and its handler; a
    /// request the peer may not open is a protocol error.
    pub(super) fn open_stream(
        &mut self,
        sock: &Sock,
        id: RequestId,
        op: Name,
        payload: Detached<'_>,
    ) -> Result<(), CloseReason> {
        let deadline = self.deadlines.take(id);
        if let Err(e) = self.streams.may_open(id, sock.limits()) {
            return Err(Sock::protocol_error(ProtocolErrorCode::INVALID, e.detail()));
        }
        let handler = sock.with_handlers(|h| h.stream(&op).cloned());
        let (running, handler) =
            match sock
                .admission()
                .admit(sock.limits(), Kind::Stream, &op, handler)
            {
                Ok(admitted) => admitted,
                Err(refusal) => {
                    refusal.send(sock, id);
                    self.streams.open(id, None);
                    return Ok(());
                }
            };
        let (tx, rx) = chunks::channel(sock.limits().stream_buffer, sock.budgets().clone());
        if !payload.bytes.is_empty() {
            // The channel is empty: there is room for the first chunk.
            let _ = tx.try_send(payload.bytes, payload.keep.into_owned());
        }
        self.streams.open(id, Some(tx));
        let request = StreamRequest {
            sock: sock.clone(),
            chunks: RequestChunks::new(op.clone(), rx),
            op,
            id,
            deadline: deadline.map(Instant::into_std),
        };
        // Its chunks keep their memory charged while they wait in its channel.
        dispatch(sock, id, running, handler(request), Keep::Nothing, deadline);
        Ok(())
    }

    /// Where a part of the peer's stream request `id` goes (an empty one ends it); a part
    /// of a request that is not open is a protocol error.
    pub(super) fn stream_part(
        &mut self,
        id: RequestId,
        end: bool,
    ) -> Result<Option<ChunkSender>, CloseReason> {
        match self.streams.part(id, end) {
            Part::Deliver(tx) => Ok(Some(tx)),
            Part::Drop => Ok(None),
            Part::Unknown => Err(Sock::protocol_error(
                ProtocolErrorCode::INVALID,
                format!(
                    "stream part for unknown request {:?}",
                    wire::Preview::new(&id, 4).to_string()
                ),
            )),
        }
    }

    /// The rest of the parts of stream request `id` are dropped (the peer cancelled it,
    /// or its handler stopped reading).
    pub(super) fn discard(&mut self, id: RequestId) {
        self.streams.discard(id);
    }

    /// The peer announced a deadline for its next request `id`.
    pub(super) fn deadline(&mut self, sock: &Sock, id: RequestId, within: std::time::Duration) {
        self.deadlines.announce(id, within, sock.limits());
    }

    /// Queues the peer's notification for its handler, if it has one; a full queue is
    /// for the reader to wait on.
    pub(super) fn notification(
        &mut self,
        sock: &Sock,
        name: Name,
        payload: Detached<'_>,
    ) -> Option<QueueFull> {
        let Some(handler) = sock.with_handlers(|h| h.notification(&name).cloned()) else {
            tracing::debug!(
                conn = sock.id(),
                "ignoring notification {:?}: no handler",
                name.as_str()
            );
            return None;
        };
        let notification = Notification {
            sock: sock.clone(),
            name,
            payload: payload.bytes,
        };
        self.notifications
            .try_push(handler, notification, payload.keep.into_owned())
            .err()
    }

    /// Reading is over: every open request stream ends with `closed`.
    pub(super) fn finish(&mut self, closed: &Error) {
        self.streams.finish(closed);
    }
}
