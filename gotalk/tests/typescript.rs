//! The TypeScript module made from traits (feature `typescript`): `typescript/api.ts` is
//! committed, and this test fails when the traits would make another one. Regenerate it
//! with `GOTALK_TYPESCRIPT=write cargo test --workspace --test typescript`; CI checks it
//! and `typescript/page.ts`, which uses it, with `tsc --strict`.
#![cfg(feature = "typescript")]

use std::collections::BTreeMap;

use gotalk::{ts_rs::TS, typescript::Module, Error, StreamIn, StreamOut};
use serde::{Deserialize, Serialize};

/// Someone to greet.
#[derive(Serialize, Deserialize, TS)]
#[ts(crate = "gotalk::ts_rs")]
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

#[derive(Serialize, Deserialize, TS)]
#[ts(crate = "gotalk::ts_rs")]
pub struct GreetOut {
    pub greeting: String,
    #[serde(rename = "n")]
    pub count: u64,
}

/// Externally tagged (serde's default).
#[derive(Serialize, Deserialize, TS)]
#[ts(crate = "gotalk::ts_rs")]
pub enum Shape {
    Point,
    Circle { radius: f64 },
    Square(f64),
}

/// Internally tagged.
#[derive(Serialize, Deserialize, TS)]
#[ts(crate = "gotalk::ts_rs")]
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
#[derive(Serialize, Deserialize, TS)]
#[ts(crate = "gotalk::ts_rs")]
#[serde(tag = "t", content = "c")]
pub enum Command {
    Say(String),
    Move { x: i32, y: i32 },
}

/// Untagged.
#[derive(Serialize, Deserialize, TS)]
#[ts(crate = "gotalk::ts_rs")]
#[serde(untagged)]
pub enum IdOrName {
    Id(u32),
    Name(String),
}

/// A generic page of items.
#[derive(Serialize, Deserialize, TS)]
#[ts(crate = "gotalk::ts_rs")]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

#[derive(Serialize, Deserialize, TS)]
#[ts(crate = "gotalk::ts_rs")]
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
}

#[gotalk::notification(typescript)]
pub trait Chat {
    #[gotalk(name = "chat message")]
    async fn message(&self, text: String);
    async fn event(&self, event: Event);
}

fn module() -> Module {
    Module::new()
        .import_from("../../js/gotalk")
        .add::<GreetClient>()
        .add::<ShapesClient>()
        .add::<ChatNotifier>()
}

#[test]
fn the_committed_module_is_what_the_traits_make() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/typescript/api.ts");
    if let Err(stale) = module().check_or_write(path) {
        panic!("{stale}");
    }
}

#[test]
fn wire_names_types_and_shapes_come_from_the_traits() {
    let ts = module().render();
    for expected in [
        // serde's renames and skips, optional fields, u64 as number.
        "export type GreetIn = { firstName: string, \n/**\n * Left out of the JSON when absent.\n */\ntitle?: string, };",
        "export type GreetOut = { greeting: string, n: number, };",
        "export type Event = { \"kind\": \"joined\", user: string, } | { \"kind\": \"left\", user: string, reason: string | null, };",
        "export type IdOrName = number | string;",
        "export type Page<T> = { items: Array<T>, next: string | null, };",
        // Calls with their wire names.
        "greet(sock: Sock, input: GreetIn): Promise<GreetOut> {\n    return sock.request<GreetOut>(\"greet\", input);",
        "echoText(sock: Sock, input: string): Promise<string> {\n    return sock.request<string>(\"echo\", input);",
        "count(sock: Sock, input: number): Results<number> {\n    return results<number>(sock.streamResults(\"shapes.count\", input));",
        "upper(sock: Sock, first: string): Writer<string, string> {",
        "sock.notify(\"chat message\", input);",
        "ping(sock: Sock): Promise<null> {\n    return sock.request<null>(\"ping\", null);",
        // The page's side.
        "handlers.handleRequest(\"greet\", (input, answer) => serve<GreetOut>(answer, () => impl.greet(input as GreetIn)));",
        "handlers.handleNotification(\"chat message\", (input) => impl.message(input as string));",
        "handlers.handleRequest(\"ping\", (input, answer) => serve<null>(answer, () => impl.ping()));",
    ] {
        assert!(ts.contains(expected), "missing:\n{expected}\n\nin:\n{ts}");
    }
    // Each type once, dependencies before their users.
    assert_eq!(ts.matches("export type GreetOut =").count(), 1);
    assert!(ts.find("export type Shape =") < ts.find("export type Everything ="));
}
