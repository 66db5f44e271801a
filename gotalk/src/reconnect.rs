//! A client that stays connected: the Rust counterpart of gotalk.js's `connection()`.
//!
//! A task connects to one of the addresses given (in turn), runs the on-connect hook
//! (sign in, subscribe again), and hands the connection out until it takes no more calls
//! (it closed, or the peer ended its side); then it connects again after an exponential
//! back-off with jitter. A connection that closes soon after it opened counts as a failed
//! attempt, so a server that accepts and closes at once (restarting, overloaded) is not
//! met with a reconnection storm, and clients that lost it together come back spread
//! out. Every connection gets the same [`Config`] (so the same handlers). Calls made
//! while there is no connection either wait for one, up to a bound, or fail at once
//! ([`WhileDisconnected`]).

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{
    sync::{lock, Mutex},
    Config, Error, Sock,
};

type Connector =
    Arc<dyn Fn(usize) -> Pin<Box<dyn Future<Output = Result<Sock, Error>> + Send>> + Send + Sync>;
type Hook =
    Arc<dyn Fn(Sock) -> Pin<Box<dyn Future<Output = Result<(), Error>> + Send>> + Send + Sync>;

/// What [`Reconnecting::sock`] does while there is no connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhileDisconnected {
    /// Waits up to this long for the next connection, then fails with
    /// [`Error::NotConnected`].
    Wait(Duration),
    /// Fails at once with [`Error::NotConnected`].
    FailFast,
}

/// How to reach the server: how many addresses, and how to connect to the n-th.
struct Options {
    addresses: usize,
    connect: Connector,
    on_connect: Option<Hook>,
    min_delay: Duration,
    max_delay: Duration,
    while_disconnected: WhileDisconnected,
}

/// Builds a [`Reconnecting`] client ([`Reconnecting::tcp`], [`Reconnecting::with`]).
pub struct ReconnectingBuilder {
    options: Options,
}

impl fmt::Debug for ReconnectingBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReconnectingBuilder")
            .field("addresses", &self.options.addresses)
            .field("min_delay", &self.options.min_delay)
            .field("max_delay", &self.options.max_delay)
            .field("while_disconnected", &self.options.while_disconnected)
            .finish_non_exhaustive()
    }
}

impl ReconnectingBuilder {
    /// Runs `hook` on every new connection before it is handed out (to sign in, or
    /// subscribe again); an `Err` closes that connection and counts as a failed attempt.
    pub fn on_connect<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Sock) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Error>> + Send + 'static,
    {
        self.options.on_connect = Some(Arc::new(move |sock| Box::pin(hook(sock))));
        self
    }

    /// The back-off between attempts: from `min`, doubling with each failed attempt up to
    /// `max`, each delay a random 50–100 % of that (default 100 ms to 10 s). An attempt
    /// fails when connecting or the on-connect hook fails, and when the connection closes
    /// within 5 s of opening; only one that lived longer starts the back-off from `min`
    /// again. So whatever the server does, a client connects at most about once per `max`
    /// once the first attempts are spent.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.options.min_delay = min;
        self.options.max_delay = max.max(min);
        self
    }

    /// What calls do while there is no connection (default: wait up to 5 s).
    pub fn while_disconnected(mut self, policy: WhileDisconnected) -> Self {
        self.options.while_disconnected = policy;
        self
    }

    /// Starts connecting (in a task of the current tokio runtime).
    pub fn start(self) -> Reconnecting {
        let (current, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            current,
            last_failure: Mutex::new(None),
            stop: CancellationToken::new(),
            options: self.options,
        });
        tokio::spawn(stay_connected(shared.clone()));
        Reconnecting { shared }
    }
}

struct Shared {
    current: watch::Sender<Option<Sock>>,
    last_failure: Mutex<Option<String>>,
    stop: CancellationToken,
    options: Options,
}

/// A client that reconnects whenever its connection closes, until it is closed or
/// dropped.
///
/// ```no_run
/// # async fn run() -> Result<(), gotalk::Error> {
/// use std::time::Duration;
/// use gotalk::{Config, Reconnecting, WhileDisconnected};
///
/// let client = Reconnecting::tcp(["10.0.0.1:1234", "10.0.0.2:1234"], Config::dialling())
///     .on_connect(|sock| async move { sock.request::<_, ()>("sign-in", "token").await })
///     .while_disconnected(WhileDisconnected::Wait(Duration::from_secs(2)))
///     .start();
/// let answer: String = client.sock().await?.request("echo", "hi").await?;
/// # Ok(()) }
/// ```
pub struct Reconnecting {
    shared: Arc<Shared>,
}

impl fmt::Debug for Reconnecting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reconnecting")
            .field("connected", &self.connected())
            .finish_non_exhaustive()
    }
}

impl Reconnecting {
    /// A client of the TCP servers at `addresses` (tried in turn), each connection made
    /// with `config`.
    pub fn tcp<A: ToString>(
        addresses: impl IntoIterator<Item = A>,
        config: Config,
    ) -> ReconnectingBuilder {
        let addresses: Vec<String> = addresses.into_iter().map(|a| a.to_string()).collect();
        let count = addresses.len();
        let addresses = Arc::new(addresses);
        Self::with(count, move |n| {
            let (addresses, config) = (addresses.clone(), config.clone());
            async move { crate::tcp::connect_with(addresses[n].as_str(), config).await }
        })
    }

