#[gotalk::service]
pub trait Svc {
    async unsafe fn greet(&self) -> String;
}

fn main() {}
