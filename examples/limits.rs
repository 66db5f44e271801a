//! The reference's limits example: a server that runs at most two requests at a time.
//! Six concurrent calls arrive; the excess is answered with retry results (a random wait
//! of 50 to 100 ms), and the client, allowed to retry, gets all six answered.
//!
//!     cargo run --example limits

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    sync::Arc,
    time::Duration,
};

use gotalk::{CallOptions, Config, Error, Handlers, Limits, Server};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (r, m) = (running.clone(), most.clone());
    let handlers = Handlers::new().handle("work", move |n: u32| {
        let (r, m) = (r.clone(), m.clone());
        async move {
            let now = r.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            r.fetch_sub(1, Ordering::SeqCst);
            Ok::<_, Error>(n * 10)
        }
    });
    let limits = Limits::default()
        .max_single_requests(2)
        .retry_wait(Duration::from_millis(50)..=Duration::from_millis(100));
    let server = Server::new(Config::accepting().handlers(handlers).limits(limits))
        .listen_tcp("127.0.0.1:0")
        .await?;
    let sock = gotalk::tcp::connect(server.local_addr()).await?;

    // Without retries, the excess fails with the server's retry result.
    let attempts: Vec<_> = (0..6)
        .map(|n| {
            let sock = sock.clone();
            tokio::spawn(async move { sock.request::<_, u32>("work", &n).await })
        })
        .collect();
    let mut refused = 0;
    for attempt in attempts {
        if let Err(Error::Retry { wait, reason }) =
            attempt.await.map_err(|e| Error::message(e.to_string()))?
        {
            refused += 1;
            println!("retry result: {reason} (wait {} ms)", wait.as_millis());
        }
    }
    println!("{refused} of 6 were told to retry");

    // With retries allowed, every call gets through.
    let calls: Vec<_> = (0..6)
        .map(|n| {
            let sock = sock.clone();
            tokio::spawn(async move {
                sock.request_with::<_, u32>("work", &n, CallOptions::new().retries(20))
                    .await
            })
        })
        .collect();
    let mut results = Vec::new();
    for call in calls {
        results.push(call.await.map_err(|e| Error::message(e.to_string()))??);
    }
    println!("with retries: {results:?}");
    println!("at most {} ran at once", most.load(Ordering::SeqCst));
    server.shutdown().await;
    Ok(())
}
