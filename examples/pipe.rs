//! The reference's pipe example: two peers connected by an in-memory pipe, each serving
//! an operation and calling the other's. No sockets at all.
//!
//!     cargo run --example pipe

use gotalk::{Config, Error, Handlers};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let left = Handlers::new().handle("left.greet", |name: String| async move {
        Ok::<_, Error>(format!("Hello {name}, from the left"))
    });
    let right = Handlers::new().handle("right.add", |(a, b): (i64, i64)| async move {
        Ok::<_, Error>(a + b)
    });

    let (a, b) = gotalk::pipe(
        Config::dialling().handlers(left),
        Config::accepting().handlers(right),
    );
    let sum: i64 = a.request("right.add", &(2, 40)).await?;
    println!("left asked right: 2 + 40 = {sum}");
    let greeting: String = b.request("left.greet", "right").await?;
    println!("right asked left: {greeting}");
    a.shutdown().await;
    Ok(())
}
