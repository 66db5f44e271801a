pub struct Opaque;

#[gotalk::service]
pub trait Svc {
    async fn greet(&self) -> Result<String, Opaque>;
}

fn main() {}
