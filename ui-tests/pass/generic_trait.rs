//! Type parameters on the trait, with serde bounds.

use serde::{de::DeserializeOwned, Serialize};

#[gotalk::service]
pub trait Repo<K: Serialize + DeserializeOwned, V>
where
    V: Serialize + DeserializeOwned,
{
    async fn get(&self, key: K) -> Option<V>;
}

struct Empty;

impl Repo<String, u64> for Empty {
    async fn get(&self, _key: String) -> Option<u64> {
        None
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let handlers = gotalk::Handlers::new().with(RepoService::new(Empty));
    let (sock, _server) = gotalk::pipe(gotalk::Config::dialling(), gotalk::Config::accepting().handlers(handlers));
    assert_eq!(RepoClient::<String, u64>::get(&sock, "k".into()).await.unwrap(), None);
    let with = RepoClient::<String, u64>::with(&sock, gotalk::CallOptions::new().retries(1));
    assert_eq!(with.get("k".into()).await.unwrap(), None);
    described();
}

/// Described with the trait's own types; a schema only where the bounds declared on the
/// type say it has one (none here: the autoref falls back in generic code).
fn described() {
    let handlers = gotalk::Handlers::new().with(RepoService::new(Empty));
    let get = &handlers.describe().operations[0];
    assert_eq!(get.to_string(), "get(K) -> Option<V>");
    assert!(get.input.as_ref().unwrap().schema.is_none());
}
