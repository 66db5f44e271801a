//! The user's own `Result`, `Option`, `Error`, `Send`, `Arc`, `Box` and `Future` in scope
//! do not confuse the generated code.

#![allow(dead_code)]

#[derive(Debug)]
pub struct MyError;

impl std::fmt::Display for MyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("my error")
    }
}

type Result<T> = std::result::Result<T, MyError>;
struct Option;
struct Arc;
struct Box;
struct Error;
trait Send {}
trait Future {}
fn drop() {}

#[gotalk::service]
pub trait Aliased {
    async fn get(&self, key: String) -> Result<u32>;
    async fn list(&self) -> Vec<String>;
}

struct Impl;

impl Aliased for Impl {
    async fn get(&self, _key: String) -> Result<u32> {
        Err(MyError)
    }
    async fn list(&self) -> Vec<String> {
        Vec::new()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let handlers = gotalk::Handlers::new().with(AliasedService::new(Impl));
    let (sock, _server) = gotalk::pipe(gotalk::Config::dialling(), gotalk::Config::accepting().handlers(handlers));
    let err = AliasedClient::get(&sock, "k".into()).await.unwrap_err();
    assert_eq!(err.to_string(), "my error");
}
