//! Byte budgets: every byte a connection holds on its peer's behalf is counted, against
//! the connection's own budget ([`Limits::max_held_bytes`]) and, for a connection of a
//! server, against the budget all its connections share ([`SharedBudget`]).
//!
//! What counts is what is allocated: the read buffers at their capacity, for as long as
//! any payload sliced from them is alive (`charge.rs`, `read_buf.rs`); the rest of the
//! message being read, from its header on, so that a message once begun is always read
//! to its end and readers never wait on each other's half-read messages (a header whose
//! payload never comes holds it until the read timeout closes the connection); small
//! payloads copied out of large buffers; replies waiting for room in the write queue;
//! and the write queue itself. While the budgets have no room the reader waits and reads
//! nothing (TCP holds the peer back): it looks after every message, since a message of
//! a few bytes may ask for kilobytes of answers. Producers that respect backpressure
//! wait too while something is queued (`outbox.rs`).
//!
//! [`Limits::max_held_bytes`]: crate::Limits::max_held_bytes

use std::{
    fmt,
    pin::pin,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

use tokio::sync::Notify;

use super::{limits::BUDGET_FLOOR as FLOOR, trim};

/// A count of bytes against a limit.
pub(super) struct Budget {
    limit: usize,
    used: AtomicUsize,
    /// Readers waiting for room, woken on every release.
    waiting: AtomicUsize,
    room: Notify,
}

impl Budget {
    pub(super) fn new(limit: usize) -> Self {
        Self {
            limit,
            used: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            room: Notify::new(),
        }
    }

    pub(super) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    fn add(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::AcqRel);
    }

    /// Adds `bytes` if they fit under the limit.
    fn try_add(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&after| after <= self.limit)
            })
            .is_ok()
    }

    fn sub(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
        if self.waiting.load(Ordering::Acquire) > 0 {
            self.room.notify_waiters();
        }
    }

    /// Takes back an add that did not go through, waking nobody (the one who made it
    /// may be the one waiting).
    fn undo(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// A byte budget shared by many connections: those of a [`Server`](crate::Server) or of
/// a WebSocket [`Endpoint`](crate::ws::Endpoint) (each has one of 256 MiB unless its
/// [`Config`](crate::Config) names another), or any you give the same one with
/// [`Config::shared_budget`](crate::Config::shared_budget).
///
/// When it is spent, its connections stop reading new messages (beyond 64 KiB each, so
/// that a fresh client is still served) until bytes are released, and their handlers'
/// results wait for room once 64 KiB are queued; heartbeats and protocol errors still
/// flow. So the memory that peers can make the process hold is about this budget plus
/// 64 KiB per connection, and the large read buffers kept for reuse across the process
/// (16 MiB at most).
///
/// ```
/// let budget = gotalk::SharedBudget::new(64 * 1024 * 1024);
/// let config = gotalk::Config::accepting().shared_budget(&budget);
/// assert_eq!(budget.held_bytes(), 0);
/// ```
#[derive(Clone)]
pub struct SharedBudget(pub(super) Arc<Budget>);

impl SharedBudget {
    /// The budget of a server: 256 MiB.
    pub const DEFAULT: usize = 256 * 1024 * 1024;

    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> Self {
        Self(Arc::new(Budget::new(bytes)))
    }

    /// The bytes its connections hold now.
    pub fn held_bytes(&self) -> usize {
        self.0.used()
    }

    /// Its limit.
    pub fn limit(&self) -> usize {
        self.0.limit
    }
}

impl fmt::Debug for SharedBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedBudget")
            .field("held_bytes", &self.held_bytes())
            .field("limit", &self.limit())
            .finish()
    }
}

/// The budgets one connection charges: its own, and its server's if it has one.
pub(super) struct Budgets {
    conn: Budget,
    shared: Option<Arc<Budget>>,
}

impl Budgets {
    pub(super) fn new(limit: usize, shared: Option<Arc<Budget>>) -> Self {
        Self {
            conn: Budget::new(limit),
            shared,
        }
    }

    /// Counts `bytes` as held (the caller releases them with [`release`](Self::release)).
    pub(super) fn hold(&self, bytes: usize) {
        self.conn.add(bytes);
        if let Some(shared) = &self.shared {
            shared.add(bytes);
        }
    }

    /// Counts `bytes` held before as released.
    pub(super) fn release(&self, bytes: usize) {
        self.conn.sub(bytes);
        if let Some(shared) = &self.shared {
            shared.sub(bytes);
        }
    }

    /// Moves a count from `held` to `now` (e.g. a buffer that grew or shrank).
    pub(super) fn update(&self, held: &mut usize, now: usize) {
        if now > *held {
            self.hold(now - *held);
        } else if now < *held {
            self.release(*held - now);
        }
        *held = now;
    }

