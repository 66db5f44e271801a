//! Handing memory the allocator keeps back to the system, so that what the process holds
//! stays close to what its budgets count: glibc keeps freed memory between live blocks
//! (and, once large blocks were freed, serves large ones from its heap too), so after an
//! attack, or while one fills a budget, the process would hold far more than it uses.

use std::time::{Duration, Instant};

use super::limits::TRIM_UNDER_PRESSURE;
use crate::sync::{lock, Mutex};

/// How long after a connection closes the memory it held is handed back: closes within
/// it share one trim.
const AFTER_CLOSE: Duration = Duration::from_secs(1);

/// A budget is spent and a reader waits: hands the memory the allocator holds free back
/// to the system now (in the background, at most once per `TRIM_UNDER_PRESSURE` in the
/// process), so that what the process holds stays close to what its budgets count.
///
/// Without it, under an attack that fills a shared budget, glibc keeps the free memory
/// between live buffers and the process holds well above what the budgets count, for as
/// long as the attack lasts (RELIABILITY.md has the figures).
pub(super) fn budget_spent() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return;
    }
    static LAST: Mutex<Option<Instant>> = Mutex::new(None);
    {
        let mut last = lock(&LAST);
        if last.is_some_and(|t| t.elapsed() < TRIM_UNDER_PRESSURE) {
            return;
        }
        *last = Some(Instant::now());
    }
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn_blocking(return_freed_memory);
    }
}

/// Hands memory the allocator keeps after a burst of large messages back to the system.
///
/// glibc raises its threshold for allocating with `mmap` whenever a large block is freed,
/// so after the first few, large read buffers come from its heap, and freeing them later
/// leaves the memory with the process after an attack has ended (RELIABILITY.md).
/// `malloc_trim` gives back every free page.
pub(super) fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> std::os::raw::c_int;
        }
        // SAFETY: glibc's `malloc_trim` only releases free memory; it is thread-safe and
        // takes any padding.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// A connection closed: what it held is handed back within `AFTER_CLOSE` (one trim, in
/// the background, for every connection that closes meanwhile), so that a server goes
/// back to its size when its peers leave.
pub(super) fn connection_closed() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return;
    }
    static PENDING: Mutex<bool> = Mutex::new(false);
    if std::mem::replace(&mut *lock(&PENDING), true) {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        *lock(&PENDING) = false;
        return;
    };
    runtime.spawn(async {
        tokio::time::sleep(AFTER_CLOSE).await;
        *lock(&PENDING) = false;
        let _ = tokio::task::spawn_blocking(return_freed_memory).await;
    });
}
