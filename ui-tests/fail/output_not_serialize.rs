pub struct NotSerde;

#[gotalk::service]
pub trait Svc {
    async fn greet(&self) -> NotSerde;
}

fn main() {}
