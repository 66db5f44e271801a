//! The contract between the chat's server and its page: the page's code (`page.ts`) is
//! typed from these traits through `api.ts`, generated from them
//! (`cargo run --example websocket_chat -- --write-ts`; `tests/typescript.rs` fails while
//! the committed one is stale).

use gotalk::{ts_rs::TS, typescript::Module, Error, Sock};
use serde::{Deserialize, Serialize};

/// One message, in one room.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[ts(crate = "gotalk::ts_rs")]
pub struct ChatMessage {
    pub room: String,
    pub author: String,
    pub text: String,
}

/// What the page asks the server.
#[gotalk::service(typescript)]
pub trait Rooms {
    /// The rooms there are, by name.
    async fn rooms(&self) -> Result<Vec<String>, Error>;
    /// Creates a room (or finds the one of that name) and tells every page.
    #[gotalk(name = "create-room")]
    async fn create_room(&self, name: String) -> Result<String, Error>;
    /// Moves the page to a room: its recent messages, and its new ones as they come.
    async fn join(&self, page: &Sock, room: String) -> Result<Vec<ChatMessage>, Error>;
    /// Says something in a room: every page is told.
    async fn send(&self, message: ChatMessage) -> Result<(), Error>;
}

/// What the server tells every page. (The page implements it; the server only sends it.)
#[gotalk::notification(typescript)]
#[allow(dead_code)]
pub trait Events {
    /// A message said in the page's room.
    async fn message(&self, message: ChatMessage);
    /// A new room's name.
    async fn room(&self, name: String);
}

/// The TypeScript module of the traits above.
pub fn typescript() -> Module {
    Module::new()
        .import_from("../../../gotalk/js/gotalk")
        .add::<RoomsClient>()
        .add::<EventsNotifier>()
}
