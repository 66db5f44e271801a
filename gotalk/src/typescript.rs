//! A TypeScript module for the browser, from the traits both sides share (feature
//! `typescript`).
//!
//! Mark a trait `#[gotalk::service(typescript)]` (or `#[gotalk::notification(typescript)]`)
//! and derive [`TS`](https://docs.rs/ts-rs/12/ts_rs/trait.TS.html) beside `Serialize`/`Deserialize` on the types it carries; then
//! [`Module`] writes one TypeScript module over our gotalk.js with, for a trait `Greet`:
//!
//! - the declarations of every type its methods carry (made by ts-rs, which follows
//!   serde's attributes: renames, tagged and untagged enums, skipped fields, `Option`);
//! - `GreetClient`, whose functions call the server as the Rust client does:
//!   `GreetClient.greet(sock, { name: "Rasmus" })` is a `Promise<GreetOut>`; an operation
//!   that streams its results gives an async iterator, one that streams its input a
//!   writer with `write`, `end` and `results`; each takes gotalk.js's call options last
//!   (`{ signal, timeout }`: giving up cancels at the server, `EXTENSIONS.md`);
//! - for operations with an error type of their own (`Result<T, KvError>`, a typed error
//!   in Rust: [`CallError`](crate::CallError)), `KvErrors.get(err)`: the `KvError` a
//!   rejected call carries, or `undefined` (derive `TS` on the error type too);
//! - `interface Greet` and `GreetService.register(handlers, impl)`, for operations the
//!   page serves when the server calls it;
//! - for notifications, `ChatNotifier.message(sock, msg)` and `ChatService.register`.
//!
//! Method names become camelCase (`echo_text` → `echoText`); wire names are the trait's.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use gotalk::ts_rs::TS;
//!
//! #[derive(Serialize, Deserialize, TS)]
//! #[ts(crate = "gotalk::ts_rs")]
//! pub struct GreetIn { pub name: String }
//! #[derive(Serialize, Deserialize, TS)]
//! #[ts(crate = "gotalk::ts_rs")]
//! pub struct GreetOut { pub greeting: String }
//!
//! #[gotalk::service(typescript)]
//! pub trait Greet {
//!     async fn greet(&self, input: GreetIn) -> Result<GreetOut, gotalk::Error>;
//! }
//!
//! let ts = gotalk::typescript::Module::new().add::<GreetClient>().render();
//! assert!(ts.contains("export type GreetIn = { name: string, };"));
//! assert!(ts.contains("greet(sock: Sock, input: GreetIn, options: CallOptions = {}): Promise<GreetOut>"));
//! ```
//!
//! What TypeScript cannot say exactly, and what the module does:
//! - JSON numbers are JavaScript numbers, so `u64`, `i64`, `u128` and `i128` are declared
//!   `number`, exact only up to 2^53 (send larger ones as strings, e.g. with
//!   `#[serde(with = …)]` and `#[ts(type = "string")]`).
//! - A field serde leaves out (`skip_serializing_if`) is declared `T | null` unless it is
//!   also `#[ts(optional)]` (then `field?: T`); custom `Serialize` impls and
//!   `#[serde(with = …)]` need `#[ts(type = "…")]` to say what they write.
//!
//! Why ts-rs: its 12 line is stable and follows serde's attributes; specta 2, the other
//! candidate, is still a release candidate.

use std::{
    any::TypeId,
    collections::HashSet,
    io,
    path::{Path, PathBuf},
};

use ts_rs::{Config, TypeVisitor, TS};

mod render;

/// Implemented for the client (or notifier) of a trait marked
/// `#[gotalk::service(typescript)]` / `#[gotalk::notification(typescript)]`: describes
/// the trait to a [`Module`].
pub trait Describe {
    /// Adds the trait, its methods and their types to `module`.
    fn describe(module: &mut Module);
}

/// How an operation's input and results travel.
#[doc(hidden)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One value in, one result.
    Single,
    /// One value in, a stream of results.
    StreamOut,
    /// A stream of values in, a stream of results.
    StreamIn,
    /// A notification: one value, no answer.
    Notification,
}

