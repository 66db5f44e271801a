#[gotalk::service]
pub trait Svc {
    async fn get(self: Box<Self>) -> u32;
}

fn main() {}
