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
    fmt::Write as _,
    io,
    path::{Path, PathBuf},
};

use ts_rs::{Config, TypeVisitor, TS};

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
        let mut out = String::new();
        out.push_str(
            "// Generated by gotalk::typescript from the Rust traits: do not edit.\n\
             /* eslint-disable */\n",
        );
        let _ = writeln!(
            out,
            "import type {{ Sock, Handlers, StreamRequest, Result as Answer, CallOptions }} from {:?};\n",
            self.import_from
        );
        // By name: the order ts-rs visits dependencies in differs between builds, and
        // TypeScript needs no order among type declarations.
        let mut declarations: Vec<&(String, String)> = self.declarations.iter().collect();
        declarations.sort();
        for (_, declaration) in declarations {
            out.push_str(declaration);
            out.push_str("\n\n");
        }
        out.push_str(RUNTIME);
        for t in &self.traits {
            render_trait(&mut out, t);
        }
        out
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
            name: camel_case(name),
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

/// `echo_text` → `echoText`.
fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' && !out.is_empty() {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn js_docs(out: &mut String, docs: &str, indent: &str) {
    let docs = docs.trim();
    if docs.is_empty() {
        return;
    }
    let _ = writeln!(out, "{indent}/**");
    for line in docs.lines() {
        let line = line.replace("*/", "*\\/");
        let _ = writeln!(out, "{indent} * {}", line.trim_end());
    }
    let _ = writeln!(out, "{indent} */");
}

/// Helpers every module carries: results as async iterators, writers of stream requests.
const RUNTIME: &str = r#"/** The value of a handler's own (typed) error, from a rejected call; `undefined` when the
 * call failed otherwise. */
export function remoteError<E>(err: unknown): E | undefined {
  const e = err as { isGotalkRemoteError?: boolean; isGotalkRetry?: boolean; data?: unknown } | null;
  return e && e.isGotalkRemoteError && !e.isGotalkRetry && e.data !== undefined ? (e.data as E) : undefined;
}

/** The results of a call, as they come: an async iterator of decoded JSON values. */
export interface Results<T> extends AsyncIterableIterator<T> {}

/** A stream request: send parts with `write`, finish with `end`; results as they come. */
export interface Writer<I, O> {
  write(part: I): void;
  end(): void;
  readonly results: Results<O>;
}

interface Source {
  on(name: "data", fn: (chunk: Uint8Array) => void): unknown;
  on(name: "end", fn: () => void): unknown;
  on(name: "error", fn: (err: Error) => void): unknown;
}

