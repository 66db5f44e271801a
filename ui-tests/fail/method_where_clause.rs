#[gotalk::service]
pub trait Svc {
    async fn get(&self, input: u32) -> u32
    where
        Self: Sized;
}

fn main() {}