struct Method {
    wire: String,
    name: String,
    docs: String,
    shape: Shape,
    /// The input's TypeScript type; `None` for a method without one.
    input: Option<String>,
    output: String,
    /// The handler's own error type (a typed error, `CallError::Remote` in Rust).
    error: Option<String>,
}

struct Trait {
    name: String,
    notification: bool,
    docs: String,
    methods: Vec<Method>,
}

/// One TypeScript module: the declarations and functions of the traits added to it.
pub struct Module {
    config: Config,
    import_from: String,
    visited: HashSet<TypeId>,
    declared: HashSet<TypeId>,
    /// Each declared type's name and declaration.
    declarations: Vec<(String, String)>,
    traits: Vec<Trait>,
}

impl Default for Module {
    fn default() -> Self {
        Self::new()
    }
}

impl Module {
    /// An empty module, importing gotalk.js's types from `"./gotalk"` (the
    /// `gotalk.d.ts` beside `gotalk.js`).
    pub fn new() -> Self {
        Self {
            config: Config::new().with_large_int("number"),
            import_from: "./gotalk".into(),
            visited: HashSet::new(),
            declared: HashSet::new(),
            declarations: Vec::new(),
            traits: Vec::new(),
        }
    }

    /// Where the module imports gotalk.js's types from (default `"./gotalk"`).
    pub fn import_from(mut self, path: &str) -> Self {
        self.import_from = path.into();
        self
    }

    /// Adds a trait through its client or notifier (`GreetClient`, `ChatNotifier`).
    pub fn add<T: Describe>(mut self) -> Self {
        T::describe(&mut self);
        self
    }

    /// The module's text.
    pub fn render(&self) -> String {
        render::module(self)
    }

    /// Writes the module to `path`.
    pub fn write(&self, path: impl AsRef<Path>) -> io::Result<()> {
        std::fs::write(path, self.render())
    }

    /// For a test that keeps a committed module fresh: `Ok` when `path` holds exactly this
    /// module; otherwise, with `GOTALK_TYPESCRIPT=write` in the environment, writes it and
    /// returns `Ok`, and without, returns an error saying how to regenerate it.
    pub fn check_or_write(&self, path: impl AsRef<Path>) -> Result<(), Stale> {
        let path = path.as_ref();
        let text = self.render();
        let committed = std::fs::read_to_string(path).ok();
        if committed.as_deref() == Some(text.as_str()) {
            return Ok(());
        }
        if std::env::var("GOTALK_TYPESCRIPT").as_deref() == Ok("write") {
            return std::fs::write(path, text).map_err(|e| Stale::CannotWrite {
                path: path.into(),
                error: e.to_string(),
            });
        }
        let path = path.into();
        Err(match committed {
            Some(_) => Stale::Differs { path },
            None => Stale::Missing { path },
        })
    }

    #[doc(hidden)]
    pub fn begin_trait(&mut self, name: &str, notification: bool, docs: &str) {
        self.traits.push(Trait {
            name: name.into(),
            notification,
            docs: docs.into(),
            methods: Vec::new(),
        });
    }

    /// `E` is the method's typed error, `()` for none.
    #[doc(hidden)]
    pub fn method<I, O, E>(&mut self, shape: Shape, wire: &str, name: &str, docs: &str)
    where
        I: TS + 'static + ?Sized,
        O: TS + 'static + ?Sized,
        E: TS + 'static + ?Sized,
    {
        self.declare::<I>();
        self.declare::<O>();
        self.declare::<E>();
        let unit = |id: TypeId| id == TypeId::of::<()>();
        let method = Method {
            wire: wire.into(),
            name: render::camel_case(name),
            docs: docs.into(),
            shape,
            input: (!unit(TypeId::of::<I>())).then(|| I::name(&self.config)),
            output: O::name(&self.config),
            error: (!unit(TypeId::of::<E>())).then(|| E::name(&self.config)),
        };
        if let Some(t) = self.traits.last_mut() {
            t.methods.push(method);
        }
    }

