#[gotalk::service]
pub trait Svc {
    type Output;
    async fn get(&self) -> u32;
}

fn main() {}
