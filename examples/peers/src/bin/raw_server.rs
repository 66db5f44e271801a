//! The raw baseline server: `raw_server ADDR`. Reads as much as is there, and writes every
//! complete frame straight back (an echo's answer is its request's own bytes): one read,
//! one write, no copies, no tasks per request.

use bytes::{Buf, BytesMut};
use gotalk_bench_peers::RAW_HEADER;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7200".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("raw server on {addr}");
    loop {
        let (mut stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let mut buf = BytesMut::with_capacity(64 * 1024);
            loop {
                if buf.capacity() - buf.len() < 16 * 1024 {
                    buf.reserve(64 * 1024);
                }
                match stream.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                // The length of the complete frames at the front of the buffer.
                let mut complete = 0;
                while buf.len() - complete >= RAW_HEADER {
                    let mut header = &buf[complete..complete + 4];
                    let len = header.get_u32_le() as usize;
                    if buf.len() - complete < RAW_HEADER + len {
                        buf.reserve(RAW_HEADER + len);
                        break;
                    }
                    complete += RAW_HEADER + len;
                }
                if complete > 0 {
                    let answer = buf.split_to(complete);
                    if stream.write_all(&answer).await.is_err() {
                        return;
                    }
                }
            }
        });
    }
}
