#[gotalk::service]
pub trait Svc {
    #[gotalk(rename = "x")]
    async fn get(&self) -> u32;
}

fn main() {}
