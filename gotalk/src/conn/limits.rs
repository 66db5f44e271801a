//! Every bound a connection sets its peer: the [`Limits`] a user may change, each with
//! its default, and the few fixed bounds beside them, each with its reason.

use std::{ops::RangeInclusive, time::Duration};

use crate::wire::DEFAULT_MAX_PAYLOAD;

/// The limits one connection enforces on its peer. Every field has a documented default;
/// start from [`Limits::default`] and change what you need, with the setters or by
/// assigning fields.
///
/// New limits are added in minor releases (the struct is `#[non_exhaustive]`, so code
/// that builds it this way keeps compiling):
///
/// ```
/// use std::time::Duration;
/// let limits = gotalk::Limits::default()
///     .max_single_requests(1)
///     .retry_wait(Duration::from_millis(100)..=Duration::from_millis(200))
///     .streams_allowed(false);
/// assert_eq!(limits.max_single_requests, 1);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Limits {
    /// How many of the peer's single requests may run at once; the excess is answered
    /// with a RetryResult `request rate limit`. Default: 1024.
    pub max_single_requests: usize,
    /// How many of the peer's stream requests may be open at once; the excess is answered
    /// with a RetryResult `request rate limit`. Default: 64.
    pub max_stream_requests: usize,
    /// Whether the peer may send stream requests at all. When not, they are answered with
    /// the ErrorResult `stream requests not supported` (and their parts are discarded).
    /// Default: `true`.
    pub streams_allowed: bool,
    /// The wait sent in a RetryResult: random within this range, as the reference does.
    /// Default: 500 ms ..= 5000 ms.
    pub retry_wait: RangeInclusive<Duration>,
    /// Close the connection with protocol error 3 when no complete message arrives for
    /// this long. Default: 30 s on accepted connections ([`Config::accepting`]), none on
    /// dialled ones ([`Config::dialling`]), as the reference. A busy connection is looked
    /// at every eighth of this (the clock is not read for every message), so it closes
    /// between this long and ⁹⁄₈ of it after the last message, never sooner. This and
    /// the write timeout count real time, on a timer thread the connections share (so
    /// a runtime whose clock tokio pauses in tests does not pause them).
    ///
    /// [`Config::accepting`]: crate::Config::accepting
    /// [`Config::dialling`]: crate::Config::dialling
    pub read_timeout: Option<Duration>,
    /// Close the connection when one write makes no progress for this long: the peer has
    /// stopped reading its results. Default: 30 s.
    pub write_timeout: Option<Duration>,
    /// How long a call this side makes to the peer waits for its answer, unless the call
    /// sets its own timeout ([`CallOptions::timeout`], `#[gotalk(timeout)]`); then it
    /// fails with [`Error::Timeout`] and is forgotten. It keeps a peer that never answers
    /// from parking this side's handlers that call it back. Applies to single results
    /// (`request`, `request_raw`, generated clients), not to reading streams. Default:
    /// 30 s on accepted connections, none on dialled ones (a client decides per call).
    ///
    /// [`CallOptions::timeout`]: crate::CallOptions::timeout
    /// [`Error::Timeout`]: crate::Error::Timeout
    pub call_timeout: Option<Duration>,
    /// The largest payload accepted in one message; a larger declared size is answered
    /// with protocol error 2 and the connection closes. Default: 16 MiB.
    pub max_payload: u32,
    /// The most bytes this connection holds on its peer's behalf: its read buffers, each
    /// at its capacity for as long as any payload sliced from it is alive (in a handler,
    /// a stream's chunk queue, the notification queue, the write queue or the
    /// application), the rest of a message being read (charged whole from its header
    /// on), replies waiting for room in the write queue, and the write queue itself.
    /// While it holds this much it reads nothing more from the peer (TCP holds the peer
    /// back) until bytes are released; what was admitted still completes. The connections of a server also share its
    /// [`SharedBudget`](crate::SharedBudget). `None`, the default, means twice
    /// [`max_payload`](Self::max_payload) plus 1 MiB (33 MiB); it is never less than one
    /// largest message plus 64 KiB, so that a message can always be read whole.
    pub max_held_bytes: Option<usize>,
    /// How many bytes may wait in the write queue before callers and handlers wait for
    /// the peer to read (backpressure; they also wait while the budgets are spent and
    /// something is queued). And how many bytes of answers to the peer (results, errors,
    /// RetryResults, of handlers or of the connection itself) may wait unwritten before
    /// the connection reads none of the peer's messages until it has read some: looked
    /// at after every message, so a peer that packs thousands of small requests into a
    /// write and never reads makes at most this much (and one message's answers) more.
    /// What is queued also counts against [`max_held_bytes`](Self::max_held_bytes) and
    /// the shared budget, which stop reading in the same way. This side's own calls are
    /// not answers: a caller waiting for room never stops the reading of the results it
    /// waits for. Default: 4 MiB.
    pub write_buffer: usize,
    /// How many bytes of stream chunks may wait for the code that consumes them (a
    /// stream request's handler, or a caller reading a stream result) before this
    /// connection stops reading from the peer until some are taken: backpressure that
    /// keeps memory bounded however fast the peer streams. A consumer that stops taking
    /// chunks while it waits for something from the same peer therefore stalls the
    /// connection: read the chunks, or drop them. Default: 1 MiB.
    pub stream_buffer: usize,
}

