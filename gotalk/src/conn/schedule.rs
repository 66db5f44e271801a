//! When the connection's task writes, and when queuing must wake it: every decision of
//! the kind lives here (the picture in the module docs shows where each is taken).
//!
//! [`Schedule`] belongs to the task and answers "write now?" while it reads: when a read
//! brings more while answers wait, halfway through a large read, and after the task let
//! the callers it handed results run first. [`TaskWake`] is shared with everyone who
//! queues: it says whether a message just queued must wake the task, or whether the task
//! writes soon anyway, and notes that the connection's timer fired.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    task::Context,
};

use futures_util::task::AtomicWaker;

/// A read that brings at least this much is handled in two halves, so that a peer waiting
/// on a batch that came in one read starts on part of it meanwhile: once the messages in
/// the first half are handled, the answers to them go out, or (on the side that called)
/// the callers handed their results run, and the requests they make next go out, before
/// the rest is handled. Smaller reads hold too few messages for the second write to pay.
const SPLIT_READ: usize = 1024;
/// Results handed to callers in the first half of a read that make a batch worth
/// yielding for: one caller's next request may as well wait for the rest.
const YIELD_FOR_RESULTS: u32 = 2;
/// Bytes the messages of one read may queue (answers, mostly) before the task lets the
/// others run: a read of 64 KiB of small requests for large answers (descriptions,
/// streams of results) is hundreds of milliseconds of work, which would keep a fresh
/// client's connection waiting behind it. An echo queues about what it reads, and never
/// yields.
const YIELD_AFTER_OUTPUT: u64 = 256 * 1024;

/// What the task does halfway through a large read (see [`Schedule::after_message`]).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Halfway {
    /// Write the answers to the first half before handling the rest.
    Write,
    /// Return, woken again at once, so that the callers handed results run first and
    /// what they queue goes out before the rest is handled.
    Yield,
}

/// The task's side: when to write while reading.
///
/// Queuing during a poll wakes no one (the poll ends with a write), so a whole read's
/// answers go out in one write. Writing earlier pays when the peer waits on a part of
/// what this side has: a read that brought more while answers to the last one wait
/// (the peer pipelines more than a read holds), or the first half of a large read (the
/// peer sent a batch in one go). At most twice per read, so a peer that reads nothing
/// cannot make the task spin.
#[derive(Default)]
pub(super) struct Schedule {
    /// Bytes of the last read's messages still to handle before its first half is done;
    /// 0 when the read was small or its first half is done.
    to_half: usize,
    /// Results handed to this side's callers since the last read.
    results_in_read: u32,
    /// The task yielded halfway through a read: what the callers queued goes out before
    /// the rest of the read is handled.
    yielded: bool,
    /// The outbox's count of bytes ever queued when the last read came, or when the task
    /// last yielded for them.
    output_from: u64,
}

impl Schedule {
    /// The read side is polled again: whether to write first what the callers queued
    /// while the task yielded (see [`Halfway::Yield`]).
    pub(super) fn resume(&mut self, queued: impl FnOnce() -> usize) -> bool {
        std::mem::take(&mut self.yielded) && queued() > 0
    }

    /// A read brought `n` bytes: whether to write what is queued (the answers to the last
    /// read's messages) before handling them, as an echo loop would. A peer that sent
    /// more than one read takes then gets the first answers while this side handles the
    /// rest, so both sides work at once instead of taking turns.
    pub(super) fn after_read(&mut self, n: usize, queued: impl FnOnce() -> usize) -> bool {
        self.to_half = if n >= SPLIT_READ { n / 2 } else { 0 };
        self.results_in_read = 0;
        queued() > 0
    }

    /// A message of `size` bytes of the last read was handled: what to do before the
    /// rest, if anything.
    #[inline]
    pub(super) fn after_message(
        &mut self,
        size: usize,
        queued: impl FnOnce() -> usize,
    ) -> Option<Halfway> {
        if self.to_half == 0 {
            return None;
        }
        self.to_half = self.to_half.saturating_sub(size);
        if self.to_half > 0 {
            return None;
        }
        if queued() > 0 {
            Some(Halfway::Write)
        } else if self.results_in_read >= YIELD_FOR_RESULTS {
            self.yielded = true;
            Some(Halfway::Yield)
        } else {
            None
        }
    }

    /// A read came while the outbox had queued `total` bytes in all.
    #[inline]
    pub(super) fn output_from(&mut self, total: u64) {
        self.output_from = total;
    }

    /// A message was handled, and the outbox has queued `total` bytes in all: whether the
    /// task yields now (returns, woken again at once), so that other connections run.
    #[inline]
    pub(super) fn after_output(&mut self, total: u64) -> bool {
        if total.wrapping_sub(self.output_from) < YIELD_AFTER_OUTPUT {
            return false;
        }
        self.output_from = total;
        true
    }

