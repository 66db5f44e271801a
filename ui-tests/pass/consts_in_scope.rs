//! The user's lower-case constants in scope do not capture the generated code's locals
//! (a plain `let out = …` would be a pattern matching the constant `out`).

#![allow(dead_code, non_upper_case_globals)]

use gotalk::{Error, FromSock, Sock, StreamIn, StreamOut};

const out: u8 = 0;
const input: u8 = 0;
const payload: u8 = 0;
const result: u8 = 0;
const results: u8 = 0;
const writer: u8 = 0;
const svc: u8 = 0;
const req: u8 = 0;
const n: u8 = 0;
const error: u8 = 0;
const context: u8 = 0;
const value: u8 = 0;
const reply: u8 = 0;
const handlers: u8 = 0;

pub struct Caller(u64);

impl FromSock for Caller {
    fn from_sock(sock: &Sock) -> Result<Self, Error> {
        Ok(Caller(sock.id()))
    }
}

#[gotalk::service]
pub trait Everything {
    async fn add(&self, pair: (u32, u32)) -> Result<u32, Error>;
    async fn whoami(&self, #[gotalk(context)] caller: Caller) -> u64;
    async fn sum(&self, items: StreamIn<u32>) -> u32;
    async fn count(&self, to: u32) -> StreamOut<u32>;
}

#[gotalk::notification]
pub trait Ping {
    async fn ping(&self, #[gotalk(context)] caller: Caller, text: String);
}

struct Impl;

impl Everything for Impl {
    async fn add(&self, pair: (u32, u32)) -> Result<u32, Error> {
        Ok(pair.0 + pair.1)
    }
    async fn whoami(&self, caller: Caller) -> u64 {
        caller.0
    }
    async fn sum(&self, mut items: StreamIn<u32>) -> u32 {
        let mut total = 0;
        while let Some(Ok(item)) = items.next_value().await {
            total += item;
        }
        total
    }
    async fn count(&self, to: u32) -> StreamOut<u32> {
        StreamOut::iter(1..=to)
    }
}

impl Ping for Impl {
    async fn ping(&self, _caller: Caller, _text: String) {}
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let served = gotalk::Handlers::new()
        .with(EverythingService::new(Impl))
        .with(PingService::new(Impl));
    let (sock, _server) = gotalk::pipe(
        gotalk::Config::dialling(),
        gotalk::Config::accepting().handlers(served),
    );
    assert_eq!(EverythingClient::add(&sock, (2, 40)).await.unwrap(), 42);
    assert!(EverythingClient::whoami(&sock).await.unwrap() > 0);
    let (mut sender, sum) = EverythingClient::sum(&sock).await.unwrap();
    sender.send(&1).await.unwrap();
    sender.send(&2).await.unwrap();
    sender.finish().await.unwrap();
    assert_eq!(sum.result().await.unwrap(), 3);
    let mut counted = EverythingClient::count(&sock, 3).await.unwrap();
    let mut seen = Vec::new();
    while let Some(item) = counted.next_value().await {
        seen.push(item.unwrap());
    }
    assert_eq!(seen, [1, 2, 3]);
    PingNotifier::ping(&sock, "hi".into()).await.unwrap();
}
