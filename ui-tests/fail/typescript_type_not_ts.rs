// `#[gotalk::service(typescript)]` needs every input and output type to derive ts-rs's
// `TS`; the error points at the type that does not.
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct NotTs {
    pub name: String,
}

#[gotalk::service(typescript)]
pub trait Svc {
    async fn greet(&self, input: NotTs) -> String;
}

fn main() {}
