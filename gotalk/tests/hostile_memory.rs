//! Memory under headers that declare huge payloads with nothing behind them: the server
//! must not allocate what a header merely declares. Live heap bytes are counted by a
//! counting global allocator (its own test binary, so nothing else runs beside it).

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicIsize, Ordering},
    time::Duration,
};

use gotalk::{Config, Error, Handlers, Server};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: defers to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_declared_payloads_with_nothing_behind_them_cost_no_memory() {
    let handlers = Handlers::new().handle_raw("bytes", |req: gotalk::Request| async move {
        Ok::<_, Error>(req.payload)
    });
    let server = Server::new(Config::accepting().handlers(handlers))
        .listen_tcp("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr();
    const PEERS: usize = 100;
    // Idle connections first, so the measurement below counts only what the headers cost.
    let mut peers = Vec::new();
    for _ in 0..PEERS {
        let mut peer = TcpStream::connect(addr).await.unwrap();
        peer.write_all(b"01").await.unwrap();
        let mut version = [0; 2];
        peer.read_exact(&mut version).await.unwrap();
        peers.push(peer);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = LIVE.load(Ordering::Relaxed);
    for peer in &mut peers {
        // 16 MiB - 1 declared (within the default limit), then a few bytes, then nothing.
        peer.write_all(b"r0001005bytes00ffffffxyz").await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let grown = LIVE.load(Ordering::Relaxed) - before;
    let per_peer = grown / PEERS as isize;
    println!("live heap grew {grown} bytes for {PEERS} headers declaring 16 MiB: {per_peer} each");
    assert!(
        per_peer < 160 * 1024,
        "{per_peer} bytes per connection for a header alone"
    );
    assert_eq!(
        server.connections().len(),
        PEERS,
        "all still open, waiting for their bytes"
    );
}
