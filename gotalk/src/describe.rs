//! What a set of handlers serves, as a description a peer can ask for.
//!
//! `#[gotalk::service]` and `#[gotalk::notification]` record every method: its wire name,
//! its kind, its doc comment, its `#[gotalk(timeout)]`, and the types it carries (with
//! their JSON Schema where the type derives `schemars::JsonSchema` and the feature
//! `schema` is on). Handlers registered by hand are listed by name and kind.
//! [`Handlers::describe`](crate::Handlers::describe) gives the description of a set.
//!
//! A server that enables it ([`Config::describe`](crate::Config::describe); off by
//! default) tells peers that speak our extension that it describes itself, and answers
//! them (`EXTENSIONS.md`); [`Sock::describe_peer`](crate::Sock::describe_peer) asks.
//!
//! ```
//! use gotalk::{describe::Kind, Config, Handlers};
//!
//! #[gotalk::service]
//! pub trait Greet {
//!     /// Says hello.
//!     #[gotalk(timeout = "5s")]
//!     async fn greet(&self, name: String) -> String;
//! }
//! # struct Greeter;
//! # impl Greet for Greeter { async fn greet(&self, name: String) -> String { name } }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let handlers = Handlers::new().with(GreetService::new(Greeter));
//! let server = Config::accepting().handlers(handlers).describe(true);
//! let (sock, _server) = gotalk::pipe(Config::dialling(), server);
//! let description = sock.describe_peer(std::time::Duration::from_secs(2)).await?;
//! let greet = &description.operations[0];
//! assert_eq!((greet.name.as_str(), greet.kind, greet.docs.as_str()), ("greet", Kind::Request, "Says hello."));
//! assert_eq!(greet.to_string(), "greet(String) -> String");
//! # Ok(()) }
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Everything a set of handlers serves, sorted by name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Description {
    /// The operations and notifications.
    pub operations: Vec<Operation>,
}

impl Description {
    /// The operation or notification named `name`.
    pub fn get(&self, name: &str) -> Option<&Operation> {
        self.operations.iter().find(|op| op.name == name)
    }
}

/// How an operation is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A request with one payload.
    Request,
    /// A stream request: the caller sends parts, then the end.
    StreamRequest,
    /// A notification: one payload, never answered.
    Notification,
}

impl Kind {
    /// `request`, `stream-request` or `notification`, as on the wire of the description.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Request => "request",
            Kind::StreamRequest => "stream-request",
            Kind::Notification => "notification",
        }
    }
}

/// One operation or notification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    /// The name on the wire.
    pub name: String,
    /// How it is called.
    pub kind: Kind,
    /// Whether it answers with a stream of results (each part an `output`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub streams_results: bool,
    /// The trait that declares it; none for a handler registered by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The method's doc comment.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub docs: String,
    /// The client's default timeout, `#[gotalk(timeout)]`, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// What the caller sends (each part, for a stream request); none when it sends
    /// nothing, or when the handler was registered by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Type>,
    /// What it answers (each part, for streamed results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Type>,
    /// The error it may answer with, where the method names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Type>,
}

fn is_false(b: &bool) -> bool {
    !b
}

/// A type an operation carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Type {
    /// As the trait spells it, e.g. `GreetIn` or `Vec<String>`.
    pub name: String,
    /// Its JSON Schema (draft 2020-12), where the type has one (feature `schema`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
}

impl Operation {
    /// An operation as a handler registered by hand shows it: its name and kind only.
    pub fn new(name: impl Into<String>, kind: Kind) -> Self {
        Self {
            name: name.into(),
            kind,
            streams_results: false,
            service: None,
            docs: String::new(),
            timeout_ms: None,
            input: None,
            output: None,
            error: None,
        }
    }

    /// Whether it was declared by a trait (so its types are known), not registered by hand.
    pub fn is_typed(&self) -> bool {
        self.service.is_some()
    }
}

/// A signature: `greet(GreetIn) -> Result<GreetOut, KvError>`,
/// `count(u32) -> stream of u32`, `upload(stream of Chunk) -> ()`,
/// `notification "chat message"(ChatMessage)`, or `bytes (by hand)`.
impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == Kind::Notification {
            f.write_str("notification ")?;
        }
        write_name(f, &self.name)?;
        if !self.is_typed() {
            let shape = match (self.kind, self.streams_results) {
                (Kind::StreamRequest, _) => " (stream request, by hand)",
                (Kind::Notification, _) => " (by hand)",
                _ => " (request, by hand)",
            };
            return f.write_str(shape);
        }
        let input = self.input.as_ref().map_or("", |t| &t.name);
        match self.kind {
            Kind::StreamRequest => write!(f, "(stream of {input})")?,
            _ => write!(f, "({input})")?,
        }
        if self.kind == Kind::Notification {
            return Ok(());
        }
        let output = self.output.as_ref().map_or("()", |t| &t.name);
        let stream = if self.streams_results {
            "stream of "
        } else {
            ""
        };
        match &self.error {
            Some(error) => write!(f, " -> Result<{stream}{output}, {}>", error.name),
            None => write!(f, " -> {stream}{output}"),
        }
    }
}

/// A name as it is, or quoted when it is not a plain word (it may hold spaces).
fn write_name(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ':'));
    if plain {
        f.write_str(name)
    } else {
        write!(f, "{name:?}")
    }
}

/// Why a peer's description could not be had.
#[derive(Debug)]
#[non_exhaustive]
pub enum DescribeError {
    /// The peer did not announce that it describes itself: describing is off there, or it
    /// is not a gotalk-rs peer (the Go reference and the reference gotalk.js never do).
    NotDescribed,
    /// The request for the description failed.
    Call(crate::Error),
    /// The peer answered with something that is not a description.
    Invalid(String),
}

impl fmt::Display for DescribeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DescribeError::NotDescribed => f.write_str(
                "the peer does not describe itself (it did not announce `describe`: describing \
                 is off there, or it is not a gotalk-rs peer)",
            ),
            DescribeError::Call(e) => write!(f, "asking the peer for its description: {e}"),
            DescribeError::Invalid(e) => write!(f, "the peer's description is not valid: {e}"),
        }
    }
}

impl std::error::Error for DescribeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DescribeError::Call(e) => Some(e),
            _ => None,
        }
    }
}
