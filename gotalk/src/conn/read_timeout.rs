//! The read timeout, without reading the clock for every batch of messages.
//!
//! A busy connection only notes that messages came (a flag); the connection's timer looks
//! every eighth of the limit and takes that time as the last message's. When a look finds
//! nothing new, the timer is set to the timeout itself and no more looks are due; the
//! first message after that reads the clock once and the looks start again. So a busy
//! connection costs one timer firing per eighth of the limit, a quiet one none, and the
//! connection closes between the limit and ⁹⁄₈ of it after the last message: never early.

use std::time::Duration;

use tokio::time::Instant;

/// How often a busy connection is looked at, as a fraction of the limit.
const LOOKS_PER_LIMIT: u32 = 8;

pub(super) struct ReadTimeout {
    limit: Option<Duration>,
    /// When a message was last read: exact after a quiet spell, else the time of the look
    /// that found messages (no earlier than the last of them, and at most a look later).
    last_seen: Instant,
    /// Messages were read since the last look.
    read_since_look: bool,
    /// The timer is set to the timeout itself: the last look found no message.
    quiet: bool,
    /// When the timer should look next.
    due: Option<Instant>,
}

impl ReadTimeout {
    pub(super) fn new(limit: Option<Duration>, now: Instant) -> Self {
        Self {
            limit,
            last_seen: now,
            read_since_look: false,
            quiet: true,
            due: limit.map(|limit| now + limit),
        }
    }

    /// When the timer should look next.
    pub(super) fn due(&self) -> Option<Instant> {
        self.due
    }

    /// Messages were read. After a quiet spell this reads the clock, and `due` comes
    /// sooner.
    #[inline]
    pub(super) fn on_messages(&mut self) {
        if !self.quiet {
            self.read_since_look = true;
            return;
        }
        if let Some(limit) = self.limit {
            let now = Instant::now();
            self.quiet = false;
            self.last_seen = now;
            self.due = Some(now + limit / LOOKS_PER_LIMIT);
        }
    }

    /// The timer fired at `now`: whether the peer has sent no message for the limit.
    pub(super) fn timed_out(&mut self, now: Instant) -> bool {
        let Some(limit) = self.limit else {
            return false;
        };
        if self.due.is_none_or(|due| due > now) {
            // The timer fired for something else.
            return false;
        }
        if std::mem::take(&mut self.read_since_look) {
            self.last_seen = now;
            self.due = Some(now + limit / LOOKS_PER_LIMIT);
            return false;
        }
        let timeout = self.last_seen + limit;
        if timeout <= now {
            return true;
        }
        self.quiet = true;
        self.due = Some(timeout);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(8);
    const SECOND: Duration = Duration::from_secs(1);

    /// Runs the timer as the connection's would, with messages at the given seconds,
    /// and returns when the timeout fired.
    fn fires_at(messages: &[u64]) -> Duration {
        let start = Instant::now();
        let mut t = ReadTimeout::new(Some(LIMIT), start);
        let mut next = 0;
        // Milliseconds: messages at their times, the timer when it is due.
        for ms in 0..100_000u64 {
            let now = start + Duration::from_millis(ms);
            if next < messages.len() && messages[next] * 1000 == ms {
                next += 1;
                // `on_messages` reads the real clock; stand in for it.
                if t.quiet {
                    t.quiet = false;
                    t.last_seen = now;
                    t.due = Some(now + LIMIT / LOOKS_PER_LIMIT);
                } else {
                    t.on_messages();
                }
            }
            if t.due().is_some_and(|due| due <= now) && t.timed_out(now) {
                return now - start;
            }
        }
        panic!("never timed out");
    }

    #[test]
    fn a_silent_peer_times_out_at_the_limit() {
        assert_eq!(fires_at(&[]), LIMIT);
    }

    #[test]
    fn the_timeout_counts_from_the_last_message_and_is_never_early() {
        for last in [1u64, 3, 10, 17, 30] {
            // A busy spell, then the last message.
            let messages: Vec<u64> = (0..=last).collect();
            let fired = fires_at(&messages);
            let silence = fired - SECOND * last as u32;
            assert!(
                silence >= LIMIT,
                "closed {silence:?} after the last message"
            );
            assert!(
                silence <= LIMIT + LIMIT / LOOKS_PER_LIMIT,
                "closed {silence:?} after the last message"
            );
        }
    }

    #[test]
    fn a_message_now_and_then_keeps_the_connection() {
        let messages: Vec<u64> = (0..10).map(|i| i * 7).collect();
        let fired = fires_at(&messages);
        assert!(fired >= SECOND * 63 + LIMIT);
        assert!(fired <= SECOND * 63 + LIMIT + LIMIT / LOOKS_PER_LIMIT);
    }

    #[test]
    fn no_limit_never_times_out() {
        let start = Instant::now();
        let mut t = ReadTimeout::new(None, start);
        t.on_messages();
        assert_eq!(t.due(), None);
        assert!(!t.timed_out(start + SECOND * 1000));
    }
}
