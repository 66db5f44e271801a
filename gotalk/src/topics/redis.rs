//! Topics across nodes (feature `redis`): every publication goes through Redis pub/sub,
//! and each node delivers what Redis hands back to its own subscribers.
//!
//! Channels are `gotalk:topic:<topic>` and `gotalk:everyone`; a message is the
//! notification's name length (three hex digits), its name, then its payload. One
//! connection publishes (fed by a bounded queue, so publishing never waits on Redis
//! either) and one subscribes to `gotalk:*`; either reconnects by itself, with back-off,
//! when Redis goes away. Publications made while Redis is away are lost (and logged).

use std::{
    io,
    sync::{Arc, Weak},
    time::Duration,
};

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::Shared;
use crate::Error;

/// Publications that may wait for Redis before new ones are dropped.
pub(super) const RELAY_QUEUE: usize = 4096;

const PREFIX: &str = "gotalk:";

/// A publication on its way to Redis: its channel and message.
pub(super) type Relayed = (String, Bytes);

fn redis_error(e: redis::RedisError) -> Error {
    Error::Io(Arc::new(io::Error::other(format!("redis: {e}"))))
}

/// The channel of `topic` (`None`: everyone).
pub(super) fn channel(topic: Option<&str>) -> String {
    match topic {
        Some(topic) => format!("{PREFIX}topic:{topic}"),
        None => format!("{PREFIX}everyone"),
    }
}

/// The message of notification `name` with `payload`.
pub(super) fn message(name: &str, payload: &[u8]) -> Bytes {
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
pub(super) async fn start(
    url: &str,
    shared: Weak<Shared>,
    stop: tokio_util::sync::CancellationToken,
) -> Result<mpsc::Sender<Relayed>, Error> {
    let client = redis::Client::open(url).map_err(redis_error)?;
    let publisher = client
        .get_multiplexed_async_connection()
        .await
        .map_err(redis_error)?;
    let subscriber = subscribe(&client).await.map_err(redis_error)?;
    let (tx, rx) = mpsc::channel(RELAY_QUEUE);
    tokio::spawn(publish(client.clone(), publisher, rx));
    tokio::spawn(receive(client, subscriber, shared, stop));
    Ok(tx)
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
    mut queue: mpsc::Receiver<Relayed>,
) {
    let mut failures = 0;
    while let Some((channel, message)) = queue.recv().await {
        let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(message.as_ref())
            .query_async(&mut conn)
            .await;
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
    stop: tokio_util::sync::CancellationToken,
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
