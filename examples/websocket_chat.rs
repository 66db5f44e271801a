//! A multi-user chat in the browser: rooms, names, and messages broadcast to every open
//! page as notifications. Open the page in two windows and talk to yourself.
//!
//!     cargo run --example websocket_chat     # then open http://127.0.0.1:1236/
//!
//! Operations the page calls: `rooms`, `create-room`, `join` (a room's recent messages),
//! `send`. Notifications the server sends: `message` (to every page), `rooms` (the list,
//! when a room is created).

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, OnceLock},
};

use gotalk::{ws, Config, Error, Handlers};
use serde::{Deserialize, Serialize};

/// Messages kept per room for pages that join later.
const HISTORY: usize = 100;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct ChatMessage {
    room: String,
    author: String,
    text: String,
}

#[derive(Default)]
struct Chat {
    rooms: Mutex<BTreeMap<String, Vec<ChatMessage>>>,
    /// Every open page, to broadcast to (set once the endpoint exists).
    pages: OnceLock<ws::Endpoint>,
}

impl Chat {
    fn room_names(&self) -> Vec<String> {
        self.rooms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    async fn broadcast<T: Serialize>(&self, name: &str, value: &T) {
        for page in self
            .pages
            .get()
            .map(ws::Endpoint::connections)
            .unwrap_or_default()
        {
            // A page that just left is no reason to fail the sender.
            let _ = page.notify(name, value).await;
        }
    }
}

fn clean(s: &str, max: usize) -> Result<String, Error> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > max {
        return Err(Error::message(format!("must be 1 to {max} characters")));
    }
    Ok(s.to_string())
}

fn handlers(chat: Arc<Chat>) -> Handlers {
    let mut h = Handlers::new();
    let c = chat.clone();
    h.handle("rooms", move |_: ()| {
        let c = c.clone();
        async move { Ok::<_, Error>(c.room_names()) }
    });
    let c = chat.clone();
    h.handle("create-room", move |name: String| {
        let c = c.clone();
        async move {
            let name = clean(&name, 40)?;
            c.rooms
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(name)
                .or_default();
            let names = c.room_names();
            c.broadcast("rooms", &names).await;
            Ok::<_, Error>(names)
        }
    });
    let c = chat.clone();
    h.handle("join", move |room: String| {
        let c = c.clone();
        async move {
            let rooms = c.rooms.lock().unwrap_or_else(|e| e.into_inner());
            match rooms.get(&room) {
                Some(history) => Ok(history.clone()),
                None => Err(Error::message(format!("no room {room:?}"))),
            }
        }
    });
    let c = chat;
    h.handle("send", move |msg: ChatMessage| {
        let c = c.clone();
        async move {
            let msg = ChatMessage {
                author: clean(&msg.author, 40)?,
                text: clean(&msg.text, 2000)?,
                room: msg.room,
            };
            {
                let mut rooms = c.rooms.lock().unwrap_or_else(|e| e.into_inner());
                let history = rooms
                    .get_mut(&msg.room)
                    .ok_or_else(|| Error::message(format!("no room {:?}", msg.room)))?;
                history.push(msg.clone());
                if history.len() > HISTORY {
                    history.remove(0);
                }
            }
            c.broadcast("message", &msg).await;
            Ok::<_, Error>(())
        }
    });
    h
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let chat = Arc::new(Chat::default());
    for room in ["lobby", "rust", "random"] {
        chat.rooms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(room.into(), Vec::new());
    }
    let endpoint = ws::Endpoint::new(Config::accepting().handlers(handlers(chat.clone())));
    let _ = chat.pages.set(endpoint.clone());
    let page = concat!(env!("CARGO_MANIFEST_DIR"), "/websocket/chat");
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:1236".into());
    let server = ws::WebServer::bind(addr, endpoint, Some(page.into())).await?;
    println!("open http://{}/", server.local_addr());
    server.wait().await;
    Ok(())
}
