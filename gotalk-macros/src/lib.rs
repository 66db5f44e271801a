//! The procedural macros of gotalk: `#[gotalk::service]` and `#[gotalk::notification]`.
//! Use them through the `gotalk` crate, which re-exports both and documents them.
//!
//! Each runs the same pipeline: `parse` turns the trait into a plain model (collecting
//! every mistake, each spanned on the token to change), `validate` checks the model as a
//! whole, and `expand` turns a valid model into code. On any error the user's trait is
//! still emitted (without our helper attributes) beside the errors, so the rest of the
//! crate and the IDE keep working.

mod attr;
mod errors;
mod expand;
mod model;
mod parse;
mod validate;

use proc_macro::TokenStream;

use model::Kind;

/// Turns a trait into a Gotalk service: one trait is the contract of both sides.
///
/// Every `async fn` of the trait is an operation named after the method (or
/// `#[gotalk(name = "...")]`, any UTF-8 up to 4095 bytes). For a trait `Greet` it
/// generates:
///
/// - the trait itself, whose methods become `fn … -> impl Future<Output = T> + Send`
///   (implement them with plain `async fn`; the trait requires `Send + Sync + 'static`);
/// - `GreetClient`, whose associated functions call the operations on any connected
///   [`Sock`]: `GreetClient::greet(&sock, input).await` returns
///   `Result<Out, gotalk::Error>`; `GreetClient::OPERATIONS` lists the wire names;
///   `GreetClient::with(&sock, CallOptions::new().timeout(t).retries(n)).greet(input)`
///   calls the single-result operations with per-call options (on a `GreetClientWith`);
/// - `GreetService`, which registers an implementation:
///   `Handlers::new().with(GreetService::new(greeter))`.
///
/// Method shapes: `&self`; then optionally the connection (`sock: &Sock` or `Sock`, to
/// call back or notify the peer that called) or a context made from it on every call
/// (`#[gotalk(context)] user: User`, any type implementing [`FromSock`]: say, the
/// signed-in user kept in the connection's state; a context that cannot be made answers
/// the request with an error; [`Deadline`] is the call's deadline); then at most one input of any
/// `Serialize + DeserializeOwned` type, or `StreamIn<T>` to receive a stream request.
/// Return `T`, `()`, `Result<T, E>` with `E: Display`, `StreamOut<T>` or
/// `StreamOut<T, E>` (whose items may fail with `E`) or `Result<StreamOut<T>, E>` to
/// answer with a stream of results. A method that streams its input gives the caller a
/// `JsonSender` and a `JsonResults`; one that streams its output gives the caller a
/// `JsonResults`.
///
/// Errors: an `Err` answers an ErrorResult. An `E: Serialize` travels as its JSON (a
/// peer that is not ours reads it as text), any other `E` as its text;
/// [`Error::retry`] answers a RetryResult. A method with an error type of its own gives
/// the caller that type back: `Result<T, KvError>` is called as
/// `Result<T, gotalk::CallError<KvError>>`, `CallError::Remote(e)` when the answer
/// decodes into `KvError` (derive `Deserialize` too), `CallError::Rpc(gotalk::Error)`
/// for everything else. The same holds for streamed results: `StreamOut<T, KvError>` and
/// `Result<StreamOut<T>, KvError>` give the caller a `JsonResults<T,
/// CallError<KvError>>` (with both, `Result<StreamOut<T, E>, E>`, the two must be the
/// same type). Errors spelled `gotalk::Error`, `Error`, `String`, `Box<..>` or
/// `anyhow::Error` are text, and the caller gets a `gotalk::Error`. Middleware refuses a
/// call with the application's own error type through `Reply::json_error`.
///
/// ```
/// # use gotalk::{CallError, Config, Handlers};
/// #[derive(Debug, serde::Serialize, serde::Deserialize)]
/// pub enum KvError { NotFound { key: String } }
/// impl std::fmt::Display for KvError {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         match self { KvError::NotFound { key } => write!(f, "key not found: {key}") }
///     }
/// }
///
/// #[gotalk::service]
/// pub trait Kv {
///     async fn get(&self, key: String) -> Result<String, KvError>;
/// }
/// # struct Empty;
/// # impl Kv for Empty {
/// #     async fn get(&self, key: String) -> Result<String, KvError> { Err(KvError::NotFound { key }) }
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let handlers = Handlers::new().with(KvService::new(Empty));
/// # let (sock, _server) = gotalk::pipe(Config::dialling(), Config::accepting().handlers(handlers));
/// match KvClient::get(&sock, "missing".into()).await {
///     Ok(value) => println!("{value}"),
///     Err(CallError::Remote(KvError::NotFound { key })) => println!("no {key}"),
///     Err(CallError::Rpc(e)) => println!("the call failed: {e}"),
/// }
/// # }
/// ```
///
/// Options: `#[gotalk::service(prefix = "greet.")]` prefixes every wire name;
/// `#[gotalk::service(typescript)]` also describes the trait to `gotalk::typescript`
/// (feature `typescript`), which writes a typed TypeScript client for the browser;
/// `#[gotalk(timeout = "5s")]` on a method bounds the client's wait (`ms`, `s`, `m`).
/// Type parameters on the trait are supported.
///
/// ```
/// use gotalk::{Config, Error, Handlers};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// pub struct GreetIn { pub name: String }
/// #[derive(Serialize, Deserialize)]
/// pub struct GreetOut { pub greeting: String }
///
/// #[gotalk::service]
/// pub trait Greet {
///     async fn greet(&self, input: GreetIn) -> Result<GreetOut, Error>;
///     #[gotalk(name = "echo")]
///     async fn echo_text(&self, text: String) -> String;
/// }
///
/// struct Greeter;
///
/// impl Greet for Greeter {
///     async fn greet(&self, input: GreetIn) -> Result<GreetOut, Error> {
///         Ok(GreetOut { greeting: format!("Hello {}", input.name) })
///     }
///     async fn echo_text(&self, text: String) -> String {
///         text
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Error> {
/// let handlers = Handlers::new().with(GreetService::new(Greeter));
/// let (sock, _server) = gotalk::pipe(Config::dialling(), Config::accepting().handlers(handlers));
/// let out = GreetClient::greet(&sock, GreetIn { name: "Rasmus".into() }).await?;
/// assert_eq!(out.greeting, "Hello Rasmus");
/// assert_eq!(GreetClient::OPERATIONS, ["greet", "echo"]);
/// # Ok(()) }
/// ```
///
/// Mistakes (a method that is not `async`, `&mut self`, two inputs, a duplicate wire
/// name, an input type that is not `Deserialize`, …) are compile errors at the token to
/// change.
///
/// Implement the trait with plain `async fn`, not `#[async_trait]`: the trait's methods
/// return `impl Future`, and an `#[async_trait]` impl fails with "lifetime parameters or
/// bounds on method … do not match the trait declaration" (E0195). Remove the attribute
/// from the impl; the methods stay as they are.
///
/// [`Sock`]: ../gotalk/struct.Sock.html
/// [`FromSock`]: ../gotalk/trait.FromSock.html
/// [`Deadline`]: ../gotalk/struct.Deadline.html
/// [`Error::retry`]: ../gotalk/enum.Error.html#method.retry
#[proc_macro_attribute]
pub fn service(args: TokenStream, item: TokenStream) -> TokenStream {
    run(Kind::Service, args, item)
}

/// Turns a trait into a set of Gotalk notifications: one-way messages, never answered.
///
/// Each method is `async fn name(&self, [sock: &Sock,] payload: T)` with no return
/// value; the notification is named after the method or `#[gotalk(name = "...")]`. For a
/// trait `Chat` it generates `ChatNotifier`, whose functions send
/// (`ChatNotifier::message(&sock, msg).await`), and `ChatService`, which registers an
/// implementation as notification handlers
/// (`Handlers::new().with(ChatService::new(chat))`). A connection's notifications are
/// handled one at a time, in order; a payload that does not decode is logged and dropped.
///
/// ```
/// use gotalk::{Config, Handlers};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// pub struct ChatMessage { pub text: String }
///
/// #[gotalk::notification]
/// pub trait Chat {
///     #[gotalk(name = "chat message")]
///     async fn message(&self, msg: ChatMessage);
/// }
///
/// struct Printer;
///
/// impl Chat for Printer {
///     async fn message(&self, msg: ChatMessage) {
///         println!("{}", msg.text);
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), gotalk::Error> {
/// let handlers = Handlers::new().with(ChatService::new(Printer));
/// let (sock, _server) = gotalk::pipe(Config::dialling(), Config::accepting().handlers(handlers));
/// ChatNotifier::message(&sock, ChatMessage { text: "Hi".into() }).await?;
/// assert_eq!(ChatNotifier::NOTIFICATIONS, ["chat message"]);
/// # Ok(()) }
/// ```
#[proc_macro_attribute]
pub fn notification(args: TokenStream, item: TokenStream) -> TokenStream {
    run(Kind::Notification, args, item)
}

fn run(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = errors::Errors::default();
    let args = attr::macro_args(kind, args.into(), &mut errors);
    let item = match syn::parse::<syn::Item>(item.clone()) {
        Ok(syn::Item::Trait(item)) => item,
        Ok(other) => {
            errors.push(syn::Error::new_spanned(
                item_head(&other),
                format!("#[gotalk::{}] goes on a trait", kind.macro_name()),
            ));
            let mut out = proc_macro2::TokenStream::from(item);
            out.extend(errors.into_compile_errors());
            return out.into();
        }
        Err(e) => return e.to_compile_error().into(),
    };
    let model = parse::parse(kind, &item, args, &mut errors);
    validate::validate(&model, &mut errors);
    if errors.is_empty() {
        expand::expand(&model).into()
    } else {
        let mut out = expand::unchanged(&item);
        out.extend(errors.into_compile_errors());
        out.into()
    }
}

/// The tokens that name an item, for an error that points at it rather than its body.
fn item_head(item: &syn::Item) -> proc_macro2::TokenStream {
    use quote::ToTokens;
    match item {
        syn::Item::Struct(s) => {
            let (kw, ident) = (&s.struct_token, &s.ident);
            quote::quote!(#kw #ident)
        }
        syn::Item::Enum(e) => {
            let (kw, ident) = (&e.enum_token, &e.ident);
            quote::quote!(#kw #ident)
        }
        syn::Item::Fn(f) => f.sig.to_token_stream(),
        syn::Item::Impl(i) => {
            let (kw, ty) = (&i.impl_token, &i.self_ty);
            quote::quote!(#kw #ty)
        }
        other => other.to_token_stream(),
    }
}
