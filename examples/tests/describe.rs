//! What `typed_browser`'s services say about themselves (feature `schema`): every method
//! described, and the JSON Schema of every serde shape the example covers taking what
//! serde writes for it, and refusing what serde would not read.

use std::collections::BTreeMap;

use gotalk::{
    describe::{Description, Kind},
    Error, Handlers, Sock, StreamIn, StreamOut,
};
use serde::Serialize;
use serde_json::{json, Value};

#[path = "../typed_browser/api.rs"]
#[allow(dead_code)]
mod api;

use api::*;

/// Only described, never served.
struct Described;

impl Greet for Described {
    async fn greet(&self, _: GreetIn) -> Result<GreetOut, Error> {
        Err(Error::message("not served"))
    }
    async fn echo_text(&self, text: String) -> String {
        text
    }
    async fn ping(&self) {}
}

impl Shapes for Described {
    async fn round_trip(&self, value: Everything) -> Everything {
        value
    }
    async fn count(&self, _: u32) -> StreamOut<u32> {
        StreamOut::iter(Vec::new())
    }
    async fn upper(&self, _: StreamIn<String>) -> StreamOut<String> {
        StreamOut::iter(Vec::new())
    }
    async fn area(&self, _: Shape) -> Result<f64, AreaError> {
        Err(AreaError::NoArea)
    }
}

impl Chat for Described {
    async fn message(&self, _: &Sock, _: String) {}
    async fn event(&self, _: &Sock, _: Event) {}
}

fn description() -> Description {
    Handlers::new()
        .with(GreetService::new(Described))
        .with(ShapesService::new(Described))
        .with(ChatService::new(Described))
        .describe()
}

#[test]
fn every_method_is_described() {
    let description = description();
    let signatures: Vec<String> = description
        .operations
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        signatures,
        [
            "notification \"chat message\"(String)",
            "echo(String) -> String",
            "notification event(Event)",
            "greet(GreetIn) -> Result<GreetOut, Error>",
            "ping() -> ()",
            "shapes.area(Shape) -> Result<f64, AreaError>",
            "shapes.count(u32) -> stream of u32",
            "shapes.round_trip(Everything) -> Everything",
            "shapes.upper(stream of String) -> stream of String",
        ]
    );
    let greet = description.get("greet").unwrap();
    assert_eq!(
        (greet.kind, greet.docs.as_str()),
        (Kind::Request, "Greets one person.")
    );
    assert_eq!(greet.service.as_deref(), Some("Greet"));
    // A text error has no schema (it travels as text); a typed one does.
    assert!(greet.error.as_ref().unwrap().schema.is_none());
    let area = description.get("shapes.area").unwrap();
    assert!(area.error.as_ref().unwrap().schema.is_some());
    assert_eq!(
        description.get("shapes.upper").unwrap().kind,
        Kind::StreamRequest
    );
    assert!(description.get("shapes.count").unwrap().streams_results);
}

/// The schema of `op`'s input (or `output`, or `error`).
fn schema(op: &str, which: &str) -> Value {
    let description = description();
    let op = description.get(op).unwrap_or_else(|| panic!("no {op}"));
    let ty = match which {
        "input" => &op.input,
        "output" => &op.output,
        _ => &op.error,
    };
    ty.as_ref()
        .and_then(|t| t.schema.clone())
        .unwrap_or_else(|| panic!("no schema"))
}

/// `schema` takes what serde writes for `value`.
fn takes<T: Serialize>(schema: &Value, value: &T) {
    let json = serde_json::to_value(value).unwrap();
    let validator = jsonschema::validator_for(schema).unwrap();
    let wrong: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| e.to_string())
        .collect();
    assert!(
        wrong.is_empty(),
        "{json} refused: {wrong:?}\nschema: {schema:#}"
    );
}

/// `schema` refuses `json`.
fn refuses(schema: &Value, json: Value) {
    let validator = jsonschema::validator_for(schema).unwrap();
    assert!(!validator.is_valid(&json), "{json} taken by {schema:#}");
}

#[test]
fn renamed_optional_and_skipped_fields() {
    let greet_in = schema("greet", "input");
    takes(
        &greet_in,
        &GreetIn {
            first_name: "Ana".into(),
            title: None,
            not_on_the_wire: 9,
        },
    );
    takes(
        &greet_in,
        &GreetIn {
            first_name: "Ana".into(),
            title: Some("Dr".into()),
            not_on_the_wire: 0,
        },
    );
    refuses(&greet_in, json!({"title": "Dr"}));
    refuses(&greet_in, json!({"firstName": 5}));
    assert!(greet_in["properties"].get("not_on_the_wire").is_none());
    assert_eq!(greet_in["required"], json!(["firstName"]));
    let greet_out = schema("greet", "output");
    takes(
        &greet_out,
        &GreetOut {
            greeting: "Hello".into(),
            count: 3,
        },
    );
    refuses(&greet_out, json!({"greeting": "Hello", "count": 3}));
    refuses(&greet_out, json!({"greeting": "Hello", "n": -1}));
}

#[test]
fn every_enum_tagging() {
    let shape = schema("shapes.area", "input");
    for value in [
        Shape::Point,
        Shape::Circle { radius: 1.5 },
        Shape::Square(2.0),
    ] {
        takes(&shape, &value);
    }
    refuses(&shape, json!("Triangle"));
    refuses(&shape, json!({"Circle": {"radius": "big"}}));
    let error = schema("shapes.area", "error");
    takes(&error, &AreaError::NoArea);
    takes(&error, &AreaError::Negative { side: -1.0 });
    refuses(&error, json!({"kind": "Positive"}));
    let event = schema("event", "input");
    takes(&event, &Event::Joined { user: "ana".into() });
    takes(
        &event,
        &Event::Left {
            user: "ana".into(),
            reason: None,
        },
    );
    refuses(&event, json!({"kind": "joined"}));
}

#[test]
fn nested_generic_tuple_map_and_any_json() {
    let everything = schema("shapes.round_trip", "input");
    let value = Everything {
        shape: Shape::Circle { radius: 1.0 },
        event: Event::Left {
            user: "bo".into(),
            reason: Some("done".into()),
        },
        command: Command::Move { x: -1, y: 2 },
        who: IdOrName::Name("ana".into()),
        tags: BTreeMap::from([("a".to_owned(), vec![1, 65535])]),
        pages: Page {
            items: vec![Page {
                items: vec![GreetOut {
                    greeting: "hi".into(),
                    count: 1,
                }],
                next: None,
            }],
            next: Some("2".into()),
        },
        pair: (true, "yes".into()),
        raw: json!({"anything": [1, "two", null]}),
    };
    takes(&everything, &value);
    let mut wrong = serde_json::to_value(&value).unwrap();
    wrong["command"] = json!({"t": "Say", "c": 5});
    refuses(&everything, wrong.clone());
    wrong["command"] = json!({"t": "Say", "c": "hi"});
    takes(&everything, &wrong);
    wrong["tags"] = json!({"a": [70000]});
    refuses(&everything, wrong.clone());
    wrong["tags"] = json!({});
    wrong["pair"] = json!([true]);
    refuses(&everything, wrong.clone());
    wrong["pair"] = json!([false, "no"]);
    wrong["who"] = json!(7);
    takes(&everything, &wrong);
    // Streamed parts: each a `u32` and a `String`.
    let count = schema("shapes.count", "output");
    takes(&count, &7u32);
    refuses(&count, json!(-1));
    takes(&schema("shapes.upper", "input"), &"part");
}
