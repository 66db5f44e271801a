//! Heap allocations per small request round trip, counted by a counting global allocator
//! (both peers in one process over the in-memory pipe, on one thread, so the count is
//! the library's own and repeats exactly). Run with `--nocapture` to see the figures;
//! the bounds catch a regression that adds allocations to the hot path.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
    sync::atomic::{AtomicU64, Ordering},
};

use bytes::Bytes;
use gotalk::{Config, Error, Handlers};
use serde::{Deserialize, Serialize};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: defers to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations per call of `f`, averaged over `rounds` calls after a warm-up.
async fn per_call<F, Fut>(rounds: u64, mut f: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..100 {
        f().await;
    }
    ALLOCATIONS.store(0, Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    for _ in 0..rounds {
        f().await;
    }
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.load(Ordering::Relaxed) as f64 / rounds as f64
}

#[derive(Serialize, Deserialize)]
struct GreetIn {
    name: String,
}

#[derive(Serialize, Deserialize)]
struct GreetOut {
    greeting: String,
}

#[test]
fn allocations_per_round_trip_are_a_small_constant() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let handlers = Handlers::new()
            .handle_raw("bytes", |req| async move { Ok::<_, Error>(req.payload) })
            .handle("greet", |input: GreetIn| async move {
                Ok::<_, Error>(GreetOut {
                    greeting: format!("Hello {}", input.name),
                })
            });
        // A handler that allocates nothing itself: what is left is the library's.
        let handlers = handlers.handle("echo name", |input: GreetIn| async move {
            Ok::<_, Error>(GreetOut {
                greeting: input.name,
            })
        });
        let (client, _server) =
            gotalk::pipe(Config::dialling(), Config::accepting().handlers(handlers));
        let payload = Bytes::from_static(b"0123456789abcdef");

        let raw = per_call(1000, || async {
            let out = client.request_raw("bytes", payload.clone()).await;
            assert_eq!(out.expect("answered"), payload);
        })
        .await;
        let typed = per_call(1000, || async {
            let input = GreetIn {
                name: "Rasmus".into(),
            };
            let out: GreetOut = client.request("greet", &input).await.expect("answered");
            assert_eq!(out.greeting, "Hello Rasmus");
        })
        .await;
        let input = GreetIn {
            name: "Rasmus".into(),
        };
        let library = per_call(1000, || async {
            let out: GreetOut = client.request("echo name", &input).await.expect("answered");
            assert_eq!(out.greeting, "Rasmus");
        })
        .await;
        println!(
            "allocations per round trip (both peers): raw 16 B {raw:.2}, typed JSON {typed:.2} \
             (the library's own: {library:.2})"
        );
        // Measured: see BENCHMARKS.md. The bounds leave room for the runtime's own
        // occasional allocations, not for a new one per request.
        assert!(raw <= 2.0, "raw round trip allocates {raw:.2} times");
        assert!(typed <= 8.0, "typed round trip allocates {typed:.2} times");
        // One JSON payload each way, one `String` decoded from each, the handler's future.
        assert!(
            library <= 5.0,
            "the library allocates {library:.2} times per typed round trip"
        );
    });
}
