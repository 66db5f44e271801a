//! A multi-user chat in the browser: rooms, names, and messages broadcast to every open
//! page as notifications. Open the page in two windows and talk to yourself.
//!
//!     cargo run --example websocket_chat     # then open http://127.0.0.1:1236/
//!
//! The contract is two traits in `websocket/chat/api.rs`: `Rooms`, which the page calls
//! (`rooms`, `create-room`, `join`, `send`), and `Events`, the notifications the server
//! sends every page (`message`, `room`). The page is TypeScript (`page.ts`) typed from
//! them through the generated `api.ts` (`-- --write-ts` writes it), bundled into
//! `page.js` with esbuild:
//!
//!     gotalk/js/node_modules/.bin/esbuild examples/websocket/chat/page.ts --bundle \
//!         --outfile=examples/websocket/chat/page.js
//!
//! A model of fan-out, on `gotalk::Topics`: a page that joins a room subscribes to its
//! topic, a message goes to the room's topic and a new room to every page, through the
//! generated notifier (`EventsNotifier::message(&topics.topic(..), msg)`). A publication
//! never waits for any page: it goes into each page's write queue, and a page whose queue
//! is full (it stopped reading, or reads far slower than the others: 4 MiB behind) is
//! disconnected, so one slow page costs the others nothing.
//!
//! Several nodes, behind a load balancer, share rooms, history and publications through
//! Redis (built with `--features redis`): each node runs
//!
//!     cargo run --example websocket_chat --features redis -- 127.0.0.1:1236 --redis redis://127.0.0.1/
//!
//! and a page on any node talks with the pages of every other (`Topics::redis`); the
//! rooms and their recent messages are a Redis set and lists. A page whose node stops
//! reconnects (gotalk.js `connection()`) through the load balancer to another, and joins
//! its room again.

use std::{
    collections::BTreeMap,
    sync::{Mutex, MutexGuard},
};

use gotalk::{ws, Config, Error, Handlers, Sock, Topics};

#[path = "websocket/chat/api.rs"]
mod api;

use api::{ChatMessage, EventsNotifier, Rooms, RoomsService};

/// Messages kept per room for pages that join later.
const HISTORY: usize = 100;
/// Rooms there may be at most.
const MAX_ROOMS: usize = 100;
/// The rooms a chat starts with.
const FIRST_ROOMS: [&str; 3] = ["lobby", "rust", "random"];

struct Chat {
    /// Rooms and their recent messages.
    store: Store,
    /// Every page, and the room each one is in.
    pages: Topics,
}

/// Where rooms and their history live: in this process, or in Redis for every node.
enum Store {
    Local(Mutex<BTreeMap<String, Vec<ChatMessage>>>),
    #[cfg(feature = "redis")]
    Redis(redis_store::RedisStore),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Store {
    fn local() -> Self {
        let rooms = FIRST_ROOMS.map(|r| (r.to_string(), Vec::new()));
        Self::Local(Mutex::new(rooms.into()))
    }

    async fn rooms(&self) -> Result<Vec<String>, Error> {
        match self {
            Self::Local(rooms) => Ok(lock(rooms).keys().cloned().collect()),
            #[cfg(feature = "redis")]
            Self::Redis(redis) => redis.rooms().await,
        }
    }

    /// Adds a room; `false` if it was there already.
    async fn create(&self, name: &str) -> Result<bool, Error> {
        match self {
            Self::Local(rooms) => {
                let mut rooms = lock(rooms);
                if rooms.contains_key(name) {
                    return Ok(false);
                }
                if rooms.len() >= MAX_ROOMS {
                    return Err(too_many_rooms());
                }
                rooms.insert(name.to_owned(), Vec::new());
                Ok(true)
            }
            #[cfg(feature = "redis")]
            Self::Redis(redis) => redis.create(name).await,
        }
    }

    /// A room's recent messages, or `None` if there is no such room.
    async fn history(&self, room: &str) -> Result<Option<Vec<ChatMessage>>, Error> {
        match self {
            Self::Local(rooms) => Ok(lock(rooms).get(room).cloned()),
            #[cfg(feature = "redis")]
            Self::Redis(redis) => redis.history(room).await,
        }
    }

    /// Keeps a message in its room's history; `false` if there is no such room.
    async fn append(&self, message: &ChatMessage) -> Result<bool, Error> {
        match self {
            Self::Local(rooms) => {
                let mut rooms = lock(rooms);
                let Some(history) = rooms.get_mut(&message.room) else {
                    return Ok(false);
                };
                history.push(message.clone());
                if history.len() > HISTORY {
                    history.remove(0);
                }
                Ok(true)
            }
            #[cfg(feature = "redis")]
            Self::Redis(redis) => redis.append(message).await,
        }
    }
}

fn too_many_rooms() -> Error {
    Error::message(format!(
        "there are {MAX_ROOMS} rooms already: join one of them"
    ))
}

/// Rooms in a Redis set, each room's history in a list, shared by every node.
#[cfg(feature = "redis")]
mod redis_store {
    use redis::{aio::MultiplexedConnection, AsyncCommands};

    use super::{ChatMessage, Error, FIRST_ROOMS, HISTORY, MAX_ROOMS};

    const ROOMS: &str = "chat:rooms";

    fn history_key(room: &str) -> String {
        format!("chat:history:{room}")
    }

    fn failed(e: redis::RedisError) -> Error {
        tracing::warn!("redis: {e}");
        Error::message("the chat's store is not available now")
    }

