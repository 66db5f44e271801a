//! Topics: notifications to every connection subscribed to a name, or to every
//! connection a [`Topics`] knows, without the publisher ever waiting for a peer.
//!
//! A publication goes straight into each subscriber's own write queue, without waiting
//! (its payload encoded once; a large one is shared, not copied). A connection whose write queue is
//! full ([`Limits::write_buffer`](crate::Limits::write_buffer) bytes, 4 MiB by default:
//! it stopped reading, or reads far slower than the publications come) is closed instead:
//! one slow peer costs the others nothing, and the process at most that many bytes for
//! it, within its byte budget. A connection forgets its subscriptions when it closes,
//! whatever closed it.
//!
//! The generated notifiers send to a topic as to one connection:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), gotalk::Error> {
//! use gotalk::{Config, Topics};
//!
//! #[gotalk::notification]
//! pub trait Chat {
//!     async fn message(&self, text: String);
//! }
//!
//! let topics = Topics::new();
//! let (sock, _peer) = gotalk::pipe(Config::dialling(), Config::accepting());
//! topics.subscribe(&sock, "room:lobby");
//! ChatNotifier::message(&topics.topic("room:lobby"), "hi all".into()).await?;
//! ChatNotifier::message(&topics.everyone(), "hi everyone".into()).await?;
//! # Ok(()) }
//! ```

use std::{
    collections::{HashMap, HashSet},
    fmt,
    future::Future,
    sync::Arc,
};

use bytes::Bytes;

use crate::{
    sync::{lock, Mutex},
    Error, Sock,
};

#[cfg(feature = "redis")]
mod redis;

/// Anything a notification can be sent to: one connection ([`Sock`]), the subscribers of
/// a topic ([`Topic`]), or every connection of a [`Topics`] ([`Everyone`]). The generated
/// notifiers take any of them.
pub trait Notify: Sync {
    /// Sends notification `name` with a raw payload.
    fn notify_payload(
        &self,
        name: &str,
        payload: Bytes,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

impl Notify for Sock {
    fn notify_payload(
        &self,
        name: &str,
        payload: Bytes,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        self.notify_raw(name, payload)
    }
}

struct Member {
    sock: Sock,
    topics: HashSet<Arc<str>>,
}

#[derive(Default)]
struct Registry {
    /// Every connection that joined, by connection ID.
    members: HashMap<u64, Member>,
    /// Each topic's subscribers.
    topics: HashMap<Arc<str>, HashSet<u64>>,
}

#[derive(Default)]
struct Shared {
    registry: Mutex<Registry>,
    /// Where publications go through Redis (feature `redis`), to come back to every node.
    #[cfg(feature = "redis")]
    relay: std::sync::OnceLock<redis::Relay>,
}

#[cfg(feature = "redis")]
impl Drop for Shared {
    /// Stops the task that receives from Redis.
    fn drop(&mut self) {
        if let Some(relay) = self.relay.get() {
            relay.stop();
        }
    }
}

/// Topics and their subscribers, in this process. Cheap to clone: clones share them.
#[derive(Clone)]
pub struct Topics {
    shared: Arc<Shared>,
}

impl Default for Topics {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Topics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let registry = lock(&self.shared.registry);
        f.debug_struct("Topics")
            .field("connections", &registry.members.len())
            .field("topics", &registry.topics.len())
            .finish()
    }
}

impl Topics {
    /// Topics of this process.
    pub fn new() -> Self {
        Self {
            shared: Arc::default(),
        }
    }

    /// Topics shared by every node connected to the Redis at `url` (feature `redis`, e.g.
    /// `redis://127.0.0.1:6379/`): a publication on any node reaches the subscribers of
    /// all of them. Publishing never waits on Redis either: up to 16 MiB of publications
    /// wait for it; past that, and while Redis is away, they are dropped and logged. Fails
    /// if Redis cannot be reached now; later outages are reconnected with back-off.
    #[cfg(feature = "redis")]
    pub async fn redis(url: &str) -> Result<Self, Error> {
        let topics = Self::new();
        let relay = redis::start(url, Arc::downgrade(&topics.shared)).await?;
        let _ = topics.shared.relay.set(relay);
        Ok(topics)
    }

    /// Counts `sock` among [`everyone`](Self::everyone) (subscribing does too), until it
    /// closes.
    pub fn join(&self, sock: &Sock) {
        let mut registry = lock(&self.shared.registry);
        self.member(&mut registry, sock);
    }

    /// Subscribes `sock` to `topic` (again is no-op), until it unsubscribes or closes.
    pub fn subscribe(&self, sock: &Sock, topic: &str) {
        let mut registry = lock(&self.shared.registry);
        let Some(member) = self.member(&mut registry, sock) else {
            return;
        };
        let topic: Arc<str> = topic.into();
        member.topics.insert(topic.clone());
        registry.topics.entry(topic).or_default().insert(sock.id());
    }

    /// Unsubscribes `sock` from `topic`.
    pub fn unsubscribe(&self, sock: &Sock, topic: &str) {
        let mut registry = lock(&self.shared.registry);
        if let Some(member) = registry.members.get_mut(&sock.id()) {
            member.topics.remove(topic);
        }
        remove_subscriber(&mut registry, topic, sock.id());
    }

    /// The topics `sock` is subscribed to.
    pub fn subscriptions(&self, sock: &Sock) -> Vec<String> {
        let registry = lock(&self.shared.registry);
        let mut topics: Vec<String> = registry
            .members
            .get(&sock.id())
            .map(|m| m.topics.iter().map(|t| t.to_string()).collect())
            .unwrap_or_default();
        topics.sort();
        topics
    }

