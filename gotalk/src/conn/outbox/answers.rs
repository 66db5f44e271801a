//! Which of the queued bytes answer the peer: results of every kind (single, stream,
//! error, retry), made because the peer asked. They are what a peer that asks without
//! reading can make the connection pile up, so reading stops while too many of them are
//! unwritten (`reader.rs`). The application's own calls and notifications are not
//! answers: they wait for room in the queue on their own, and stopping reading for them
//! would also stop the results they wait for.
//!
//! The queue is one stream of bytes leaving in order, so the answers in it are runs of
//! that stream's offsets: bytes are written from the front, and whatever of a run lies
//! before the written offset is gone. Consecutive answers make one run, so a peer that
//! only asks costs one, and the newest run is kept apart from the older ones so that
//! extending it (every answer of a busy server) touches no queue.

use std::collections::VecDeque;

/// The answers among the queued bytes, as runs of stream offsets.
#[derive(Default)]
pub(super) struct Answers {
    /// `[start, end)` offsets of older runs of answer bytes not yet written, in order.
    older: VecDeque<(u64, u64)>,
    /// The newest run (empty when `start == end`).
    newest: (u64, u64),
    /// The offset the next queued byte gets: the bytes ever queued.
    queued_to: u64,
    /// The offset the next written byte has.
    written_to: u64,
    /// The answer bytes in the runs.
    unwritten: usize,
}

impl Answers {
    /// `n` bytes were queued; `answer` says whether they answer the peer.
    #[inline]
    pub(super) fn queued(&mut self, n: usize, answer: bool) {
        let start = self.queued_to;
        self.queued_to = start + n as u64;
        if !answer {
            return;
        }
        self.unwritten += n;
        if self.newest.1 != start {
            if self.newest.0 != self.newest.1 {
                self.older.push_back(self.newest);
            }
            self.newest.0 = start;
        }
        self.newest.1 = self.queued_to;
    }

    /// `n` bytes at the front were written.
    #[inline]
    pub(super) fn written(&mut self, n: usize) {
        self.written_to += n as u64;
        let to = self.written_to;
        while let Some(run) = self.older.front_mut() {
            if !Self::take_written(run, to, &mut self.unwritten) {
                return;
            }
            self.older.pop_front();
        }
        if self.older.capacity() > 8 {
            self.older = VecDeque::new();
        }
        Self::take_written(&mut self.newest, to, &mut self.unwritten);
    }

    /// Takes what of `run` lies before `to` off `unwritten`; whether it is all gone.
    #[inline]
    fn take_written(run: &mut (u64, u64), to: u64, unwritten: &mut usize) -> bool {
        let gone = run.1.min(to).saturating_sub(run.0);
        *unwritten -= gone as usize;
        run.0 += gone;
        run.0 == run.1
    }

    /// The answer bytes queued and not yet written.
    pub(super) fn unwritten(&self) -> usize {
        self.unwritten
    }

    /// The bytes ever queued, answers or not.
    pub(super) fn total(&self) -> u64 {
        self.queued_to
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_counted_until_the_writer_passes_them() {
        let mut answers = Answers::default();
        answers.queued(2, false); // the version
        answers.queued(10, true);
        answers.queued(10, true);
        answers.queued(30, false); // a call of our own
        answers.queued(5, true);
        assert_eq!(answers.unwritten(), 25);
        assert_eq!(answers.total(), 57);
        assert_eq!(answers.older.len(), 1, "consecutive answers are one run");
        answers.written(7);
        assert_eq!(
            answers.unwritten(),
            20,
            "5 bytes of the first answer are out"
        );
        answers.written(15);
        assert_eq!(answers.unwritten(), 5, "the run is out; the call is next");
        assert!(answers.older.is_empty());
        answers.written(29);
        assert_eq!(answers.unwritten(), 5, "the call is not an answer");
        answers.written(3);
        assert_eq!(answers.unwritten(), 3, "the last answer is begun");
        answers.written(3);
        assert_eq!(answers.unwritten(), 0);
        answers.queued(4, true);
        answers.written(4);
        assert_eq!(answers.unwritten(), 0, "a run begun where the last ended");
    }
}
