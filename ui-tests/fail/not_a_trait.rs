#[gotalk::service]
pub struct Svc {
    name: String,
}

fn main() {}