    pub struct RedisStore(MultiplexedConnection);

    impl RedisStore {
        pub async fn connect(url: &str) -> Result<Self, Error> {
            let client = redis::Client::open(url).map_err(failed)?;
            let mut conn = client
                .get_multiplexed_async_connection()
                .await
                .map_err(failed)?;
            let () = conn.sadd(ROOMS, &FIRST_ROOMS).await.map_err(failed)?;
            Ok(Self(conn))
        }

        pub async fn rooms(&self) -> Result<Vec<String>, Error> {
            let mut rooms: Vec<String> = self.0.clone().smembers(ROOMS).await.map_err(failed)?;
            rooms.sort();
            Ok(rooms)
        }

        pub async fn create(&self, name: &str) -> Result<bool, Error> {
            let mut conn = self.0.clone();
            if conn.sismember(ROOMS, name).await.map_err(failed)? {
                return Ok(false);
            }
            let count: usize = conn.scard(ROOMS).await.map_err(failed)?;
            if count >= MAX_ROOMS {
                return Err(super::too_many_rooms());
            }
            let added: usize = conn.sadd(ROOMS, name).await.map_err(failed)?;
            Ok(added == 1)
        }

        pub async fn history(&self, room: &str) -> Result<Option<Vec<ChatMessage>>, Error> {
            let mut conn = self.0.clone();
            if !conn.sismember(ROOMS, room).await.map_err(failed)? {
                return Ok(None);
            }
            let kept: Vec<String> = conn
                .lrange(history_key(room), 0, -1)
                .await
                .map_err(failed)?;
            Ok(Some(
                kept.iter()
                    .filter_map(|json| serde_json::from_str(json).ok())
                    .collect(),
            ))
        }

        pub async fn append(&self, message: &ChatMessage) -> Result<bool, Error> {
            let mut conn = self.0.clone();
            if !conn.sismember(ROOMS, &message.room).await.map_err(failed)? {
                return Ok(false);
            }
            let json = serde_json::to_string(message).map_err(|e| Error::message(e.to_string()))?;
            let key = history_key(&message.room);
            let () = redis::pipe()
                .rpush(&key, json)
                .ignore()
                .ltrim(&key, -(HISTORY as isize), -1)
                .ignore()
                .query_async(&mut conn)
                .await
                .map_err(failed)?;
            Ok(true)
        }
    }
}

/// The topic of a room's pages.
fn room_topic(room: &str) -> String {
    format!("room:{room}")
}

fn clean(s: &str, max: usize) -> Result<String, Error> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > max {
        return Err(Error::message(format!("must be 1 to {max} characters")));
    }
    Ok(s.to_string())
}

impl Rooms for Chat {
    async fn rooms(&self) -> Result<Vec<String>, Error> {
        self.store.rooms().await
    }

    async fn create_room(&self, name: String) -> Result<String, Error> {
        let name = clean(&name, 40)?;
        if self.store.create(&name).await? {
            EventsNotifier::room(&self.pages.everyone(), name.clone()).await?;
        }
        Ok(name)
    }

    /// Moves the page to `room`: it hears that room's messages (and new rooms) from now.
    async fn join(&self, page: &Sock, room: String) -> Result<Vec<ChatMessage>, Error> {
        let Some(history) = self.store.history(&room).await? else {
            return Err(Error::message(format!("no room {room:?}")));
        };
        for topic in self.pages.subscriptions(page) {
            self.pages.unsubscribe(page, &topic);
        }
        self.pages.subscribe(page, &room_topic(&room));
        Ok(history)
    }

    async fn send(&self, message: ChatMessage) -> Result<(), Error> {
        let message = ChatMessage {
            author: clean(&message.author, 40)?,
            text: clean(&message.text, 2000)?,
            room: message.room,
        };
        if !self.store.append(&message).await? {
            return Err(Error::message(format!("no room {:?}", message.room)));
        }
        let room = self.pages.topic(&room_topic(&message.room));
        EventsNotifier::message(&room, message).await?;
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "gotalk=info".into()),
        )
        .init();
    let page = concat!(env!("CARGO_MANIFEST_DIR"), "/websocket/chat");
    let mut args = std::env::args().skip(1);
    let mut addr = None;
    let mut redis = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--write-ts" => {
                let path = format!("{page}/api.ts");
                api::typescript().write(&path)?;
                println!("wrote {path}");
                return Ok(());
            }
            "--redis" => redis = Some(args.next().ok_or("--redis needs a URL")?),
            _ => addr = Some(arg),
        }
    }
    let chat = match redis {
        None => Chat {
            store: Store::local(),
            pages: Topics::new(),
        },
        #[cfg(feature = "redis")]
        Some(url) => Chat {
            store: Store::Redis(redis_store::RedisStore::connect(&url).await?),
            pages: Topics::redis(&url).await?,
        },
        #[cfg(not(feature = "redis"))]
        Some(_) => {
            return Err("--redis needs the example built with --features redis".into());
        }
    };
    let config = Config::accepting().handlers(Handlers::new().with(RoomsService::new(chat)));
    let endpoint = ws::Endpoint::new(config);
    let addr = addr.unwrap_or_else(|| "127.0.0.1:1236".into());
    let server = ws::WebServer::bind(addr, endpoint, Some(page.into())).await?;
    println!("open http://{}/", server.local_addr());
    server.wait().await;
    Ok(())
}
