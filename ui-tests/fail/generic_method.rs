#[gotalk::service]
pub trait Svc {
    async fn get<T>(&self, input: T) -> u32;
}

fn main() {}
