//! The raw baseline client: the load generator's arguments, one task per connection that
//! keeps K requests outstanding, batching the requests it sends after each read.

#[path = "../../../loadgen.rs"]
mod loadgen;

use std::time::Instant;

use bytes::{Buf, BufMut, BytesMut};
use gotalk_bench_peers::RAW_HEADER;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn run(args: loadgen::Args) -> Result<hdrhistogram::Histogram<u64>, String> {
    let mut stream = tokio::net::TcpStream::connect(&args.addr)
        .await
        .map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let payload = vec![b'x'; args.payload];
    let (deadline, budget) = args.budget();
    let mut hist = loadgen::histogram();
    let mut sent_at = vec![Instant::now(); args.inflight];
    let mut out = BytesMut::new();
    let frame = |out: &mut BytesMut, id: usize| {
        out.put_u32_le(payload.len() as u32);
        out.put_u32_le(id as u32);
        out.put_slice(&payload);
    };
    let mut started = 0u64;
    let mut outstanding = 0usize;
    for (slot, at) in sent_at.iter_mut().enumerate().take(budget as usize) {
        *at = Instant::now();
        frame(&mut out, slot);
        started += 1;
        outstanding += 1;
    }
    let mut buf = BytesMut::with_capacity(64 * 1024);
    while outstanding > 0 {
        if !out.is_empty() {
            stream.write_all(&out).await.map_err(|e| e.to_string())?;
            out.clear();
        }
        if buf.capacity() - buf.len() < 16 * 1024 {
            buf.reserve(64 * 1024);
        }
        if stream.read_buf(&mut buf).await.map_err(|e| e.to_string())? == 0 {
            return Err("server closed".into());
        }
        while buf.len() >= RAW_HEADER {
            let len = (&buf[..4]).get_u32_le() as usize;
            if buf.len() < RAW_HEADER + len {
                buf.reserve(RAW_HEADER + len);
                break;
            }
            let id = (&buf[4..8]).get_u32_le() as usize;
            buf.advance(RAW_HEADER + len);
            if len != payload.len() || id >= sent_at.len() {
                return Err("bad echo".into());
            }
            // One clock read per request, as in `loadgen::drive`.
            let now = Instant::now();
            hist.saturating_record((now - sent_at[id]).as_micros().max(1) as u64);
            outstanding -= 1;
            if started < budget && now < deadline {
                sent_at[id] = now;
                frame(&mut out, id);
                started += 1;
                outstanding += 1;
            }
        }
    }
    Ok(hist)
}

#[tokio::main]
async fn main() {
    let args = loadgen::parse_args("raw_client");
    let start = Instant::now();
    let tasks: Vec<_> = (0..args.conns)
        .map(|_| tokio::spawn(run(args.clone())))
        .collect();
    loadgen::collect("raw", &args, tasks, start).await;
}
