#[gotalk::service]
pub trait Svc {
    async fn greet(&self) -> String {
        String::new()
    }
}

fn main() {}
