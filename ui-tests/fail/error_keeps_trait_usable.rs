//! One bad method: only the macro's error is reported; the trait is still emitted, so
//! the impl and the code using it compile as they are.

#[gotalk::service]
pub trait Svc {
    async fn add(&self, a: u32, b: u32) -> u32;
    async fn get(&self) -> u32;
}

struct Impl;

impl Svc for Impl {
    async fn add(&self, a: u32, b: u32) -> u32 {
        a + b
    }
    async fn get(&self) -> u32 {
        1
    }
}

async fn use_it() -> u32 {
    Impl.add(1, 2).await + Impl.get().await
}

fn main() {
    let _ = use_it();
}