function results<T>(source: Source): Results<T> {
  const queue: T[] = [];
  const decoder = new TextDecoder();
  let ended = false;
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  const poke = () => {
    const w = wake;
    wake = null;
    if (w) w();
  };
  source.on("data", (chunk) => {
    try {
      queue.push(JSON.parse(decoder.decode(chunk)) as T);
    } catch (e) {
      failure = e as Error;
    }
    poke();
  });
  source.on("end", () => {
    ended = true;
    poke();
  });
  source.on("error", (err) => {
    failure = err;
    poke();
  });
  const iterator: Results<T> = {
    [Symbol.asyncIterator]() {
      return iterator;
    },
    async next(): Promise<IteratorResult<T>> {
      for (;;) {
        if (queue.length > 0) return { value: queue.shift() as T, done: false };
        if (failure) throw failure;
        if (ended) return { value: undefined, done: true };
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
  };
  return iterator;
}

function writer<I, O>(stream: StreamRequest, first: I): Writer<I, O> {
  const out = results<O>(stream);
  stream.write(JSON.stringify(first));
  return {
    write: (part: I) => void stream.write(JSON.stringify(part)),
    end: () => void stream.end(),
    results: out,
  };
}

function serve<T>(answer: Answer<T>, work: () => T | Promise<T>): void {
  Promise.resolve()
    .then(work)
    .then(answer, (err: unknown) => answer.error(err instanceof Error ? err : String(err)));
}
"#;

fn render_trait(out: &mut String, t: &Trait) {
    let name = &t.name;
    out.push('\n');
    // What this side calls or sends.
    let (what, object) = if t.notification {
        ("Sends the notifications", "Notifier")
    } else {
        ("Calls the operations", "Client")
    };
    js_docs(out, &format!("{what} of `{name}`.\n{}", t.docs), "");
    let _ = writeln!(out, "export const {name}{object} = {{");
    for m in &t.methods {
        js_docs(out, &m.docs, "  ");
        let (o, w) = (&m.output, &m.wire);
        // The input parameter and the value sent (`null` for a method without input).
        let (param, value) = match &m.input {
            Some(i) => (format!(", input: {i}"), "input"),
            None => (String::new(), "null"),
        };
        let i = m.input.as_deref().unwrap_or("null");
        let _ = match m.shape {
            Shape::Notification => writeln!(
                out,
                "  {}(sock: Sock{param}): void {{\n    sock.notify({w:?}, {value});\n  }},",
                m.name
            ),
            Shape::Single => writeln!(
                out,
                "  {}(sock: Sock{param}, options: CallOptions = {{}}): Promise<{o}> {{\n    return sock.request<{o}>({w:?}, {value}, options);\n  }},",
                m.name
            ),
            Shape::StreamOut => writeln!(
                out,
                "  {}(sock: Sock{param}, options: CallOptions = {{}}): Results<{o}> {{\n    return results<{o}>(sock.streamResults({w:?}, {value}, options));\n  }},",
                m.name
            ),
            Shape::StreamIn => writeln!(
                out,
                "  {}(sock: Sock, first: {i}, options: CallOptions = {{}}): Writer<{i}, {o}> {{\n    return writer<{i}, {o}>(sock.streamRequest({w:?}, options), first);\n  }},",
                m.name
            ),
        };
    }
    let _ = writeln!(out, "}} as const;\n");

    // The typed errors of its operations.
    let typed: Vec<&Method> = t.methods.iter().filter(|m| m.error.is_some()).collect();
    if !typed.is_empty() {
        let _ = writeln!(
            out,
            "/** The handlers' own errors of `{name}`'s operations: `{name}Errors.{}(err)` is the\n * error a rejected call carries (its `data`), or `undefined` for any other failure. */",
            typed[0].name
        );
        let _ = writeln!(out, "export const {name}Errors = {{");
        for m in typed {
            let e = m.error.as_deref().unwrap_or("never");
            let _ = writeln!(
                out,
                "  {}: (err: unknown): {e} | undefined => remoteError<{e}>(err),",
                m.name
            );
        }
        let _ = writeln!(out, "}} as const;\n");
    }

    // What the page implements when the other side calls or notifies it. (Operations
    // that stream are answered from Rust; a page that must serve one registers a
    // gotalk.js handler of its own.)
    let served: Vec<&Method> = t
        .methods
        .iter()
        .filter(|m| matches!(m.shape, Shape::Single | Shape::Notification))
        .collect();
    let _ = writeln!(
        out,
        "/** `{name}` as the page implements it, when the server calls it. */"
    );
    let _ = writeln!(out, "export interface {name} {{");
    for m in &served {
        js_docs(out, &m.docs, "  ");
        let param = m
            .input
            .as_ref()
            .map(|i| format!("input: {i}"))
            .unwrap_or_default();
        let _ = match m.shape {
            Shape::Notification => writeln!(out, "  {}({param}): void;", m.name),
            _ => writeln!(
                out,
                "  {}({param}): {o} | Promise<{o}>;",
                m.name,
                o = m.output
            ),
        };
    }
    let _ = writeln!(out, "}}\n");
    let _ = writeln!(
        out,
        "/** Registers an implementation of `{name}` with a set of gotalk.js handlers. */"
    );
    let _ = writeln!(out, "export const {name}Service = {{");
    let _ = writeln!(out, "  register(handlers: Handlers, impl: {name}): void {{");
    for m in &served {
        let call = match &m.input {
            Some(i) => format!("impl.{}(input as {i})", m.name),
            None => format!("impl.{}()", m.name),
        };
        let _ = match m.shape {
            Shape::Notification => writeln!(
                out,
                "    handlers.handleNotification({:?}, (input) => {call});",
                m.wire
            ),
            _ => writeln!(
                out,
                "    handlers.handleRequest({:?}, (input, answer) => serve<{}>(answer, () => {call}));",
                m.wire, m.output
            ),
        };
    }
    let _ = writeln!(out, "  }},\n}} as const;");
}

#[cfg(test)]
mod tests {
    use super::{camel_case, Module, Stale};

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
