//! Where the connections' timers live: a current-thread runtime of their own, on one
//! background thread for the whole process, not the runtime the connections run on.
//!
//! Why: while a runtime has any timer registered, each of its workers reads the clock and
//! searches its timer wheel every time it parks, and a connection trading one request at
//! a time parks once per request. Every connection keeps a timer (its read timeout, its
//! heartbeats, its write timeout), so on the connections' runtime the wheel is never
//! empty, a cost paid on every request (BENCHMARKS.md, "The figures that do not drift"). Here
//! the workers park as if there were no timers;
//! the timer thread wakes a connection's task when its timer fires, which for a busy
//! connection is once per eighth of its read timeout (see `read_timeout.rs`).
//!
//! Registering and resetting a timer cost what they cost before (the wheel's lock);
//! only firing crosses threads. The timer runtime keeps its own clock, so a runtime with
//! tokio's clock paused does not pause connections' timeouts.

use std::sync::{mpsc, OnceLock};

use tokio::{
    runtime::Handle,
    time::{Instant, Sleep},
};

/// A timer for `deadline` on the timer thread (or, if that thread could not be started,
/// on the current runtime, as any tokio timer).
pub(super) fn sleep_until(deadline: Instant) -> Sleep {
    match timer_runtime() {
        Some(timers) => {
            let _in_timers = timers.enter();
            tokio::time::sleep_until(deadline)
        }
        None => tokio::time::sleep_until(deadline),
    }
}

/// The timer runtime, started at the first call. The runtime is built on its own thread
/// (and never dropped): dropping one inside an async context would panic.
fn timer_runtime() -> Option<&'static Handle> {
    static TIMERS: OnceLock<Option<Handle>> = OnceLock::new();
    TIMERS
        .get_or_init(|| {
            let (tx, rx) = mpsc::sync_channel(1);
            let spawned = std::thread::Builder::new()
                .name("gotalk-timers".into())
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_time()
                        .build();
                    match runtime {
                        Ok(runtime) => {
                            let _ = tx.send(Some(runtime.handle().clone()));
                            runtime.block_on(std::future::pending::<()>());
                        }
                        Err(e) => {
                            tracing::warn!("timers run on the connections' runtime: {e}");
                            let _ = tx.send(None);
                        }
                    }
                });
            match spawned {
                Ok(_) => rx.recv().ok().flatten(),
                Err(e) => {
                    tracing::warn!("timers run on the connections' runtime: {e}");
                    None
                }
            }
        })
        .as_ref()
}

#[cfg(test)]
mod tests {
    use std::{pin::pin, time::Duration};

    use super::*;

    /// The timer fires no sooner than its deadline, and wakes the task waiting for it
    /// (on this test's runtime) from the timer thread, also after a reset.
    #[tokio::test]
    async fn fires_and_wakes_a_task_of_another_runtime() {
        let started = Instant::now();
        let mut timer = pin!(sleep_until(started + Duration::from_millis(30)));
        let waited = tokio::time::timeout(Duration::from_secs(10), async {
            timer.as_mut().await;
            assert!(started.elapsed() >= Duration::from_millis(30));
            timer
                .as_mut()
                .reset(Instant::now() + Duration::from_millis(10));
            timer.as_mut().await;
        });
        waited.await.expect("the timer thread woke the task");
        assert!(started.elapsed() >= Duration::from_millis(40));
    }
}
