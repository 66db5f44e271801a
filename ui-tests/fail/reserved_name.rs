// Names under `gotalk:` carry the protocol extension (EXTENSIONS.md): a prefix or a
// rename cannot make an operation one of them.
#[gotalk::service(prefix = "gotalk:")]
pub trait Svc {
    async fn get(&self) -> u32;
}

#[gotalk::notification]
pub trait Notes {
    #[gotalk(name = "gotalk:cancel")]
    async fn cancel(&self, id: String);
}

fn main() {}