    /// The bytes this connection holds now.
    pub(super) fn held(&self) -> usize {
        self.conn.used()
    }

    /// Whether both budgets have room for `bytes` more (the shared one need not, while
    /// the connection stays within its `FLOOR`).
    #[inline]
    pub(super) fn has_room(&self, bytes: usize) -> bool {
        let conn = self.conn.used().saturating_add(bytes);
        conn <= self.conn.limit
            && (conn <= FLOOR
                || self
                    .shared
                    .as_ref()
                    .is_none_or(|s| s.used().saturating_add(bytes) <= s.limit))
    }

    /// Holds `bytes` more if both budgets have room for them (see
    /// [`has_room`](Self::has_room)).
    pub(super) fn try_hold(&self, bytes: usize) -> bool {
        if !self.conn.try_add(bytes) {
            return false;
        }
        let Some(shared) = &self.shared else {
            return true;
        };
        if self.conn.used() <= FLOOR {
            shared.add(bytes);
            return true;
        }
        if shared.try_add(bytes) {
            return true;
        }
        self.conn.undo(bytes);
        false
    }

    /// Holds `bytes` more once both budgets have room for them.
    pub(super) async fn hold_when_room(&self, bytes: usize) {
        self.wait_until(|budgets| budgets.try_hold(bytes)).await;
    }

    /// Waits until both budgets have room for `bytes` more, holding nothing.
    pub(super) async fn wait_for_room(&self, bytes: usize) {
        self.wait_until(|budgets| budgets.has_room(bytes)).await;
    }

    /// Waits until `ready` says so, looking again after every release.
    async fn wait_until(&self, mut ready: impl FnMut(&Self) -> bool) {
        let _waiting = Waiting::new(self);
        loop {
            let mut conn = pin!(self.conn.room.notified());
            conn.as_mut().enable();
            let mut shared = self.shared.as_ref().map(|s| Box::pin(s.room.notified()));
            if let Some(shared) = &mut shared {
                shared.as_mut().enable();
            }
            if ready(self) {
                return;
            }
            trim::budget_spent();
            match shared {
                Some(shared) => {
                    tokio::select! {
                        () = conn => {}
                        () = shared => {}
                    }
                }
                None => conn.await,
            }
        }
    }
}

/// Counts a reader as waiting on a connection's budgets while it lives, so that
/// releases wake it.
struct Waiting<'a>(&'a Budgets);

impl<'a> Waiting<'a> {
    fn new(budgets: &'a Budgets) -> Self {
        let waiting = Self(budgets);
        for budget in waiting.budgets() {
            budget.waiting.fetch_add(1, Ordering::AcqRel);
        }
        waiting
    }

    fn budgets(&self) -> impl Iterator<Item = &'a Budget> {
        std::iter::once(&self.0.conn).chain(self.0.shared.as_deref())
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        for budget in self.budgets() {
            budget.waiting.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Bytes held while a guard lives (e.g. a reply waiting for room).
pub(super) struct Held<'a> {
    budgets: &'a Budgets,
    bytes: usize,
}

impl<'a> Held<'a> {
    pub(super) fn new(budgets: &'a Budgets, bytes: usize) -> Self {
        budgets.hold(bytes);
        Self { budgets, bytes }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.budgets.release(self.bytes);
    }
}

impl Drop for Budgets {
    /// Whatever the connection still counts goes back to the shared budget.
    fn drop(&mut self) {
        let held = self.conn.used();
        if let (Some(shared), true) = (&self.shared, held > 0) {
            shared.sub(held);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_reservation_waits_for_room_in_both_budgets() {
        let shared = SharedBudget::new(200 * 1024);
        let a = Arc::new(Budgets::new(1 << 20, Some(shared.0.clone())));
        let b = Budgets::new(1 << 20, Some(shared.0.clone()));
        assert!(a.try_hold(150 * 1024));
        b.hold(60 * 1024);
        assert_eq!(shared.held_bytes(), 210 * 1024);
        assert!(!a.try_hold(1), "the shared budget is spent");
        assert!(b.try_hold(4 * 1024), "b stays within its floor");
        assert!(!b.try_hold(4 * 1024));
        assert_eq!(a.held(), 150 * 1024, "a failed reservation holds nothing");
        let waiting = tokio::spawn({
            let a = a.clone();
            async move { a.hold_when_room(20 * 1024).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        b.release(64 * 1024);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken by the release")
            .unwrap();
        assert_eq!(a.held(), 170 * 1024);
        drop(a);
        assert_eq!(
            shared.held_bytes(),
            0,
            "a closed connection returns what it held"
        );

        let own = Budgets::new(100, None);
        let mut held = 0;
        own.update(&mut held, 100);
        assert!(!own.try_hold(1), "its own budget is spent");
        own.update(&mut held, 10);
        assert!(own.try_hold(90));
        assert_eq!(own.held(), 100);
    }
}
