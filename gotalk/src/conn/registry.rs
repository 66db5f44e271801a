//! The registry of handlers: what this side answers, by operation or notification name.
//! It lives in the connection layer because what it stores names the connection (a
//! handler receives a `Request` holding its `Sock`), and a connection holds a registry:
//! apart, the two would import each other. What a handler receives and answers is in
//! `handler.rs`, the middleware it wraps handlers in is in `around_handlers.rs`.

use std::{
    collections::HashMap,
    fmt,
    future::Future,
    sync::{Arc, OnceLock},
};

use bytes::Bytes;
use rustc_hash::FxHashMap;

use super::{
    around_handlers::{self, Around, Incoming, Kind, Next},
    extension::is_reserved,
    handler::{HandlerBox, NotificationFn, RequestFn, StreamFn},
    Notification, Reply, Request, StreamRequest,
};
use crate::describe::{self, Operation};

/// The handlers one side offers its peers: single-request, stream-request and notification
/// handlers by name.
///
/// The empty name `""` registers a fallback for names with no handler of their own, as in
/// the reference. A [`child`](Self::child) set answers what it has itself and leaves the
/// rest to its parent, e.g. to give signed-in connections extra operations
/// (see [`Sock::set_handlers`](crate::Sock::set_handlers)).
///
/// A `Handlers` is a cheap-to-clone value; a connection uses the set it was given, so
/// changing a set after handing it out does not change existing connections.
///
/// ```
/// # use gotalk::Handlers;
/// let handlers = Handlers::new()
///     .handle("greet", |name: String| async move {
///         Ok::<_, gotalk::Error>(format!("Hello {name}"))
///     })
///     .handle_raw("bytes", |req: gotalk::Request| async move {
///         Ok::<_, gotalk::Error>(req.payload)
///     });
/// assert_eq!(handlers.operations(), ["bytes", "greet"]);
/// ```
#[derive(Clone, Default)]
pub struct Handlers {
    inner: Arc<Registry>,
}

#[derive(Clone, Default)]
struct Registry {
    // Looked up on every request: a fast hash (the keys are the server's own names, so a
    // peer cannot make them collide).
    requests: FxHashMap<Box<str>, RequestFn>,
    streams: FxHashMap<Box<str>, StreamFn>,
    notifications: FxHashMap<Box<str>, NotificationFn>,
    /// Which service registered a name, for conflict messages.
    owners: HashMap<(&'static str, Box<str>), &'static str>,
    parent: Option<Handlers>,
    /// Middleware, innermost first: every handler is registered wrapped in all of it.
    around: Vec<Around>,
    /// What the services registered here say about their handlers, asked only when a
    /// description is (it may build JSON Schemas).
    describers: Vec<fn() -> Vec<Operation>>,
    /// The description's JSON, made at the first `gotalk:describe` and kept until the set
    /// changes: a peer that asks again and again costs a copy of a pointer each time.
    described: OnceLock<Bytes>,
}

impl fmt::Debug for Handlers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handlers")
            .field("operations", &self.operations())
            .field("stream_operations", &sorted(self.inner.streams.keys()))
            .field("notifications", &sorted(self.inner.notifications.keys()))
            .field("has_parent", &self.inner.parent.is_some())
            .finish()
    }
}

/// Names under [`RESERVED_PREFIX`](crate::RESERVED_PREFIX) carry the protocol extension:
/// a handler for one would never run. Registering one is a mistake in the program.
#[track_caller]
fn refuse_reserved(name: &str) {
    assert!(
        !is_reserved(name),
        "cannot register a handler for {name:?}: names starting with {:?} are reserved for \
         the protocol extension",
        crate::RESERVED_PREFIX
    );
}

fn sorted<'a>(names: impl Iterator<Item = &'a Box<str>>) -> Vec<&'a str> {
    let mut v: Vec<&str> = names.map(|n| &**n).collect();
    v.sort_unstable();
    v
}