// The fixed bounds, and why each is what it is. (One more lives in the wire layer, as it
// belongs to parsing: a header alone makes the reader allocate at most 64 KiB, whatever
// size it declares; see `wire::room_for`.)

/// Stream request IDs the peer may leave open beyond [`Limits::max_stream_requests`]
/// (streams that were refused, or whose handler already finished, until the peer ends
/// them) before it is a protocol error. Each costs one table entry (a few dozen bytes);
/// the bound keeps a peer from growing the table without end.
pub(super) const LINGERING_STREAMS: usize = 1024;

/// What a request whose handler waits costs the budgets besides its payload: its task and
/// its handler's future, which the connection allocates on the peer's behalf (an
/// estimate on the high side for a small handler, a sleep: measured at about 1.5 KiB,
/// RELIABILITY.md). A reply waiting for room in the write queue costs the same.
pub(super) const PARKED_REQUEST: usize = 2048;

/// Notifications of one connection that may wait for their (sequential) handler before
/// the reader waits too. A count, not bytes: each holds its payload.
pub(super) const NOTIFICATION_QUEUE: usize = 256;

/// Room for a header beside the largest payload: a message can always be read whole
/// within the budget.
const HEADER_ROOM: usize = 64 * 1024;

/// What a connection may always hold, whatever its server's shared budget says, so that
/// a fresh client is served while others have spent it (see `budget.rs`).
pub(super) const BUDGET_FLOOR: usize = 64 * 1024;

/// The most one read takes: what a batch of messages costs in system calls, against how
/// much of the read buffer one read may fill.
pub(super) const UNRESERVED_READ: usize = 64 * 1024;

/// Read buffers of large messages kept for reuse, process-wide (see `recycle.rs`): at
/// most this many buffers…
pub(super) const RECYCLE_MAX_BUFFERS: usize = 32;
/// …holding at most this many bytes (enough for four 1 MiB messages in flight on a few
/// busy connections, the case it exists for; it is memory no budget counts)…
pub(super) const RECYCLE_MAX_BYTES: usize = 16 * 1024 * 1024;
/// …each at least this large (smaller ones are not worth it)…
pub(super) const RECYCLE_MIN_SIZE: usize = 64 * 1024;
/// …and each freed when nobody reused it for this long.
pub(super) const RECYCLE_IDLE: Duration = Duration::from_secs(1);
/// While budgets are spent, free memory goes back to the system at most this often.
pub(super) const TRIM_UNDER_PRESSURE: Duration = Duration::from_millis(200);

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_single_requests: 1024,
            max_stream_requests: 64,
            streams_allowed: true,
            retry_wait: Duration::from_millis(500)..=Duration::from_millis(5000),
            read_timeout: Some(Duration::from_secs(30)),
            write_timeout: Some(Duration::from_secs(30)),
            call_timeout: Some(Duration::from_secs(30)),
            max_payload: DEFAULT_MAX_PAYLOAD,
            max_held_bytes: None,
            write_buffer: 4 * 1024 * 1024,
            stream_buffer: 1024 * 1024,
        }
    }
}

/// A chainable setter for each field.
macro_rules! setters {
    ($($(#[$doc:meta])* $field:ident: $ty:ty;)*) => {
        impl Limits {
            $(
                $(#[$doc])*
                pub fn $field(mut self, value: $ty) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}

setters! {
    /// Sets [`max_single_requests`](Self::max_single_requests).
    max_single_requests: usize;
    /// Sets [`max_stream_requests`](Self::max_stream_requests).
    max_stream_requests: usize;
    /// Sets [`streams_allowed`](Self::streams_allowed).
    streams_allowed: bool;
    /// Sets [`retry_wait`](Self::retry_wait).
    retry_wait: RangeInclusive<Duration>;
    /// Sets [`read_timeout`](Self::read_timeout).
    read_timeout: Option<Duration>;
    /// Sets [`write_timeout`](Self::write_timeout).
    write_timeout: Option<Duration>;
    /// Sets [`call_timeout`](Self::call_timeout).
    call_timeout: Option<Duration>;
    /// Sets [`max_payload`](Self::max_payload).
    max_payload: u32;
    /// Sets [`max_held_bytes`](Self::max_held_bytes).
    max_held_bytes: Option<usize>;
    /// Sets [`write_buffer`](Self::write_buffer).
    write_buffer: usize;
    /// Sets [`stream_buffer`](Self::stream_buffer).
    stream_buffer: usize;
}

impl Limits {
    /// A random wait within [`retry_wait`](Self::retry_wait), in milliseconds.
    pub(super) fn random_retry_wait_ms(&self) -> u32 {
        let lo = self.retry_wait.start().as_millis();
        let hi = self.retry_wait.end().as_millis().max(lo);
        let ms = fastrand::u128(lo..=hi);
        u32::try_from(ms).unwrap_or(u32::MAX)
    }

    /// The connection's byte budget in effect (see [`max_held_bytes`](Self::max_held_bytes)).
    pub(super) fn held_bytes_limit(&self) -> usize {
        let largest = self.max_payload as usize + HEADER_ROOM;
        match self.max_held_bytes {
            Some(bytes) => bytes.max(largest),
            None => (self.max_payload as usize)
                .saturating_mul(2)
                .saturating_add(1024 * 1024),
        }
    }
}