    /// Declares `T` if it has a declaration of its own, and every type it refers to.
    fn declare<T: TS + 'static + ?Sized>(&mut self) {
        struct Visit<'a>(&'a mut Module);
        impl TypeVisitor for Visit<'_> {
            fn visit<T: TS + 'static + ?Sized>(&mut self) {
                self.0.declare::<T>();
            }
        }
        // Each type once (recursive types such as serde_json's `Value` refer to
        // themselves).
        if !self.visited.insert(TypeId::of::<T>()) {
            return;
        }
        // Declarable types (derived ones) have a file of their own in ts-rs's export; a
        // generic one is declared once, with its parameters.
        if T::output_path().is_some() {
            let id = TypeId::of::<T::WithoutGenerics>();
            if !self.declared.insert(id) {
                T::visit_generics(&mut Visit(self));
                return;
            }
            let docs = T::docs()
                .map(|d| format!("{}\n", d.trim_end()))
                .unwrap_or_default();
            let declaration = format!("{docs}export {}", T::decl(&self.config));
            T::visit_dependencies(&mut Visit(self));
            self.declarations
                .push((T::ident(&self.config), declaration));
        } else {
            T::visit_dependencies(&mut Visit(self));
            T::visit_generics(&mut Visit(self));
        }
    }
}

/// Why [`Module::check_or_write`] failed. Its `Debug` is its `Display`, the sentence
/// that says what to do, so that `check_or_write(..).unwrap()` prints it.
#[non_exhaustive]
pub enum Stale {
    /// The committed module is not what the traits make now.
    Differs {
        /// The committed module.
        path: PathBuf,
    },
    /// There is no module at the path (or it cannot be read).
    Missing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// Asked to write it (`GOTALK_TYPESCRIPT=write`), it could not be written.
    CannotWrite {
        /// Where it was to be written.
        path: PathBuf,
        /// What the file system said.
        error: String,
    },
}

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stale::Differs { path } => write!(
                f,
                "{} is stale: the traits make another module; run the same test with \
                 GOTALK_TYPESCRIPT=write to write it, and commit it",
                path.display()
            ),
            Stale::Missing { path } => write!(
                f,
                "{} is missing: run the same test with GOTALK_TYPESCRIPT=write to write it, \
                 and commit it",
                path.display()
            ),
            Stale::CannotWrite { path, error } => {
                write!(f, "cannot write {}: {error}", path.display())
            }
        }
    }
}

impl std::fmt::Debug for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Stale {}

#[cfg(test)]
mod tests {
    use super::{render::camel_case, Module, Stale};

    #[test]
    fn a_stale_or_missing_module_says_what_to_do_when_unwrapped() {
        if std::env::var("GOTALK_TYPESCRIPT").as_deref() == Ok("write") {
            return; // This run writes modules instead of checking them.
        }
        let dir = std::env::temp_dir().join(format!("gotalk-ts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let module = Module::new();
        let missing = module.check_or_write(dir.join("api.ts")).unwrap_err();
        assert!(matches!(missing, Stale::Missing { .. }));
        let said = format!("{missing:?}");
        assert!(said.ends_with("api.ts is missing: run the same test with GOTALK_TYPESCRIPT=write to write it, and commit it"), "{said}");
        std::fs::write(dir.join("api.ts"), "// another module\n").unwrap();
        let differs = module.check_or_write(dir.join("api.ts")).unwrap_err();
        assert!(matches!(differs, Stale::Differs { .. }));
        assert!(format!("{differs:?}").contains("is stale: the traits make another module; run the same test with GOTALK_TYPESCRIPT=write"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn method_names_become_camel_case() {
        assert_eq!(camel_case("echo_text"), "echoText");
        assert_eq!(camel_case("greet"), "greet");
        assert_eq!(camel_case("_private_one"), "_privateOne");
        assert_eq!(camel_case("a_b_c"), "aBC");
    }
}
