// An implementation written with `#[async_trait]`: the service's methods return
// `impl Future`, so the impl must use plain `async fn` (remove the attribute; the macro's
// docs say so). This case pins the message such a user sees.
use async_trait::async_trait;

#[gotalk::service]
pub trait Svc {
    async fn greet(&self, name: String) -> String;
}

struct Impl;

#[async_trait]
impl Svc for Impl {
    async fn greet(&self, name: String) -> String {
        format!("Hello {name}")
    }
}

fn main() {}
