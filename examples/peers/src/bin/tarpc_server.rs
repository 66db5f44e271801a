//! The tarpc server: `tarpc_server ADDR`, serving `Echo::bytes` and `Echo::sample` (the
//! typed workload) over tarpc's tokio +
//! bincode transport, one spawned task per request as tarpc's examples do.

use futures_util::{future, StreamExt};
use gotalk_bench_peers::{Echo, Sample};
use tarpc::{
    context,
    server::{self, Channel},
    tokio_serde::formats::Bincode,
};

#[derive(Clone)]
struct EchoServer;

impl Echo for EchoServer {
    async fn bytes(
        self,
        _: context::Context,
        payload: serde_bytes::ByteBuf,
    ) -> serde_bytes::ByteBuf {
        payload
    }

    async fn sample(self, _: context::Context, input: Sample) -> Sample {
        input
    }
}

async fn spawn(fut: impl std::future::Future<Output = ()> + Send + 'static) {
    tokio::spawn(fut);
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7300".into());
    let mut listener = tarpc::serde_transport::tcp::listen(&addr, Bincode::default).await?;
    listener.config_mut().max_frame_length(usize::MAX);
    println!("tarpc server on {addr}");
    listener
        .filter_map(|r| future::ready(r.ok()))
        .map(server::BaseChannel::with_defaults)
        .map(|channel| channel.execute(EchoServer.serve()).for_each(spawn))
        .buffer_unordered(100_000)
        .for_each(|_| async {})
        .await;
    Ok(())
}
