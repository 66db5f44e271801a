//! Byte budgets: every byte a connection holds on its peer's behalf is counted, against
//! the connection's own budget ([`Limits::max_held_bytes`]) and, for a connection of a
//! server, against the budget all its connections share ([`SharedBudget`]). While either
//! is spent the reader reads nothing more from the peer, so TCP holds the peer back.
//!
//! What counts: the message being read (the read buffer), the payload of every admitted
//! request until its handler is done (at least a read chunk: a payload slice keeps the
//! chunk it was read into alive), replies waiting for room in the write queue, the write
//! queue itself, stream chunks waiting for their consumer, and queued notifications.
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

/// What a connection may always hold whatever its server's budget says, so that a fresh
/// client is served while others have spent the shared budget.
pub(crate) const FLOOR: usize = 64 * 1024;

/// A count of bytes against a limit.
pub(crate) struct Budget {
    limit: usize,
    used: AtomicUsize,
    /// Woken when `used` drops below `limit`.
    room: Notify,
}

impl Budget {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            used: AtomicUsize::new(0),
            room: Notify::new(),
        }
    }

    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    fn has_room(&self) -> bool {
        self.used() < self.limit
    }

    fn add(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::AcqRel);
    }

    fn sub(&self, bytes: usize) {
        let before = self.used.fetch_sub(bytes, Ordering::AcqRel);
        if before >= self.limit && before - bytes < self.limit {
            self.room.notify_waiters();
        }
    }
}

/// A byte budget shared by many connections: those of a [`Server`](crate::Server) or of
/// a WebSocket [`Endpoint`](crate::ws::Endpoint) (each has one of 256 MiB unless its
/// [`Config`](crate::Config) names another), or any you give the same one with
/// [`Config::shared_budget`](crate::Config::shared_budget).
///
/// When it is spent, its connections stop reading new messages (beyond 64 KiB each, so
/// that a fresh client is still served) until bytes are released; results already
/// admitted, heartbeats and protocol errors still flow. So the memory that peers can make
/// the process hold is about this budget plus 64 KiB per connection.
///
/// ```
/// let budget = gotalk::SharedBudget::new(64 * 1024 * 1024);
/// let config = gotalk::Config::accepting().shared_budget(&budget);
/// assert_eq!(budget.held_bytes(), 0);
/// ```
#[derive(Clone)]
pub struct SharedBudget(pub(crate) Arc<Budget>);

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
pub(crate) struct Budgets {
    conn: Budget,
    shared: Option<Arc<Budget>>,
}

impl Budgets {
    pub(crate) fn new(limit: usize, shared: Option<Arc<Budget>>) -> Self {
        Self {
            conn: Budget::new(limit),
            shared,
        }
    }

    /// Counts `bytes` as held (the caller releases them with [`release`](Self::release)).
    pub(crate) fn hold(&self, bytes: usize) {
        self.conn.add(bytes);
        if let Some(shared) = &self.shared {
            shared.add(bytes);
        }
    }

    /// Counts `bytes` held before as released.
    pub(crate) fn release(&self, bytes: usize) {
        self.conn.sub(bytes);
        if let Some(shared) = &self.shared {
            shared.sub(bytes);
        }
    }

    /// Moves a count from `held` to `now` (e.g. a buffer that grew or shrank).
    pub(crate) fn update(&self, held: &mut usize, now: usize) {
        if now > *held {
            self.hold(now - *held);
        } else if now < *held {
            self.release(*held - now);
        }
        *held = now;
    }

    /// The bytes this connection holds now.
    pub(crate) fn held(&self) -> usize {
        self.conn.used()
    }

    /// Whether the reader may read more from the peer.
    pub(crate) fn may_read(&self) -> bool {
        self.conn.has_room()
            && (self.conn.used() < FLOOR || self.shared.as_ref().map_or(true, |s| s.has_room()))
    }

    /// Waits until the reader may read more.
    pub(crate) async fn wait_for_room(&self) {
        loop {
            let mut conn = pin!(self.conn.room.notified());
            conn.as_mut().enable();
            let mut shared = self.shared.as_ref().map(|s| Box::pin(s.room.notified()));
            if let Some(shared) = &mut shared {
                shared.as_mut().enable();
            }
            if self.may_read() {
                return;
            }
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

/// Bytes held while a guard lives (e.g. a reply waiting for room).
pub(crate) struct Held<'a> {
    budgets: &'a Budgets,
    bytes: usize,
}

impl<'a> Held<'a> {
    pub(crate) fn new(budgets: &'a Budgets, bytes: usize) -> Self {
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
    async fn a_spent_budget_stops_reading_until_bytes_are_released() {
        let shared = SharedBudget::new(200 * 1024);
        let a = Budgets::new(1 << 20, Some(shared.0.clone()));
        let b = Budgets::new(1 << 20, Some(shared.0.clone()));
        a.hold(150 * 1024);
        b.hold(60 * 1024);
        assert_eq!(shared.held_bytes(), 210 * 1024);
        assert!(!a.may_read(), "the shared budget is spent");
        assert!(b.may_read(), "b holds less than the floor");
        b.hold(10 * 1024);
        assert!(!b.may_read());
        let waiting = tokio::spawn(async move {
            a.wait_for_room().await;
            a
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        b.release(70 * 1024);
        let a = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .unwrap();
        assert!(a.may_read());
        drop(a);
        assert_eq!(
            shared.held_bytes(),
            0,
            "a closed connection returns what it held"
        );

        let own = Budgets::new(100, None);
        let mut held = 0;
        own.update(&mut held, 100);
        assert!(!own.may_read(), "its own budget is spent");
        own.update(&mut held, 10);
        assert!(own.may_read());
        assert_eq!(own.held(), 10);
    }
}
