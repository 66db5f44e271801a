#[gotalk::service]
pub trait Svc {
    #[gotalk(timeout = "5 parsecs")]
    async fn get(&self) -> u32;
}

fn main() {}
