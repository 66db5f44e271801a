//! Topics across nodes (feature `redis`): every publication goes through Redis pub/sub,
//! and each node delivers what Redis hands back to its own subscribers.
//!
//! Channels are `gotalk:topic:<topic>` and `gotalk:everyone`; a message is the
//! notification's name length (three hex digits), its name, then its payload. One
//! connection publishes (fed by a queue of at most `RELAY_BYTES`, so publishing never
//! waits on Redis either) and one subscribes to `gotalk:*`; either reconnects by itself,
//! with back-off, when Redis goes away. Publications made while Redis is away are lost
//! (and logged).

use std::{
    io,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Weak,
    },
    time::Duration,
};

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::Error;

/// Bytes of publications that may wait for Redis before new ones are dropped.
const RELAY_BYTES: usize = 16 * 1024 * 1024;

const PREFIX: &str = "gotalk:";

/// A publication on its way to Redis: its channel and message.
type Relayed = (String, Bytes);

/// This node's way to Redis: the queue its publisher reads, the bytes waiting in it, and
/// the stop of its subscriber.
pub(super) struct Relay {
    queue: mpsc::UnboundedSender<Relayed>,
    waiting: Arc<AtomicUsize>,
    stop: CancellationToken,
}

impl Relay {
    /// Queues a publication for Redis, or drops it (logged) if `RELAY_BYTES` wait already.
    pub(super) fn publish(&self, topic: Option<&str>, name: &str, payload: &[u8]) {
        let message = message(name, payload);
        let size = message.len();
        if self.waiting.fetch_add(size, Ordering::AcqRel) + size > RELAY_BYTES {
            self.waiting.fetch_sub(size, Ordering::AcqRel);
            tracing::warn!(
                "redis: {RELAY_BYTES} bytes of publications wait for it; {name:?} dropped"
            );
            return;
        }
        if self.queue.send((channel(topic), message)).is_err() {
            self.waiting.fetch_sub(size, Ordering::AcqRel);
        }
    }

    /// Stops the subscriber (the publisher stops when the queue goes).
    pub(super) fn stop(&self) {
        self.stop.cancel();
    }
}

fn redis_error(e: redis::RedisError) -> Error {
    Error::Io(Arc::new(io::Error::other(format!("redis: {e}"))))
}

/// The channel of `topic` (`None`: everyone).
fn channel(topic: Option<&str>) -> String {
    match topic {
        Some(topic) => format!("{PREFIX}topic:{topic}"),
        None => format!("{PREFIX}everyone"),
    }
}

/// The message of notification `name` with `payload`.
fn message(name: &str, payload: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(3 + name.len() + payload.len());
    out.extend_from_slice(format!("{:03x}", name.len()).as_bytes());
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(payload);
    out.into()
}

/// What `message` made: the topic (`None`: everyone), the name and the payload.
fn parse(channel: &str, message: &[u8]) -> Option<(Option<String>, String, Bytes)> {
    let rest = channel.strip_prefix(PREFIX)?;
    let topic = match rest.strip_prefix("topic:") {
        Some(topic) => Some(topic.to_string()),
        None if rest == "everyone" => None,
        None => return None,
    };
    let len = usize::from_str_radix(std::str::from_utf8(message.get(..3)?).ok()?, 16).ok()?;
    let name = std::str::from_utf8(message.get(3..3 + len)?)
        .ok()?
        .to_string();
    let payload = Bytes::copy_from_slice(message.get(3 + len..)?);
    Some((topic, name, payload))
}

