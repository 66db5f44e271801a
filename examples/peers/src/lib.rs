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

#[path = "../../sample.rs"]
mod sample;
pub use sample::Sample;

/// The raw baseline's header: payload length and request ID, little-endian.
pub const RAW_HEADER: usize = 8;
