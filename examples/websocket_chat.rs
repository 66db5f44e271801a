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
//! A model of fan-out: a broadcast never waits for any page. Each page has a bounded
//! queue of notifications that a task of its own sends in order; a page whose queue is
//! full (it stopped reading, or reads far slower than the others) is disconnected, so one
//! slow page costs the others nothing and the server at most `PAGE_QUEUE` notifications.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, MutexGuard, OnceLock},
};

use gotalk::{ws, Config, Error, Handlers, Sock};
use serde::Serialize;
use tokio::sync::mpsc;

#[path = "websocket/chat/api.rs"]
mod api;

use api::{ChatMessage, EventsNotifier, Rooms, RoomsService};

/// Messages kept per room for pages that join later.
const HISTORY: usize = 100;
/// Rooms there may be at most.
const MAX_ROOMS: usize = 100;
/// Notifications that may wait for one page before it counts as gone.
const PAGE_QUEUE: usize = 256;

/// A notification on its way to pages: its name and JSON payload, encoded once.
type Outgoing = (&'static str, Arc<serde_json::Value>);

#[derive(Default)]
struct Chat {
    rooms: Mutex<BTreeMap<String, Vec<ChatMessage>>>,
    /// Every open page, to broadcast to (set once the endpoint exists).
    pages: OnceLock<ws::Endpoint>,
    /// Each page's queue, by connection.
    queues: Mutex<HashMap<u64, mpsc::Sender<Outgoing>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Chat {
    fn room_names(&self) -> Vec<String> {
        lock(&self.rooms).keys().cloned().collect()
    }

    /// Queues a notification for every page, waiting for none.
    fn broadcast<T: Serialize>(&self, name: &'static str, value: &T) {
        let Ok(value) = serde_json::to_value(value) else {
            return;
        };
        let value = Arc::new(value);
        let pages = self
            .pages
            .get()
            .map(ws::Endpoint::connections)
            .unwrap_or_default();
        let mut behind = Vec::new();
        {
            let mut queues = lock(&self.queues);
            for page in pages {
                let queue = queues
                    .entry(page.id())
                    .or_insert_with(|| spawn_sender(page.clone()));
                if queue.try_send((name, value.clone())).is_err() {
                    behind.push(page);
                }
            }
        }
        // Closed outside the lock: closing runs `left`, which takes it.
        for page in behind {
            // Too far behind (or gone): it reconnects and reloads what it needs.
            eprintln!("disconnecting {}: it stopped reading", page.peer());
            page.close();
        }
    }

    /// Forgets a page that left.
    fn left(&self, page: &Sock) {
        lock(&self.queues).remove(&page.id());
    }
}

/// The task that sends one page its notifications, in order.
fn spawn_sender(page: Sock) -> mpsc::Sender<Outgoing> {
    let (tx, mut rx) = mpsc::channel::<Outgoing>(PAGE_QUEUE);
    tokio::spawn(async move {
        while let Some((name, value)) = rx.recv().await {
            if page.notify(name, &*value).await.is_err() {
                return;
            }
        }
    });
    tx
}

fn clean(s: &str, max: usize) -> Result<String, Error> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > max {
        return Err(Error::message(format!("must be 1 to {max} characters")));
    }
    Ok(s.to_string())
}

/// The wire names of the notifications, from the trait.
const MESSAGE: &str = EventsNotifier::NOTIFICATIONS[0];
const ROOM: &str = EventsNotifier::NOTIFICATIONS[1];

impl Rooms for Chat {
    async fn rooms(&self) -> Vec<String> {
        self.room_names()
    }

    async fn create_room(&self, name: String) -> Result<String, Error> {
        let name = clean(&name, 40)?;
        {
            let mut rooms = lock(&self.rooms);
            if rooms.contains_key(&name) {
                return Ok(name);
            }
            if rooms.len() >= MAX_ROOMS {
                return Err(Error::message(format!(
                    "there are {MAX_ROOMS} rooms already: join one of them"
                )));
            }
            rooms.insert(name.clone(), Vec::new());
        }
        self.broadcast(ROOM, &name);
        Ok(name)
    }

    async fn join(&self, room: String) -> Result<Vec<ChatMessage>, Error> {
        match lock(&self.rooms).get(&room) {
            Some(history) => Ok(history.clone()),
            None => Err(Error::message(format!("no room {room:?}"))),
        }
    }

    async fn send(&self, message: ChatMessage) -> Result<(), Error> {
        let message = ChatMessage {
            author: clean(&message.author, 40)?,
            text: clean(&message.text, 2000)?,
            room: message.room,
        };
        {
            let mut rooms = lock(&self.rooms);
            let history = rooms
                .get_mut(&message.room)
                .ok_or_else(|| Error::message(format!("no room {:?}", message.room)))?;
            history.push(message.clone());
            if history.len() > HISTORY {
                history.remove(0);
            }
        }
        self.broadcast(MESSAGE, &message);
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let page = concat!(env!("CARGO_MANIFEST_DIR"), "/websocket/chat");
    let arg = std::env::args().nth(1);
    if arg.as_deref() == Some("--write-ts") {
        let path = format!("{page}/api.ts");
        api::typescript().write(&path)?;
        println!("wrote {path}");
        return Ok(());
    }
    let chat = Arc::new(Chat::default());
    for room in ["lobby", "rust", "random"] {
        lock(&chat.rooms).insert(room.into(), Vec::new());
    }
    let gone = chat.clone();
    let config = Config::accepting()
        .handlers(Handlers::new().with(RoomsService::from_arc(chat.clone())))
        .on_close(move |page, _| gone.left(page));
    let endpoint = ws::Endpoint::new(config);
    let _ = chat.pages.set(endpoint.clone());
    let addr = arg.unwrap_or_else(|| "127.0.0.1:1236".into());
    let server = ws::WebServer::bind(addr, endpoint, Some(page.into())).await?;
    println!("open http://{}/", server.local_addr());
    server.wait().await;
    Ok(())
}
