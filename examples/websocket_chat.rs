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

struct Chat {
    rooms: Mutex<BTreeMap<String, Vec<ChatMessage>>>,
    /// Every page, and the room each one is in.
    pages: Topics,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
    async fn rooms(&self) -> Vec<String> {
        lock(&self.rooms).keys().cloned().collect()
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
        EventsNotifier::room(&self.pages.everyone(), name.clone()).await?;
        Ok(name)
    }

    /// Moves the page to `room`: it hears that room's messages (and new rooms) from now.
    async fn join(&self, page: &Sock, room: String) -> Result<Vec<ChatMessage>, Error> {
        let history = match lock(&self.rooms).get(&room) {
            Some(history) => history.clone(),
            None => return Err(Error::message(format!("no room {room:?}"))),
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
        let room = self.pages.topic(&room_topic(&message.room));
        EventsNotifier::message(&room, message).await?;
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
    let rooms = ["lobby", "rust", "random"].map(|r| (r.to_string(), Vec::new()));
    let chat = Chat {
        rooms: Mutex::new(rooms.into()),
        pages: Topics::new(),
    };
    let config = Config::accepting().handlers(Handlers::new().with(RoomsService::new(chat)));
    let endpoint = ws::Endpoint::new(config);
    let addr = arg.unwrap_or_else(|| "127.0.0.1:1236".into());
    let server = ws::WebServer::bind(addr, endpoint, Some(page.into())).await?;
    println!("open http://{}/", server.local_addr());
    server.wait().await;
    Ok(())
}