impl Handlers {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty set that falls back to this one for names it does not handle. It has
    /// the middleware this set has now, for its own handlers (the parent's handlers run
    /// in the parent's middleware).
    pub fn child(&self) -> Self {
        Self {
            inner: Arc::new(Registry {
                parent: Some(self.clone()),
                around: self.inner.around.clone(),
                ..Registry::default()
            }),
        }
    }

    /// Wraps every handler of this set, those registered before and after, in
    /// `middleware`: an async function of the request about to be handled
    /// ([`Incoming`]: its connection, name, kind, ID, size and deadline) and the rest of
    /// the chain ([`Next`]), which answers with the [`Reply`] of its choice. It may
    /// refuse (answer `Reply::Error` or `Reply::Retry` without running `next`), time,
    /// log or count. Middleware added later runs first (outermost). See
    /// [`middleware`](crate::middleware).
    ///
    /// Requests that never reach a handler (an unknown operation with no fallback, one
    /// refused by [`Limits`](crate::Limits)) do not pass through it. A notification's
    /// reply is dropped.
    pub fn wrap<F, Fut>(mut self, middleware: F) -> Self
    where
        F: Fn(Incoming, Next) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        let around = around_handlers::around(middleware);
        let reg = self.registry();
        for (name, f) in &mut reg.requests {
            *f = wrap_request(name, f.clone(), &around);
        }
        for (name, f) in &mut reg.streams {
            *f = wrap_stream(name, f.clone(), &around);
        }
        for (name, f) in &mut reg.notifications {
            *f = wrap_notification(name, f.clone(), &around);
        }
        reg.around.push(around);
        self
    }

    fn registry(&mut self) -> &mut Registry {
        let reg = Arc::make_mut(&mut self.inner);
        reg.described = OnceLock::new();
        reg
    }

    /// [`describe`](Self::describe) as JSON, made once per set.
    pub(super) fn description_json(&self) -> Bytes {
        self.inner
            .described
            .get_or_init(|| {
                // Cannot fail: a description is strings, numbers and JSON values.
                serde_json::to_vec(&self.describe())
                    .map(Bytes::from)
                    .unwrap_or_default()
            })
            .clone()
    }

    /// Registers the most general request handler: it gets the raw [`Request`] and returns
    /// any [`Reply`] (a result, an error, a retry or a stream of results).
    pub fn handle_reply<F, Fut>(mut self, op: &str, handler: F) -> Self
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        refuse_reserved(op);
        let f = request_fn(handler);
        let reg = self.registry();
        let f = reg.around.iter().fold(f, |f, a| wrap_request(op, f, a));
        reg.requests.insert(op.into(), f);
        self
    }

    /// Registers a raw request handler: bytes in, bytes out. An `Err` answers an
    /// ErrorResult with its text ([`Error::Retry`](crate::Error::Retry) answers a RetryResult).
    pub fn handle_raw<F, Fut, T, E>(self, op: &str, handler: F) -> Self
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Into<Bytes>,
        E: fmt::Display + 'static,
    {
        let handler = Arc::new(handler);
        self.handle_reply(op, move |req| {
            let fut = handler(req);
            async move {
                match fut.await {
                    Ok(out) => Reply::Result(out.into()),
                    Err(e) => Reply::from_error(e),
                }
            }
        })
    }

    /// Registers a stream-request handler: it reads the request's chunks and returns any
    /// [`Reply`].
    pub fn handle_stream<F, Fut>(mut self, op: &str, handler: F) -> Self
    where
        F: Fn(StreamRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        refuse_reserved(op);
        let f: StreamFn = Arc::new(move |req| Box::pin(handler(req)));
        let reg = self.registry();
        let f = reg.around.iter().fold(f, |f, a| wrap_stream(op, f, a));
        reg.streams.insert(op.into(), f);
        self
    }

    /// Registers a raw notification handler. Notifications on one connection are handled
    /// one at a time, in the order they arrived.
    pub fn handle_notification_raw<F, Fut>(mut self, name: &str, handler: F) -> Self
    where
        F: Fn(Notification) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        refuse_reserved(name);
        let f: NotificationFn = Arc::new(move |n| Box::pin(handler(n)));
        let reg = self.registry();
        let f = reg
            .around
            .iter()
            .fold(f, |f, a| wrap_notification(name, f, a));
        reg.notifications.insert(name.into(), f);
        self
    }

    /// The set, with `describer` telling what its handlers serve.
    pub(crate) fn described_by(mut self, describer: fn() -> Vec<Operation>) -> Self {
        self.registry().describers.push(describer);
        self
    }

    /// This set and its parents, nearest first, as describing reads them: each set's
    /// names by kind (sorted; `""` is its fallback) and what its services say about them.
    pub(super) fn chain(&self) -> impl Iterator<Item = RegisteredNames<'_>> {
        std::iter::successors(Some(self), |set| set.inner.parent.as_ref()).map(|set| {
            let reg = &*set.inner;
            RegisteredNames {
                by_kind: [
                    (describe::Kind::Request, sorted(reg.requests.keys())),
                    (describe::Kind::StreamRequest, sorted(reg.streams.keys())),
                    (
                        describe::Kind::Notification,
                        sorted(reg.notifications.keys()),
                    ),
                ],
                describers: &reg.describers,
            }
        })
    }

    /// Moves every handler of `added` into this set, refusing names it already has.
    pub(crate) fn merge(
        &mut self,
        added: Handlers,
        owner: &'static str,
    ) -> Result<(), RegistrationError> {
        let added = Arc::try_unwrap(added.inner).unwrap_or_else(|shared| (*shared).clone());
        let reg = self.registry();
        let conflict = |kind: &'static str, name: &str, reg: &Registry| RegistrationError {
            kind,
            name: name.to_owned(),
            first: reg
                .owners
                .get(&(kind, name.into()))
                .copied()
                .unwrap_or("a handler registered by hand")
                .to_owned(),
            second: owner.to_owned(),
        };
        for name in added.requests.keys() {
            if reg.requests.contains_key(name) {
                return Err(conflict("operation", name, reg));
            }
        }
        for name in added.streams.keys() {
            if reg.streams.contains_key(name) {
                return Err(conflict("stream operation", name, reg));
            }
        }
        for name in added.notifications.keys() {
            if reg.notifications.contains_key(name) {
                return Err(conflict("notification", name, reg));
            }
        }
        reg.describers.extend(added.describers);
        for (name, f) in added.requests {
            reg.owners.insert(("operation", name.clone()), owner);
            let f = reg.around.iter().fold(f, |f, a| wrap_request(&name, f, a));
            reg.requests.insert(name, f);
        }
        for (name, f) in added.streams {
            reg.owners.insert(("stream operation", name.clone()), owner);
            let f = reg.around.iter().fold(f, |f, a| wrap_stream(&name, f, a));
            reg.streams.insert(name, f);
        }
        for (name, f) in added.notifications {
            reg.owners.insert(("notification", name.clone()), owner);
            let f = reg
                .around
                .iter()
                .fold(f, |f, a| wrap_notification(&name, f, a));
            reg.notifications.insert(name, f);
        }
        Ok(())
    }

    /// The names of the single-request operations of this set (not its parent's), sorted.
    pub fn operations(&self) -> Vec<&str> {
        sorted(self.inner.requests.keys())
    }

    pub(super) fn request(&self, op: &str) -> Option<&RequestFn> {
        lookup(self, op, |r| &r.requests)
    }

    pub(super) fn stream(&self, op: &str) -> Option<&StreamFn> {
        lookup(self, op, |r| &r.streams)
    }

    pub(super) fn notification(&self, name: &str) -> Option<&NotificationFn> {
        lookup(self, name, |r| &r.notifications)
    }
}

