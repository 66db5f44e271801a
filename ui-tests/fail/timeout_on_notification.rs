#[gotalk::notification]
pub trait Events {
    #[gotalk(timeout = "5s")]
    async fn tick(&self, n: u64);
}

fn main() {}