    /// A client over any transport: `connect(n)` connects to the n-th of `addresses`
    /// places (tried in turn), e.g. with `gotalk::ws::connect_with` or `tls::connect_with`.
    pub fn with<F, Fut>(addresses: usize, connect: F) -> ReconnectingBuilder
    where
        F: Fn(usize) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Sock, Error>> + Send + 'static,
    {
        ReconnectingBuilder {
            options: Options {
                addresses: addresses.max(1),
                connect: Arc::new(move |n| Box::pin(connect(n))),
                on_connect: None,
                min_delay: Duration::from_millis(100),
                max_delay: Duration::from_secs(10),
                while_disconnected: WhileDisconnected::Wait(Duration::from_secs(5)),
            },
        }
    }

    /// The connection now, or (per [`WhileDisconnected`]) the next one.
    pub async fn sock(&self) -> Result<Sock, Error> {
        let mut current = self.shared.current.subscribe();
        let ready = |s: &Option<Sock>| s.as_ref().is_some_and(|s| !s.takes_no_calls());
        // `timeout` polls the wait once before its deadline: an open connection is
        // returned at once, whatever the policy.
        let wait = match self.shared.options.while_disconnected {
            WhileDisconnected::FailFast => Duration::ZERO,
            WhileDisconnected::Wait(wait) => wait,
        };
        let next = tokio::time::timeout(wait, async {
            current.wait_for(ready).await.ok().and_then(|s| s.clone())
        })
        .await;
        match next {
            Ok(Some(sock)) => Ok(sock),
            _ => Err(Error::NotConnected {
                last_failure: lock(&self.shared.last_failure).clone(),
            }),
        }
    }

    /// Whether it has an open connection now.
    pub fn connected(&self) -> bool {
        self.shared
            .current
            .borrow()
            .as_ref()
            .is_some_and(|s| !s.takes_no_calls())
    }

    /// Stops reconnecting and closes the connection.
    pub fn close(&self) {
        self.shared.stop.cancel();
        if let Some(sock) = self.shared.current.borrow().as_ref() {
            sock.close();
        }
    }
}

/// Calls wait for the connection as [`sock`](Reconnecting::sock) does; idempotent ones
/// are sent again on the next connection (see [`Connection`](crate::Connection)).
impl crate::Connection for Reconnecting {
    async fn connection(&self) -> Result<std::borrow::Cow<'_, Sock>, Error> {
        self.sock().await.map(std::borrow::Cow::Owned)
    }

    fn reconnects(&self) -> bool {
        true
    }
}

/// A notification goes to the connection [`sock`](Reconnecting::sock) gives.
impl crate::Notify for Reconnecting {
    async fn notify_payload(&self, name: &str, payload: bytes::Bytes) -> Result<(), Error> {
        self.sock().await?.notify_raw(name, payload).await
    }
}

impl Drop for Reconnecting {
    fn drop(&mut self) {
        self.close();
    }
}

/// The task: connect, hand out, wait for the close, back off, again.
async fn stay_connected(shared: Arc<Shared>) {
    let options = &shared.options;
    let mut next = 0;
    let mut failures: u32 = 0;
    while !shared.stop.is_cancelled() {
        let attempt = async {
            let sock = (options.connect)(next % options.addresses).await?;
            if let Some(hook) = &options.on_connect {
                if let Err(e) = hook(sock.clone()).await {
                    sock.close();
                    return Err(e);
                }
            }
            Ok::<_, Error>(sock)
        };
        let result = tokio::select! {
            result = attempt => result,
            () = shared.stop.cancelled() => return,
        };
        next += 1;
        match result {
            Ok(sock) => {
                let opened = Instant::now();
                *lock(&shared.last_failure) = None;
                shared.current.send_replace(Some(sock.clone()));
                tokio::select! {
                    () = sock.calls_ended() => {
                        let reason = sock.close_reason().map_or_else(
                            || "the peer ended it".to_owned(),
                            |reason| reason.to_string(),
                        );
                        tracing::info!(conn = sock.id(), "connection closed ({reason}): reconnecting");
                        if opened.elapsed() < HEALTHY {
                            *lock(&shared.last_failure) = Some(format!("connection closed: {reason}"));
                        }
                    }
                    () = shared.stop.cancelled() => {
                        sock.close();
                        return;
                    }
                }
                shared.current.send_replace(None);
                if opened.elapsed() >= HEALTHY {
                    failures = 0;
                }
            }
            Err(e) => {
                tracing::debug!("connecting failed: {e}");
                *lock(&shared.last_failure) = Some(e.to_string());
            }
        }
        let delay = backoff(options.min_delay, options.max_delay, failures);
        failures = failures.saturating_add(1);
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shared.stop.cancelled() => return,
        }
    }
}

/// A connection that lived this long worked: the back-off starts again from its minimum.
const HEALTHY: Duration = Duration::from_secs(5);

/// `min` doubled `failures` times, at most `max`, times a random 50–100 %.
fn backoff(min: Duration, max: Duration, failures: u32) -> Duration {
    let full = min.saturating_mul(1 << failures.min(20)).min(max);
    full.mul_f64(0.5 + fastrand::f64() / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_maximum_with_jitter() {
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(10));
        for failures in 0..30 {
            let full = (min * 2u32.pow(failures.min(20))).min(max);
            let d = backoff(min, max, failures);
            assert!(d >= full / 2 && d <= full, "{failures}: {d:?} of {full:?}");
        }
    }
}
