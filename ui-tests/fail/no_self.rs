#[gotalk::service]
pub trait Svc {
    async fn get(input: u32) -> u32;
}

fn main() {}
