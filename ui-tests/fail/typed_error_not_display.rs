// A typed error must also be `Display`: its text is what logs and `?` into
// `gotalk::Error` show.
#[derive(serde::Serialize, serde::Deserialize)]
pub enum KvError {
    NotFound,
}

#[gotalk::service]
pub trait Kv {
    async fn get(&self) -> Result<u32, KvError>;
}

fn main() {}
