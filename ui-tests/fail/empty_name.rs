#[gotalk::service]
pub trait Svc {
    #[gotalk(name = "")]
    async fn get(&self) -> u32;
}

fn main() {}
