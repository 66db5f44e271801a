#[gotalk::service]
pub trait Svc {
    async fn add(&self, a: u32, b: u32) -> u32;
}

fn main() {}
