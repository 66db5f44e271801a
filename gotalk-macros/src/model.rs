//! The plain model of a service or notification trait, as `parse` builds it.

use proc_macro2::Span;
use syn::{Attribute, Ident, ItemTrait, Type};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Service,
    Notification,
}

impl Kind {
    pub fn macro_name(self) -> &'static str {
        match self {
            Kind::Service => "service",
            Kind::Notification => "notification",
        }
    }

    /// How one method's wire name is called in messages.
    pub fn what(self) -> &'static str {
        match self {
            Kind::Service => "operation",
            Kind::Notification => "notification",
        }
    }
}

/// Arguments of the macro itself: `#[gotalk::service(prefix = "greet.")]`.
#[derive(Default)]
pub struct Args {
    pub prefix: String,
    /// `typescript`: also describe the trait to `gotalk::typescript`.
    pub typescript: bool,
}

pub struct Trait {
    pub kind: Kind,
    pub item: ItemTrait,
    pub methods: Vec<Method>,
    pub typescript: bool,
}

pub struct Method {
    pub ident: Ident,
    /// The name on the wire: prefix + the method name or its `#[gotalk(name)]`.
    pub wire_name: String,
    /// Where the name comes from, for errors about it.
    pub name_span: Span,
    /// The method's own attributes (docs), without ours.
    pub attrs: Vec<Attribute>,
    pub context: Option<Context>,
    pub input: Input,
    pub output: Output,
    pub timeout_ms: Option<u64>,
    /// `#[gotalk(idempotent)]`: a call whose connection closed under it is sent again on
    /// the next connection of a reconnecting client.
    pub idempotent: bool,
}

/// The parameter that gives a handler its connection, or a context made from it.
pub enum Context {
    /// `sock: gotalk::Sock`: a clone of the connection.
    Sock,
    /// `sock: &gotalk::Sock`: the connection, borrowed.
    SockRef,
    /// `#[gotalk(context)] ctx: Type`, `Type: gotalk::FromSock`: made for each call.
    Custom(Box<Type>),
}

pub enum Input {
    None,
    Value {
        ident: Ident,
        ty: Type,
    },
    /// `StreamIn<item>`.
    Stream {
        ident: Ident,
        item: Type,
    },
}

pub enum Output {
    Unit,
    Value(Type),
    /// `Result<ok, ..>`; `err` when spelled with two arguments.
    Result {
        ok: Type,
        err: Option<Type>,
    },
    /// `StreamOut<item>`, or `StreamOut<item, err>` whose items may fail with `err`.
    Stream {
        item: Type,
        err: Option<Type>,
    },
    /// `Result<StreamOut<item>, ..>`; `err` when the `Result` or the `StreamOut` names
    /// one (both must name the same).
    ResultStream {
        item: Type,
        err: Option<Type>,
        stream_err: Option<Box<Type>>,
    },
}

impl Output {
    /// The type the caller gets in `Ok`, for single results.
    pub fn value_type(&self) -> Option<&Type> {
        match self {
            Output::Value(ty) | Output::Result { ok: ty, .. } => Some(ty),
            _ => None,
        }
    }

    pub fn stream_item(&self) -> Option<&Type> {
        match self {
            Output::Stream { item, .. } | Output::ResultStream { item, .. } => Some(item),
            _ => None,
        }
    }
}
