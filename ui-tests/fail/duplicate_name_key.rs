#[gotalk::service]
pub trait Svc {
    #[gotalk(name = "a", name = "b")]
    async fn get(&self) -> u32;
}

fn main() {}
