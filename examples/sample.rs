//! The value of the typed workload in the benchmarks (`BENCHMARKS.md`), shared by
//! gotalk's benchmark service (`bench_ops.rs`) and the tarpc peer
//! (`peers/src/lib.rs`), so both carry exactly the same struct.

use serde::{Deserialize, Serialize};

/// What the typed workload sends and gets back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub id: u64,
    pub name: String,
    pub ok: bool,
}

impl Sample {
    /// The value every typed request carries: `{"id":1234567,"name":"sample","ok":true}`,
    /// 40 bytes of JSON.
    pub fn example() -> Self {
        Self {
            id: 1_234_567,
            name: "sample".into(),
            ok: true,
        }
    }
}
