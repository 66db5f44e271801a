//! Describing (`crate::describe`, `EXTENSIONS.md`): what a set of handlers serves, the
//! answer to a peer's `gotalk:describe`, and asking a peer that announced `describe` for
//! its own.

use std::{collections::HashMap, sync::OnceLock, time::Duration};

use bytes::Bytes;

use super::{extension::DESCRIBE, handler::RequestFn, registry::request_fn, Handlers, Reply, Sock};
use crate::describe::{DescribeError, Description, Kind, Operation};

impl Handlers {
    /// What this set serves, with its parent's names it does not handle itself, sorted by
    /// name: what a peer that asks is told when the connection's config has
    /// [`describe`](crate::Config::describe) on. A fallback (`""`) is not listed.
    pub fn describe(&self) -> Description {
        let mut operations: Vec<Operation> = Vec::new();
        // Kinds for which a set nearer the connection has a fallback: it answers every
        // name, so its parents' handlers of that kind are never reached.
        let mut caught: Vec<Kind> = Vec::new();
        for set in self.chain() {
            let mut declared: HashMap<(Kind, String), Operation> = set
                .describers
                .iter()
                .flat_map(|describe| describe())
                .map(|op| ((op.kind, op.name.clone()), op))
                .collect();
            let mut found = Vec::new();
            for (kind, names) in set.by_kind {
                if caught.contains(&kind) {
                    continue;
                }
                if names.first() == Some(&"") {
                    caught.push(kind);
                }
                for name in names {
                    // A child's handler hides its parent's of the same name and kind.
                    let hidden = operations
                        .iter()
                        .any(|op| op.kind == kind && op.name == name);
                    if name.is_empty() || hidden {
                        continue;
                    }
                    let operation = declared
                        .remove(&(kind, name.to_owned()))
                        .unwrap_or_else(|| Operation::new(name, kind));
                    found.push(operation);
                }
            }
            operations.extend(found);
        }
        operations.sort_by(|a, b| (&a.name, a.kind.as_str()).cmp(&(&b.name, b.kind.as_str())));
        Description { operations }
    }
}

/// The handler of `gotalk:describe`: the description of the handlers the connection has
/// when it is asked (a signed-in connection's set may hold more than a new one's).
pub(super) fn handler() -> RequestFn {
    static HANDLER: OnceLock<RequestFn> = OnceLock::new();
    HANDLER
        .get_or_init(|| {
            request_fn(|req: super::Request| {
                let json = req.sock.with_handlers(Handlers::description_json);
                async move { Reply::Result(json) }
            })
        })
        .clone()
}

impl Sock {
    /// The peer's description of what it serves, if it describes itself: it speaks our
    /// extension and enabled [`Config::describe`](crate::Config::describe). The Go
    /// reference and the reference gotalk.js do not, and are sent nothing: a peer's
    /// announcement is not answered, so this waits for it at most `wait` (one round trip
    /// after connecting is enough for ours) before it gives
    /// [`DescribeError::NotDescribed`].
    pub async fn describe_peer(&self, wait: Duration) -> Result<Description, DescribeError> {
        if !self.extension().peer_describes(wait).await {
            return Err(DescribeError::NotDescribed);
        }
        let json = self
            .request_raw(DESCRIBE, Bytes::new())
            .await
            .map_err(DescribeError::Call)?;
        serde_json::from_slice(&json).map_err(|e| DescribeError::Invalid(e.to_string()))
    }
}
