#[gotalk::service]
pub trait Svc<'a> {
    async fn greet(&self) -> String;
}

fn main() {}
