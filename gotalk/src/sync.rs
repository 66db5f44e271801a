//! Our locks: parking_lot's mutex, whose lock and unlock are a few instructions inline
//! (a call takes four locks) and which has no poisoning to see through: nothing we do
//! under our locks can leave the data half-changed.

pub(crate) use parking_lot::{Mutex, MutexGuard};

/// Locks a mutex (one name for every lock in the crate, so that the kind is chosen here).
#[inline]
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock()
}
