#[gotalk::service]
pub trait Svc {
    async fn echo(&self, s: String) -> String;
    #[gotalk(name = "echo")]
    async fn echo_again(&self, s: String) -> String;
}

fn main() {}
