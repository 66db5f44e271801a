//! Peers for the benchmarks in `BENCHMARKS.md`: each serves the same echo (`bytes`) that
//! `conformance_peer` serves, and each has a client built on the same load generator
//! (`examples/loadgen.rs`) as `bench_client`.
//!
//! - `raw_server` / `raw_client`: the physical limit of this machine for a pipelined
//!   request/response protocol: frames of `[len u32][id u32][payload]`, the server
//!   answering inline with one write per read (an echo writes the requests' own bytes
//!   back), the client keeping K requests outstanding from one task.
//! - `tarpc_server` / `tarpc_client`: tarpc's idiomatic tokio + bincode transport, with
//!   `serde_bytes` so payloads are not serialized element by element.
//!
//! `matrix.sh` runs them all side by side.

/// The tarpc service: the same echo as gotalk's `bytes`, and the typed workload.
#[tarpc::service]
pub trait Echo {
    /// Echoes the payload.
    async fn bytes(payload: serde_bytes::ByteBuf) -> serde_bytes::ByteBuf;
    /// Echoes the sample (as gotalk's `Bench::sample`, `examples/bench_ops.rs`).
    async fn sample(input: Sample) -> Sample;
}

/// The typed workload's value, as `examples/bench_ops.rs` has it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sample {
    pub id: u64,
    pub name: String,
    pub ok: bool,
}

impl Sample {
    /// The value every typed request carries.
    pub fn example() -> Self {
        Self {
            id: 1_234_567,
            name: "sample".into(),
            ok: true,
        }
    }
}

/// The raw baseline's header: payload length and request ID, little-endian.
pub const RAW_HEADER: usize = 8;
