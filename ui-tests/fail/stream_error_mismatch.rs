use gotalk::StreamOut;

#[derive(serde::Serialize, serde::Deserialize, Debug)]
pub struct Missing;
#[derive(serde::Serialize, serde::Deserialize, Debug)]
pub struct Broken;

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("missing")
    }
}
impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("broken")
    }
}

#[gotalk::service]
pub trait Svc {
    async fn watch(&self) -> Result<StreamOut<u32, Broken>, Missing>;
}

fn main() {}