    /// How many connections are subscribed to `topic`.
    pub fn subscribers(&self, topic: &str) -> usize {
        lock(&self.shared.registry)
            .topics
            .get(topic)
            .map_or(0, HashSet::len)
    }

    /// A topic to send notifications to (see [`Notify`]).
    pub fn topic(&self, name: &str) -> Topic {
        Topic {
            topics: self.clone(),
            name: name.into(),
        }
    }

    /// Every connection that joined or subscribed, to send notifications to.
    pub fn everyone(&self) -> Everyone {
        Everyone {
            topics: self.clone(),
        }
    }

    /// Queues notification `name` in the write queue of every subscriber of `topic` and
    /// returns how many it was queued for. Never waits; a connection whose write queue is
    /// full is closed instead. Through Redis
    /// (`Topics::redis`, feature `redis`) it is delivered when Redis hands it back to every node,
    /// and this returns 0.
    pub fn publish_raw(&self, topic: &str, name: &str, payload: Bytes) -> usize {
        self.deliver(Some(topic), name, payload)
    }

    /// [`publish_raw`](Self::publish_raw) to every connection that joined or subscribed.
    pub fn broadcast_raw(&self, name: &str, payload: Bytes) -> usize {
        self.deliver(None, name, payload)
    }

    fn deliver(&self, topic: Option<&str>, name: &str, payload: Bytes) -> usize {
        #[cfg(feature = "redis")]
        if let Some(relay) = self.shared.relay.get() {
            // Delivered when Redis hands it back, on every node (this one included).
            relay.publish(topic, name, &payload);
            return 0;
        }
        self.shared.deliver_here(topic, name, payload)
    }

    /// The member entry of `sock`, made on first use (with a task that forgets it when it
    /// closes); `None` if the connection is closed already.
    fn member<'r>(&self, registry: &'r mut Registry, sock: &Sock) -> Option<&'r mut Member> {
        if sock.is_closed() {
            return None;
        }
        let member = registry.members.entry(sock.id()).or_insert_with(|| {
            tokio::spawn(forget_when_closed(
                sock.clone(),
                Arc::downgrade(&self.shared),
            ));
            Member {
                sock: sock.clone(),
                topics: HashSet::new(),
            }
        });
        Some(member)
    }
}

impl Shared {
    /// Queues a notification for this process's subscribers of `topic` (`None`: every
    /// connection), closing those whose write queue is full; returns how many it was
    /// queued for.
    fn deliver_here(&self, topic: Option<&str>, name: &str, payload: Bytes) -> usize {
        let (mut behind, mut closed) = (Vec::new(), Vec::new());
        let mut queued = 0;
        {
            let registry = lock(&self.registry);
            let mut offer =
                |member: &Member| match member.sock.try_notify_raw(name, payload.clone()) {
                    Ok(true) => queued += 1,
                    Ok(false) => behind.push(member.sock.clone()),
                    Err(_) => closed.push(member.sock.id()),
                };
            match topic {
                Some(topic) => {
                    for id in registry.topics.get(topic).into_iter().flatten() {
                        if let Some(member) = registry.members.get(id) {
                            offer(member);
                        }
                    }
                }
                None => registry.members.values().for_each(offer),
            }
        }
        // Closed outside the lock: closing makes the connection's task take it.
        for sock in &behind {
            tracing::warn!(
                conn = sock.id(),
                "closing: its write queue is full (it stopped reading)"
            );
            sock.close();
        }
        // Forgotten now: a closed connection may take a while to finish closing (its
        // writer waits out the write timeout), and is sent nothing meanwhile.
        if !(behind.is_empty() && closed.is_empty()) {
            let mut registry = lock(&self.registry);
            for id in behind.iter().map(Sock::id).chain(closed) {
                registry.forget(id);
            }
        }
        queued
    }
}

impl Registry {
    /// Forgets a connection and its subscriptions.
    fn forget(&mut self, id: u64) {
        if let Some(member) = self.members.remove(&id) {
            for topic in member.topics {
                remove_subscriber(self, &topic, id);
            }
        }
    }
}

fn remove_subscriber(registry: &mut Registry, topic: &str, id: u64) {
    if let Some(subscribers) = registry.topics.get_mut(topic) {
        subscribers.remove(&id);
        if subscribers.is_empty() {
            registry.topics.remove(topic);
        }
    }
}

/// Forgets a connection's subscriptions once it closes.
async fn forget_when_closed(sock: Sock, shared: std::sync::Weak<Shared>) {
    sock.closed().await;
    let Some(shared) = shared.upgrade() else {
        return;
    };
    lock(&shared.registry).forget(sock.id());
}

/// The subscribers of one topic, as a target for notifications ([`Topics::topic`]).
#[derive(Clone, Debug)]
pub struct Topic {
    topics: Topics,
    name: String,
}

impl Topic {
    /// Queues a notification for every subscriber; see [`Topics::publish_raw`].
    pub fn publish_raw(&self, name: &str, payload: Bytes) -> usize {
        self.topics.publish_raw(&self.name, name, payload)
    }
}

impl Notify for Topic {
    async fn notify_payload(&self, name: &str, payload: Bytes) -> Result<(), Error> {
        self.publish_raw(name, payload);
        Ok(())
    }
}

/// Every connection of a [`Topics`], as a target for notifications
/// ([`Topics::everyone`]).
#[derive(Clone, Debug)]
pub struct Everyone {
    topics: Topics,
}

impl Notify for Everyone {
    async fn notify_payload(&self, name: &str, payload: Bytes) -> Result<(), Error> {
        self.topics.broadcast_raw(name, payload);
        Ok(())
    }
}
