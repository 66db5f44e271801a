pub struct NotSerde {
    pub name: String,
}

#[gotalk::service]
pub trait Svc {
    async fn greet(&self, input: NotSerde) -> String;
}

fn main() {}
