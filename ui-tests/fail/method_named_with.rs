// `Client::with(&sock, options)` takes per-call options: no operation may be called that.
#[gotalk::service]
pub trait Svc {
    async fn with(&self, n: u32) -> u32;
}

fn main() {}
