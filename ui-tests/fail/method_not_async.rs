#[gotalk::service]
pub trait Svc {
    fn greet(&self, name: String) -> String;
}

fn main() {}
