#[gotalk::service]
pub trait Svc {
    async fn get(self) -> u32;
}

fn main() {}
