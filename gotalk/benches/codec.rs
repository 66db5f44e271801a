//! Micro-benchmarks of the hot paths: header parse and encode, and a typed request round
//! trip through a generated client over the in-memory pipe (both peers in one process,
//! so this measures the library's own cost with no sockets or syscalls).
//!
//!     cargo bench -p gotalk --bench codec

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gotalk::{
    wire::{parse, Header, Name},
    Config, Error, Handlers,
};
use serde::{Deserialize, Serialize};

fn wire(c: &mut Criterion) {
    let mut group = c.benchmark_group("wire");
    group.throughput(Throughput::Elements(1));
    let request = b"r0001005hello00000010abcdefghijklmnop";
    group.bench_function("parse single request, 16 B", |b| {
        let mut buf = BytesMut::with_capacity(request.len());
        b.iter(|| {
            buf.extend_from_slice(request);
            black_box(parse(&mut buf, u32::MAX).expect("valid"))
        })
    });
    let batch: Vec<u8> = request.repeat(64);
    group.throughput(Throughput::Elements(64));
    group.bench_function("parse 64 pipelined requests", |b| {
        let mut buf = BytesMut::with_capacity(batch.len());
        b.iter(|| {
            buf.extend_from_slice(&batch);
            while !buf.is_empty() {
                black_box(parse(&mut buf, u32::MAX).expect("valid"));
            }
        })
    });
    group.throughput(Throughput::Elements(1));
    let name = Name::from_static("hello").expect("short");
    group.bench_function("encode single request header", |b| {
        let mut buf = BytesMut::with_capacity(64);
        b.iter(|| {
            buf.clear();
            let header = Header::SingleRequest {
                id: *b"0001",
                name: black_box(name.as_str()),
            };
            header.encode(black_box(16), &mut buf).expect("encodable");
        })
    });
    group.bench_function("encode single result header", |b| {
        let mut buf = BytesMut::with_capacity(64);
        b.iter(|| {
            buf.clear();
            Header::SingleResult { id: *b"0001" }
                .encode(black_box(16), &mut buf)
                .expect("encodable");
        })
    });
    group.finish();
}

#[derive(Serialize, Deserialize)]
pub struct GreetIn {
    pub name: String,
}

#[derive(Serialize, Deserialize)]
pub struct GreetOut {
    pub greeting: String,
}

/// The service the round trip calls.
#[gotalk::service]
pub trait Greet {
    /// Greets someone.
    async fn greet(&self, input: GreetIn) -> Result<GreetOut, Error>;
}

struct Greeter;

impl Greet for Greeter {
    async fn greet(&self, input: GreetIn) -> Result<GreetOut, Error> {
        Ok(GreetOut {
            greeting: format!("Hello {}", input.name),
        })
    }
}

fn round_trip(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (client, _server) = runtime.block_on(async {
        let handlers = Handlers::new()
            .with(GreetService::new(Greeter))
            .handle_raw("bytes", |req| async move { Ok::<_, Error>(req.payload) });
        gotalk::pipe(Config::dialling(), Config::accepting().handlers(handlers))
    });
    let mut group = c.benchmark_group("round trip over pipe");
    group.throughput(Throughput::Elements(1));
    group.bench_function("typed request (generated client, JSON)", |b| {
        b.to_async(&runtime).iter(|| async {
            let input = GreetIn {
                name: "Rasmus".into(),
            };
            black_box(GreetClient::greet(&client, input).await.expect("answered"))
        })
    });
    let payload = Bytes::from_static(b"0123456789abcdef");
    group.bench_function("raw request, 16 B", |b| {
        b.to_async(&runtime).iter(|| async {
            black_box(
                client
                    .request_raw("bytes", payload.clone())
                    .await
                    .expect("answered"),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, wire, round_trip);
criterion_main!(benches);
