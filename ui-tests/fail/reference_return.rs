#[gotalk::service]
pub trait Svc {
    async fn greet(&self) -> &'static str;
}

fn main() {}