    /// A result was handed to a caller waiting for it.
    #[inline]
    pub(super) fn on_result(&mut self) {
        self.results_in_read = self.results_in_read.saturating_add(1);
    }
}

/// The shared side: whether queuing must wake the connection's task, and whether its
/// timer fired.
#[derive(Default)]
pub(super) struct TaskWake {
    /// The connection's task, woken when something is queued (or the outbox closes).
    task: AtomicWaker,
    /// Set while the task is in a poll that writes before it returns: queuing then need
    /// not wake it (a wake-up and a second poll per batch saved).
    driving: AtomicBool,
    /// The task was woken for something queued since its last poll began: queuing more
    /// need not wake it again (the poll that wake-up brings takes all of it).
    woken: AtomicBool,
    /// The connection's timer fired (see [`timer_fired`](Self::timer_fired)).
    timer_fired: AtomicBool,
}

impl TaskWake {
    /// The task starts a poll: it registers to be woken, and queuing wakes nobody until
    /// [`writes_next`](Self::writes_next).
    pub(super) fn begin_poll(&self, cx: &Context<'_>) {
        self.task.register(cx.waker());
        self.woken.store(false, Ordering::SeqCst);
        self.driving.store(true, Ordering::SeqCst);
    }

    /// The task is about to take what is queued and write it, and may then return from
    /// its poll: from here on queuing wakes it. (A message queued before this is taken
    /// by the write that follows.)
    pub(super) fn writes_next(&self) {
        self.driving.store(false, Ordering::SeqCst);
    }

    /// Something was queued: wakes the task, unless it writes soon anyway.
    #[inline]
    pub(super) fn queued(&self) {
        // A load first: a burst of calls from one task swaps once.
        if !self.driving.load(Ordering::SeqCst)
            && !self.woken.load(Ordering::SeqCst)
            && !self.woken.swap(true, Ordering::SeqCst)
        {
            self.task.wake();
        }
    }

    /// Wakes the task whatever it is doing (the outbox closed).
    pub(super) fn wake(&self) {
        self.task.wake();
    }

    /// The connection's timer fired: wakes the task, which then looks at the timer.
    pub(super) fn timer_fired(&self) {
        self.timer_fired.store(true, Ordering::SeqCst);
        self.task.wake();
    }

    /// Whether the timer fired since the last call.
    pub(super) fn take_timer_fired(&self) -> bool {
        self.timer_fired.load(Ordering::Relaxed) && self.timer_fired.swap(false, Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_whose_messages_make_much_output_yields_now_and_then() {
        let mut schedule = Schedule::default();
        schedule.output_from(1000);
        assert!(!schedule.after_output(1000 + YIELD_AFTER_OUTPUT - 1));
        assert!(schedule.after_output(1000 + YIELD_AFTER_OUTPUT));
        assert!(
            !schedule.after_output(1000 + YIELD_AFTER_OUTPUT + 10),
            "counted again from the yield"
        );
    }

    #[test]
    fn small_reads_are_handled_whole() {
        let mut schedule = Schedule::default();
        assert!(!schedule.after_read(SPLIT_READ - 1, || 0));
        assert_eq!(schedule.after_message(SPLIT_READ - 1, || 9), None);
    }

    #[test]
    fn a_read_that_brings_more_while_answers_wait_writes_them_first() {
        let mut schedule = Schedule::default();
        assert!(schedule.after_read(100, || 30));
        assert!(!schedule.after_read(100, || 0));
    }

    #[test]
    fn halfway_through_a_large_read_answers_go_out() {
        let mut schedule = Schedule::default();
        schedule.after_read(4000, || 0);
        assert_eq!(schedule.after_message(1000, || 50), None);
        assert_eq!(schedule.after_message(1000, || 50), Some(Halfway::Write));
        assert_eq!(schedule.after_message(1000, || 50), None, "once per read");
    }

    #[test]
    fn halfway_through_a_large_read_of_results_callers_run_first() {
        let mut schedule = Schedule::default();
        schedule.after_read(2000, || 0);
        schedule.on_result();
        assert_eq!(
            schedule.after_message(1000, || 0),
            None,
            "one result is no batch"
        );
        schedule.after_read(2000, || 0);
        schedule.on_result();
        schedule.on_result();
        assert_eq!(schedule.after_message(1000, || 0), Some(Halfway::Yield));
        assert!(
            schedule.resume(|| 16),
            "what the callers queued goes out first"
        );
        assert!(!schedule.resume(|| 16), "once");
        schedule.after_read(2000, || 0);
        schedule.on_result();
        schedule.on_result();
        schedule.after_message(1000, || 0);
        assert!(!schedule.resume(|| 0), "nothing queued: reading goes on");
    }
}
