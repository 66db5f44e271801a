#[gotalk::service]
pub trait Svc {
    async fn greet(&self, name: &str) -> String;
}

fn main() {}
