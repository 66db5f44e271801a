#[gotalk::service]
pub trait Svc {
    #[gotalk(name = "op")]
    async fn first(&self);
    #[gotalk(name = "op")]
    async fn second(&self);
}

fn main() {}
