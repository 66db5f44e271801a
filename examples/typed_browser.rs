//! A page typed from Rust traits: the server implements `Greet` and `Shapes` from
//! `typed_browser/api.rs`, and the page calls them through `api.ts`, the TypeScript module
//! generated from those traits (feature `typescript`). When the page sends a chat
//! message, the server calls the page's own `Greet` back and tells the page its answer.
//!
//!     cargo run --example typed_browser          # then open http://127.0.0.1:1237/
//!
//! It describes itself (`Config::describe`) and serves the inspector page at
//! http://127.0.0.1:1237/inspector, where its operations can be tried by hand; `gotalk
//! describe ws://127.0.0.1:1237/gotalk/` lists them in a terminal.
//!
//! The page's script is `page.ts`, bundled into the committed `page.js` with esbuild
//! (`(cd gotalk/js && npm ci)`, then `gotalk/js/node_modules/.bin/esbuild
//! examples/typed_browser/page.ts --bundle --outfile=examples/typed_browser/page.js`).
//!
//! `cargo run --example typed_browser -- --write-ts` writes `api.ts` from the traits (the
//! test `tests/typescript.rs` fails while the committed one is stale).
//!
//! CI builds the page, checks it with `tsc --strict`, and runs it in Chromium.

#[path = "typed_browser/api.rs"]
mod api;

use api::{
    AreaError, Chat, ChatNotifier, ChatService, Everything, Greet, GreetClient, GreetIn, GreetOut,
    GreetService, Shape, Shapes, ShapesService,
};
use futures_util::StreamExt;
use gotalk::{ws, Config, Error, Handlers, Sock, StreamIn, StreamOut};

struct Server;

impl Greet for Server {
    async fn greet(&self, input: GreetIn) -> Result<GreetOut, Error> {
        if input.first_name.is_empty() {
            return Err(Error::message("a name, please"));
        }
        let title = input.title.map(|t| format!("{t} ")).unwrap_or_default();
        Ok(GreetOut {
            greeting: format!("Hello {title}{}", input.first_name),
            count: 1,
        })
    }

    async fn echo_text(&self, text: String) -> String {
        text
    }

    async fn ping(&self) {}
}

impl Shapes for Server {
    async fn round_trip(&self, value: Everything) -> Everything {
        value
    }

    async fn count(&self, n: u32) -> StreamOut<u32> {
        StreamOut::iter(1..=n.min(1000))
    }

    async fn upper(&self, parts: StreamIn<String>) -> StreamOut<String> {
        StreamOut::new(parts.map(|part| part.map(|p| p.to_uppercase())))
    }

    async fn area(&self, shape: Shape) -> Result<f64, AreaError> {
        match shape {
            Shape::Point => Err(AreaError::NoArea),
            Shape::Square(side) if side < 0.0 => Err(AreaError::Negative { side }),
            Shape::Square(side) => Ok(side * side),
            Shape::Circle { radius } => Ok(std::f64::consts::PI * radius * radius),
        }
    }
}

impl Chat for Server {
    /// Calls the page's own `greet` and sends its answer back as a chat message.
    async fn message(&self, sock: &Sock, text: String) {
        let input = GreetIn {
            first_name: text,
            title: None,
            not_on_the_wire: 0,
        };
        let reply = match GreetClient::greet(sock, input).await {
            Ok(out) => format!("the page answered: {}", out.greeting),
            Err(e) => format!("the page failed: {e}"),
        };
        let _ = ChatNotifier::message(sock, reply).await;
        let _ = ChatNotifier::event(
            sock,
            api::Event::Left {
                user: "server".into(),
                reason: Some("done".into()),
            },
        )
        .await;
    }

    async fn event(&self, _sock: &Sock, _event: api::Event) {}
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let page = concat!(env!("CARGO_MANIFEST_DIR"), "/typed_browser");
    let arg = std::env::args().nth(1);
    if arg.as_deref() == Some("--write-ts") {
        let path = format!("{page}/api.ts");
        api::typescript().write(&path)?;
        println!("wrote {path}");
        return Ok(());
    }
    let handlers = Handlers::new()
        .with(GreetService::new(Server))
        .with(ShapesService::new(Server))
        .with(ChatService::new(Server));
    // It describes itself (to `gotalk describe`) and serves the inspector page: an
    // example for development, not a public server.
    let endpoint = ws::Endpoint::new(Config::accepting().handlers(handlers).describe(true))
        .inspector("/inspector");
    let addr = arg.unwrap_or_else(|| "127.0.0.1:1237".into());
    let server = ws::WebServer::bind(addr, endpoint, Some(page.into())).await?;
    println!("open http://{}/", server.local_addr());
    println!("the inspector: http://{}/inspector", server.local_addr());
    server.wait().await;
    Ok(())
}
