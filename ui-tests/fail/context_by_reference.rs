// A `#[gotalk(context)]` parameter is made for each call, so it is taken by value.
pub struct User;

impl gotalk::FromSock for User {
    fn from_sock(_: &gotalk::Sock) -> Result<Self, gotalk::Error> {
        Ok(User)
    }
}

#[gotalk::service]
pub trait Account {
    async fn whoami(&self, #[gotalk(context)] user: &User) -> String;
}

fn main() {}
