#[gotalk::notification]
pub trait Events {
    async fn tick(&self, n: u64) -> bool;
}

fn main() {}
