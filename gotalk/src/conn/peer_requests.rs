//! What the reader remembers of the peer's requests between messages: the stream
//! requests it has open ([`OpenStreams`]) and the deadlines it announced for its next
//! requests ([`Deadlines`], our extension). Both are bounded, so a peer cannot make them
//! grow or, choosing colliding IDs, slow.

use std::time::Duration;

use rustc_hash::FxHashMap;
use tokio::time::Instant;

use super::{chunks::ChunkSender, id_key, limits::LINGERING_STREAMS, Limits};
use crate::{wire::RequestId, Error};

/// The state of a stream request the peer opened.
enum Stream {
    /// Its handler reads the chunks from here.
    Open(ChunkSender),
    /// Rejected (or the handler stopped reading): its remaining parts are dropped.
    Discard,
}

/// Why the peer may not open a stream request: a protocol error of the peer's.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum OpenError {
    /// It reuses the ID of a stream request that is still open.
    Reused,
    /// It has `max_stream_requests` open and as many lingering.
    TooMany,
}

impl OpenError {
    pub(super) fn detail(&self) -> &'static str {
        match self {
            Self::Reused => "stream request reuses the ID of an open stream",
            Self::TooMany => "too many open stream requests",
        }
    }
}

/// Where a part of a peer's stream request goes.
pub(super) enum Part {
    /// To its handler, through this sender.
    Deliver(ChunkSender),
    /// Nowhere: the request was refused, cancelled, or its handler stopped reading.
    Drop,
    /// The request is unknown: a protocol error of the peer's.
    Unknown,
}

/// The peer's open stream requests, by ID: at most `max_stream_requests` running and
/// `LINGERING_STREAMS` whose parts are still being dropped.
#[derive(Default)]
pub(super) struct OpenStreams {
    by_id: FxHashMap<u32, Stream>,
}

impl OpenStreams {
    /// Whether the peer may open one more stream request with `id` now.
    pub(super) fn may_open(&self, id: RequestId, limits: &Limits) -> Result<(), OpenError> {
        if self.by_id.contains_key(&id_key(id)) {
            return Err(OpenError::Reused);
        }
        if self.by_id.len() >= limits.max_stream_requests + LINGERING_STREAMS {
            return Err(OpenError::TooMany);
        }
        Ok(())
    }

    /// Request `id` is open: its parts go to `chunks` (or, with `None`, are dropped).
    pub(super) fn open(&mut self, id: RequestId, chunks: Option<ChunkSender>) {
        let stream = chunks.map_or(Stream::Discard, Stream::Open);
        self.by_id.insert(id_key(id), stream);
    }

    /// Where a part of request `id` goes; an empty part ends the request stream (its
    /// handler's chunks end when the sender is dropped).
    pub(super) fn part(&mut self, id: RequestId, end: bool) -> Part {
        let k = id_key(id);
        if end {
            return match self.by_id.remove(&k) {
                Some(_) => Part::Drop,
                None => Part::Unknown,
            };
        }
        match self.by_id.get(&k) {
            Some(Stream::Open(tx)) => Part::Deliver(tx.clone()),
            Some(Stream::Discard) => Part::Drop,
            None => Part::Unknown,
        }
    }

    /// The rest of request `id`'s parts are dropped (cancelled by the peer, or its
    /// handler stopped reading).
    pub(super) fn discard(&mut self, id: RequestId) {
        if let Some(stream) = self.by_id.get_mut(&id_key(id)) {
            *stream = Stream::Discard;
        }
    }

    /// Reading is over: every open request stream ends with `closed`.
    pub(super) fn finish(&mut self, closed: &Error) {
        for (_, stream) in self.by_id.drain() {
            if let Stream::Open(tx) = stream {
                tx.finish(Err(closed.clone()));
            }
        }
    }
}

/// How long the peer's next requests with given IDs have to run: the extension's
/// deadlines, each taken by the request that follows it.
#[derive(Default)]
pub(super) struct Deadlines {
    by_id: FxHashMap<u32, Duration>,
}

impl Deadlines {
    /// The peer announced that its next request `id` has `within` to run. Bounded by the
    /// requests it may have running: a deadline no request follows is an error of the
    /// peer's, and past the bound it is ignored.
    pub(super) fn announce(&mut self, id: RequestId, within: Duration, limits: &Limits) {
        let most = limits
            .max_single_requests
            .saturating_add(limits.max_stream_requests);
        if self.by_id.len() < most {
            self.by_id.insert(id_key(id), within);
        }
    }

    /// The deadline of the peer's request `id`, if it announced one.
    #[inline]
    pub(super) fn take(&mut self, id: RequestId) -> Option<Instant> {
        if self.by_id.is_empty() {
            return None;
        }
        let within = self.by_id.remove(&id_key(id))?;
        // One too far to represent is no deadline (the peer chooses it).
        Instant::now().checked_add(within)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::conn::{budget::Budgets, chunks};

    fn sender() -> ChunkSender {
        chunks::channel(4, Arc::new(Budgets::new(1 << 20, None))).0
    }

    #[test]
    fn streams_open_take_parts_and_end() {
        let limits = Limits::default();
        let mut streams = OpenStreams::default();
        assert_eq!(streams.may_open(*b"0001", &limits), Ok(()));
        streams.open(*b"0001", Some(sender()));
        streams.open(*b"0002", None);
        assert_eq!(streams.may_open(*b"0001", &limits), Err(OpenError::Reused));
        assert!(matches!(streams.part(*b"0001", false), Part::Deliver(_)));
        assert!(
            matches!(streams.part(*b"0002", false), Part::Drop),
            "refused"
        );
        assert!(matches!(streams.part(*b"0003", false), Part::Unknown));
        streams.discard(*b"0001");
        assert!(
            matches!(streams.part(*b"0001", false), Part::Drop),
            "cancelled"
        );
        assert!(matches!(streams.part(*b"0001", true), Part::Drop), "ended");
        assert!(
            matches!(streams.part(*b"0001", true), Part::Unknown),
            "gone"
        );
        assert_eq!(
            streams.may_open(*b"0001", &limits),
            Ok(()),
            "its ID is free"
        );
    }

    #[test]
    fn open_streams_are_bounded() {
        let limits = Limits::default().max_stream_requests(2);
        let mut streams = OpenStreams::default();
        let bound = 2 + LINGERING_STREAMS;
        for i in 0..bound as u32 {
            let id = i.to_be_bytes();
            assert_eq!(streams.may_open(id, &limits), Ok(()));
            streams.open(id, None);
        }
        let next = (bound as u32).to_be_bytes();
        assert_eq!(streams.may_open(next, &limits), Err(OpenError::TooMany));
    }

    #[test]
    fn deadlines_are_taken_once_and_bounded() {
        let limits = Limits::default()
            .max_single_requests(1)
            .max_stream_requests(1);
        let mut deadlines = Deadlines::default();
        let second = Duration::from_secs(1);
        deadlines.announce(*b"0001", second, &limits);
        deadlines.announce(*b"0002", second, &limits);
        deadlines.announce(*b"0003", second, &limits);
        assert!(
            deadlines.take(*b"0003").is_none(),
            "past the bound: ignored"
        );
        let due = deadlines.take(*b"0001").expect("announced");
        assert!(due > Instant::now() && due <= Instant::now() + second);
        assert!(deadlines.take(*b"0001").is_none(), "taken by one request");
        deadlines.announce(*b"0004", Duration::MAX, &limits);
        assert!(deadlines.take(*b"0004").is_none(), "too far to represent");
    }
}
