//! A one-shot signal that tasks can wait for: what `CancellationToken` offers here,
//! without its tree of children and the allocation that comes with it, so it lives inline
//! in the connection (two per connection, which shows when there are 10,000 of them).

use std::{
    pin::pin,
    sync::atomic::{AtomicBool, Ordering},
};

use tokio::sync::Notify;

#[derive(Default)]
pub(super) struct Signal {
    set: AtomicBool,
    notify: Notify,
}

impl Signal {
    /// Sets the signal and wakes everyone waiting; later calls do nothing.
    pub(super) fn set(&self) {
        if !self.set.swap(true, Ordering::SeqCst) {
            self.notify.notify_waiters();
        }
    }

    pub(super) fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    /// Waits until the signal is set (returns at once if it is).
    pub(super) async fn wait(&self) {
        // Registered before the flag is checked, so a `set` in between is not missed.
        let mut notified = pin!(self.notify.notified());
        notified.as_mut().enable();
        if self.is_set() {
            return;
        }
        notified.await;
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use super::*;

    #[tokio::test]
    async fn wakes_every_waiter_once_set_and_returns_at_once_after() {
        let signal = Arc::new(Signal::default());
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let signal = signal.clone();
                tokio::spawn(async move { signal.wait().await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(waiters.iter().all(|w| !w.is_finished()));
        signal.set();
        for waiter in waiters {
            tokio::time::timeout(Duration::from_secs(5), waiter)
                .await
                .expect("woken")
                .expect("no panic");
        }
        signal.set();
        signal.wait().await;
        assert!(signal.is_set());
    }
}
