//! Per-connection limits, each with its default.

use std::{ops::RangeInclusive, time::Duration};

use crate::wire::DEFAULT_MAX_PAYLOAD;

/// The limits one connection enforces on its peer. Every field has a documented default;
/// start from [`Limits::default`] and change what you need.
///
/// ```
/// use std::time::Duration;
/// let limits = gotalk::Limits {
///     max_single_requests: 1,
///     retry_wait: Duration::from_millis(100)..=Duration::from_millis(200),
///     streams_allowed: false,
///     ..Default::default()
/// };
/// ```
#[derive(Clone, Debug)]
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
    /// dialled ones ([`Config::dialling`]), as the reference.
    ///
    /// [`Config::accepting`]: crate::Config::accepting
    /// [`Config::dialling`]: crate::Config::dialling
    pub read_timeout: Option<Duration>,
    /// Close the connection when one write makes no progress for this long: the peer has
    /// stopped reading its results. Default: 30 s.
    pub write_timeout: Option<Duration>,
    /// The largest payload accepted in one message; a larger declared size is answered
    /// with protocol error 2 and the connection closes. Default: 16 MiB.
    pub max_payload: u32,
    /// How many bytes may wait in the write queue before callers and handlers wait for
    /// the peer to read (backpressure). Default: 4 MiB.
    pub write_buffer: usize,
    /// How many bytes of stream chunks may wait for the code that consumes them (a
    /// stream request's handler, or a caller reading a stream result) before this
    /// connection stops reading from the peer until some are taken: backpressure that
    /// keeps memory bounded however fast the peer streams. A consumer that stops taking
    /// chunks while it waits for something from the same peer therefore stalls the
    /// connection: read the chunks, or drop them. Default: 1 MiB.
    pub stream_buffer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_single_requests: 1024,
            max_stream_requests: 64,
            streams_allowed: true,
            retry_wait: Duration::from_millis(500)..=Duration::from_millis(5000),
            read_timeout: Some(Duration::from_secs(30)),
            write_timeout: Some(Duration::from_secs(30)),
            max_payload: DEFAULT_MAX_PAYLOAD,
            write_buffer: 4 * 1024 * 1024,
            stream_buffer: 1024 * 1024,
        }
    }
}

impl Limits {
    /// A random wait within [`retry_wait`](Self::retry_wait), in milliseconds.
    pub(crate) fn random_retry_wait_ms(&self) -> u32 {
        let lo = self.retry_wait.start().as_millis();
        let hi = self.retry_wait.end().as_millis().max(lo);
        let ms = fastrand::u128(lo..=hi);
        u32::try_from(ms).unwrap_or(u32::MAX)
    }
}