/// The handler for `name`: this set's own, else this set's fallback (`""`), else the
/// parent's answer.
fn lookup<'a, T>(
    mut set: &'a Handlers,
    name: &str,
    map: impl Fn(&Registry) -> &FxHashMap<Box<str>, T>,
) -> Option<&'a T> {
    loop {
        let m = map(&set.inner);
        if let Some(h) = m.get(name).or_else(|| m.get("")) {
            return Some(h);
        }
        set = set.inner.parent.as_ref()?;
    }
}

// Each wrapper puts the middleware's future where the handler's would have been: for a
// single request, in the memory the connection reuses.

fn wrap_request(name: &str, handler: RequestFn, around: &Around) -> RequestFn {
    let (name, around): (Arc<str>, Around) = (name.into(), around.clone());
    Arc::new(move |req: Request, reuse: Option<HandlerBox>| {
        let incoming = Incoming {
            sock: req.sock.clone(),
            op: req.op.clone(),
            handler: name.clone(),
            kind: Kind::Request,
            id: Some(req.id),
            size: req.payload.len(),
            deadline: req.deadline,
        };
        in_memory(around(incoming, Next::boxed(handler(req, None))), reuse)
    })
}

/// A request handler as the connection calls it.
pub(super) fn request_fn<F, Fut>(handler: F) -> RequestFn
where
    F: Fn(Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    Arc::new(move |req, reuse: Option<HandlerBox>| in_memory(handler(req), reuse))
}

