#[gotalk::service]
pub trait Svc {
    async fn get(&mut self) -> u32;
}

fn main() {}
