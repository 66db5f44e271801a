use gotalk::Sock;

#[gotalk::service]
pub trait Svc {
    async fn greet(&self, name: String, sock: &Sock) -> String;
}

fn main() {}
