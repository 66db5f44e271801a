#[gotalk::service]
pub trait Svc {
    async fn greet(&self) -> impl std::fmt::Display;
}

fn main() {}
