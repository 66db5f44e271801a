//! The typed workload of the benchmarks (`BENCHMARKS.md`): a `#[gotalk::service]`
//! operation with a small struct in and out, 40 bytes of JSON each way. Served by
//! `conformance_peer`, called through the generated client by `bench_client
//! --payload typed`; the tarpc peer serves the same struct (`gotalk-bench-peers`).

#![allow(dead_code)] // the server uses one half, the client the other

use gotalk::Error;

#[path = "sample.rs"]
mod sample;
pub use sample::Sample;

/// The benchmark service.
#[gotalk::service]
pub trait Bench {
    /// Echoes the sample.
    async fn sample(&self, input: Sample) -> Result<Sample, Error>;
}

/// Serves [`Bench`].
pub struct Bencher;

impl Bench for Bencher {
    async fn sample(&self, input: Sample) -> Result<Sample, Error> {
        Ok(input)
    }
}
