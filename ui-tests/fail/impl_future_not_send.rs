use std::rc::Rc;

#[gotalk::service]
pub trait Svc {
    async fn greet(&self) -> String;
}

struct Impl;

impl Svc for Impl {
    async fn greet(&self) -> String {
        let rc = Rc::new(1);
        std::future::ready(()).await;
        rc.to_string()
    }
}

fn main() {}
