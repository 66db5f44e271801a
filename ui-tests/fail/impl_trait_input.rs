#[gotalk::service]
pub trait Svc {
    async fn greet(&self, name: impl ToString) -> String;
}

fn main() {}