/// Connects to Redis (both connections, so that subscriptions are live on return) and
/// starts the tasks that relay publications out and deliveries in.
pub(super) async fn start(url: &str, shared: Weak<Shared>) -> Result<Relay, Error> {
    let client = redis::Client::open(url).map_err(redis_error)?;
    let publisher = client
        .get_multiplexed_async_connection()
        .await
        .map_err(redis_error)?;
    let subscriber = subscribe(&client).await.map_err(redis_error)?;
    let (queue, rx) = mpsc::unbounded_channel();
    let (waiting, stop) = (Arc::new(AtomicUsize::new(0)), CancellationToken::new());
    tokio::spawn(publish(client.clone(), publisher, rx, waiting.clone()));
    tokio::spawn(receive(client, subscriber, shared, stop.clone()));
    Ok(Relay {
        queue,
        waiting,
        stop,
    })
}

async fn subscribe(client: &redis::Client) -> redis::RedisResult<redis::aio::PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.psubscribe(format!("{PREFIX}*")).await?;
    Ok(pubsub)
}

/// Waits before the next attempt: 100 ms doubling to 5 s.
async fn back_off(failures: &mut u32) {
    let delay = Duration::from_millis(100).saturating_mul(1 << (*failures).min(6));
    *failures += 1;
    tokio::time::sleep(delay.min(Duration::from_secs(5))).await;
}

/// Publishes what the queue brings until the `Topics` is gone.
async fn publish(
    client: redis::Client,
    mut conn: redis::aio::MultiplexedConnection,
    mut queue: mpsc::UnboundedReceiver<Relayed>,
    waiting: Arc<AtomicUsize>,
) {
    let mut failures = 0;
    while let Some((channel, message)) = queue.recv().await {
        let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(message.as_ref())
            .query_async(&mut conn)
            .await;
        waiting.fetch_sub(message.len(), Ordering::AcqRel);
        let Err(e) = sent else {
            failures = 0;
            continue;
        };
        tracing::warn!("redis: a publication to {channel} was lost: {e}");
        loop {
            back_off(&mut failures).await;
            match client.get_multiplexed_async_connection().await {
                Ok(fresh) => {
                    conn = fresh;
                    break;
                }
                Err(e) => tracing::warn!("redis: reconnecting to publish: {e}"),
            }
            if queue.is_closed() {
                return;
            }
        }
    }
}

/// Delivers what Redis hands back to this node's subscribers, until `stop`.
async fn receive(
    client: redis::Client,
    mut pubsub: redis::aio::PubSub,
    shared: Weak<Shared>,
    stop: CancellationToken,
) {
    let mut failures = 0;
    loop {
        {
            let mut messages = pubsub.on_message();
            loop {
                let msg = tokio::select! {
                    msg = messages.next() => msg,
                    () = stop.cancelled() => return,
                };
                let Some(msg) = msg else { break };
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                match parse(msg.get_channel_name(), msg.get_payload_bytes()) {
                    Some((topic, name, payload)) => {
                        failures = 0;
                        shared.deliver_here(topic.as_deref(), &name, payload);
                    }
                    None => tracing::debug!("redis: ignoring {:?}", msg.get_channel_name()),
                }
            }
        }
        tracing::warn!("redis: the subscription closed; reconnecting");
        loop {
            tokio::select! {
                () = back_off(&mut failures) => {}
                () = stop.cancelled() => return,
            }
            match subscribe(&client).await {
                Ok(fresh) => {
                    pubsub = fresh;
                    break;
                }
                Err(e) => tracing::warn!("redis: reconnecting to subscribe: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_parse_back() {
        let m = message("chat message", b"{\"a\":1}");
        assert_eq!(&m[..], b"00cchat message{\"a\":1}");
        let (topic, name, payload) = parse(&channel(Some("room:x")), &m).unwrap();
        assert_eq!(topic.as_deref(), Some("room:x"));
        assert_eq!(name, "chat message");
        assert_eq!(&payload[..], b"{\"a\":1}");
        assert_eq!(parse(&channel(None), &message("n", b"")).unwrap().0, None);
        assert!(parse("other:x", &m).is_none());
        assert!(parse(&channel(None), b"0").is_none());
        assert!(parse(&channel(None), b"fffab").is_none());
    }
}
