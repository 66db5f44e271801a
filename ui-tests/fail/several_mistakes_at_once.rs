#[gotalk::service]
pub trait Svc {
    fn one(&self);
    async fn two(&mut self);
    async fn three(&self, a: u8, b: u8);
}

fn main() {}
