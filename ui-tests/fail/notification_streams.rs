#[gotalk::notification]
pub trait Events {
    async fn ticks(&self, n: gotalk::StreamIn<u64>);
}

fn main() {}
