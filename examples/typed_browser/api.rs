//! The contract of `typed_browser`: Rust types and traits of every shape serde gives
//! JSON, from which `api.ts` is generated for the page (`tests/typescript.rs` keeps it
//! fresh), and whose JSON Schemas (schemars) describe the server to the inspector page
//! and `gotalk describe`. Shared by the example's server and the tests.

use std::collections::BTreeMap;

use gotalk::{
    schemars::JsonSchema, ts_rs::TS, typescript::Module, Error, Sock, StreamIn, StreamOut,
};
use serde::{Deserialize, Serialize};

/// Someone to greet.
#[derive(Serialize, Deserialize, TS, JsonSchema, Clone, Debug, PartialEq)]
#[ts(crate = "gotalk::ts_rs")]
#[schemars(crate = "gotalk::schemars")]
#[serde(rename_all = "camelCase")]
pub struct GreetIn {
    pub first_name: String,
    /// Left out of the JSON when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub title: Option<String>,
    #[serde(skip)]
    pub not_on_the_wire: u8,
}

#[derive(Serialize, Deserialize, TS, JsonSchema, Clone, Debug, PartialEq)]
#[ts(crate = "gotalk::ts_rs")]
#[schemars(crate = "gotalk::schemars")]
pub struct GreetOut {
    pub greeting: String,
    #[serde(rename = "n")]
    pub count: u64,
}

/// Externally tagged (serde's default).
#[derive(Serialize, Deserialize, TS, JsonSchema, Clone, Debug, PartialEq)]
#[ts(crate = "gotalk::ts_rs")]
#[schemars(crate = "gotalk::schemars")]
pub enum Shape {
    Point,
    Circle { radius: f64 },
    Square(f64),
}

/// Internally tagged.
#[derive(Serialize, Deserialize, TS, JsonSchema, Clone, Debug, PartialEq)]
#[ts(crate = "gotalk::ts_rs")]
#[schemars(crate = "gotalk::schemars")]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    Joined {
        user: String,
    },
    Left {
        user: String,
        reason: Option<String>,
    },
}

/// Adjacently tagged.
#[derive(Serialize, Deserialize, TS, JsonSchema, Clone, Debug, PartialEq)]
#[ts(crate = "gotalk::ts_rs")]
#[schemars(crate = "gotalk::schemars")]
#[serde(tag = "t", content = "c")]
pub enum Command {
    Say(String),
    Move { x: i32, y: i32 },
}

/// Untagged.
#[derive(Serialize, Deserialize, TS, JsonSchema, Clone, Debug, PartialEq)]
#[ts(crate = "gotalk::ts_rs")]
#[schemars(crate = "gotalk::schemars")]
#[serde(untagged)]
pub enum IdOrName {
    Id(u32),
    Name(String),
}

/// Why a shape has no area: a typed error, which the page gets back as this type.
#[derive(Serialize, Deserialize, TS, JsonSchema, Clone, Debug, PartialEq)]
#[ts(crate = "gotalk::ts_rs")]
#[schemars(crate = "gotalk::schemars")]
#[serde(tag = "kind")]
pub enum AreaError {
    NoArea,
    Negative { side: f64 },
}

impl std::fmt::Display for AreaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoArea => f.write_str("a point has no area"),
            Self::Negative { side } => write!(f, "a side of {side} is negative"),
        }
    }
}

/// A generic page of items.
#[derive(Serialize, Deserialize, TS, JsonSchema, Clone, Debug, PartialEq)]
#[ts(crate = "gotalk::ts_rs")]
#[schemars(crate = "gotalk::schemars")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

#[derive(Serialize, Deserialize, TS, JsonSchema, Clone, Debug, PartialEq)]
#[ts(crate = "gotalk::ts_rs")]
#[schemars(crate = "gotalk::schemars")]
pub struct Everything {
    pub shape: Shape,
    pub event: Event,
    pub command: Command,
    pub who: IdOrName,
    pub tags: BTreeMap<String, Vec<u16>>,
    pub pages: Page<Page<GreetOut>>,
    pub pair: (bool, String),
    pub raw: serde_json::Value,
}

/// Greetings, both ways.
#[gotalk::service(typescript)]
pub trait Greet {
    /// Greets one person.
    async fn greet(&self, input: GreetIn) -> Result<GreetOut, Error>;
    #[gotalk(name = "echo")]
    async fn echo_text(&self, text: String) -> String;
    async fn ping(&self);
}

#[gotalk::service(typescript, prefix = "shapes.")]
pub trait Shapes {
    /// Sends a value of every shape back.
    async fn round_trip(&self, value: Everything) -> Everything;
    /// Counts up to `n`, a result each.
    async fn count(&self, n: u32) -> StreamOut<u32>;
    /// Upper-cases every part it is sent.
    async fn upper(&self, parts: StreamIn<String>) -> StreamOut<String>;
    /// The shape's area; a typed error for a shape without one.
    async fn area(&self, shape: Shape) -> Result<f64, AreaError>;
}

#[gotalk::notification(typescript)]
pub trait Chat {
    #[gotalk(name = "chat message")]
    async fn message(&self, sock: &Sock, text: String);
    async fn event(&self, sock: &Sock, event: Event);
}

/// The TypeScript module of the traits above, importing gotalk.js's types from the
/// repository's `gotalk/js`.
pub fn typescript() -> Module {
    Module::new()
        .import_from("../../gotalk/js/gotalk")
        .add::<GreetClient>()
        .add::<ShapesClient>()
        .add::<ChatNotifier>()
}
