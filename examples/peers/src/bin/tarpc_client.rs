//! The tarpc client: the load generator's arguments and output over tarpc's tokio +
//! bincode transport.

#[path = "../../../loadgen.rs"]
mod loadgen;

use std::{
    future::Future,
    time::{Duration, Instant},
};

use bytes::Bytes;
use gotalk_bench_peers::{EchoClient, Sample};
use tarpc::{client, context, tokio_serde::formats::Bincode};

#[tokio::main]
async fn main() {
    let args = loadgen::parse_args("tarpc_client");
    let payload = Bytes::from(vec![b'x'; args.payload]);
    let mut clients = Vec::new();
    for _ in 0..args.conns {
        let mut transport = tarpc::serde_transport::tcp::connect(&args.addr, Bincode::default);
        transport.config_mut().max_frame_length(usize::MAX);
        let transport = match transport.await {
            Ok(t) => t,
            Err(e) => {
                eprintln!("cannot connect to {}: {e}", args.addr);
                std::process::exit(1);
            }
        };
        let mut config = client::Config::default();
        config.max_in_flight_requests = args.inflight.max(1000);
        config.pending_request_buffer = args.inflight.max(100);
        clients.push(EchoClient::new(config, transport).spawn());
    }
    let start = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|c| {
            tokio::spawn(loadgen::drive(
                Caller {
                    client: c,
                    sample: Sample::example(),
                    typed: args.typed,
                },
                args.clone(),
                payload.clone(),
            ))
        })
        .collect();
    loadgen::collect("tarpc", &args, tasks, start).await;
}

/// The workload through tarpc's generated client: `bytes`, or `sample` when typed.
struct Caller {
    client: EchoClient,
    sample: Sample,
    typed: bool,
}

impl loadgen::Call for Caller {
    fn call(&self, payload: Bytes) -> impl Future<Output = Result<usize, String>> + Send {
        let mut ctx = context::current();
        ctx.deadline = Instant::now() + Duration::from_secs(60);
        let (client, sample, typed) = (&self.client, &self.sample, self.typed);
        async move {
            if typed {
                let (sample, id) = (sample.clone(), sample.id);
                let out = client
                    .sample(ctx, sample)
                    .await
                    .map_err(|e| e.to_string())?;
                return match out.id == id {
                    true => Ok(loadgen::TYPED_JSON_BYTES),
                    false => Err(format!("unexpected answer {out:?}")),
                };
            }
            client
                .bytes(ctx, serde_bytes::ByteBuf::from(payload.to_vec()))
                .await
                .map(|out| out.len())
                .map_err(|e| e.to_string())
        }
    }
}