/// A request handler's future, in the memory of the last one that answered at once if
/// the connection kept it (`set` boxes anew only a future of another layout), or boxed.
fn in_memory(
    future: impl Future<Output = Reply> + Send + 'static,
    reuse: Option<HandlerBox>,
) -> HandlerBox {
    match reuse {
        Some(mut memory) => {
            memory.set(future);
            memory
        }
        None => HandlerBox::new(future),
    }
}

fn wrap_stream(name: &str, handler: StreamFn, around: &Around) -> StreamFn {
    let (name, around): (Arc<str>, Around) = (name.into(), around.clone());
    Arc::new(move |req: StreamRequest| {
        let incoming = Incoming {
            sock: req.sock.clone(),
            op: req.op.clone(),
            handler: name.clone(),
            kind: Kind::StreamRequest,
            id: Some(req.id),
            size: 0,
            deadline: req.deadline,
        };
        around(incoming, Next::new(handler(req)))
    })
}

fn wrap_notification(name: &str, handler: NotificationFn, around: &Around) -> NotificationFn {
    let (name, around): (Arc<str>, Around) = (name.into(), around.clone());
    Arc::new(move |n: Notification| {
        let incoming = Incoming {
            sock: n.sock.clone(),
            op: n.name.clone(),
            handler: name.clone(),
            kind: Kind::Notification,
            id: None,
            size: n.payload.len(),
            deadline: None,
        };
        let handled = handler(n);
        let reply = around(
            incoming,
            Next::new(async move {
                handled.await;
                Reply::Result(bytes::Bytes::new())
            }),
        );
        Box::pin(async move {
            let _ = reply.await;
        })
    })
}

/// The names one set of handlers has, and what its services say about them.
pub(super) struct RegisteredNames<'a> {
    /// Sorted, by the kind of handler (so `""`, the fallback, comes first).
    pub(super) by_kind: [(describe::Kind, Vec<&'a str>); 3],
    pub(super) describers: &'a [fn() -> Vec<Operation>],
}

/// Two registrations claim the same name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrationError {
    /// `operation`, `stream operation` or `notification`.
    pub kind: &'static str,
    /// The name both claim.
    pub name: String,
    /// Who registered it first.
    pub first: String,
    /// Who tried to register it again.
    pub second: String,
}

impl fmt::Display for RegistrationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:?} is registered twice: by {} and by {}",
            self.kind, self.name, self.first, self.second
        )
    }
}

impl std::error::Error for RegistrationError {}
