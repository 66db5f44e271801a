//! A whole connection fed arbitrary bytes by its peer: no panic, and everything it sends
//! back is valid Gotalk (a protocol error, if any, last).
#![no_main]

use std::time::Duration;

use bytes::BytesMut;
use gotalk::{
    wire::{parse, Message, ParseError},
    Config, Error, Handlers, Limits, Reply, Request, Sock, StreamRequest,
};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let handlers = Handlers::new()
            .handle_raw("e", |req: Request| async move { Ok::<_, Error>(req.payload) })
            .handle("j", |v: i64| async move { Ok::<_, Error>(v) })
            .handle_stream("s", |req: StreamRequest| async move { Reply::stream(req.chunks) });
        let limits = Limits::default()
            .max_payload(4096)
            .max_single_requests(4)
            .max_stream_requests(2);
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let (mut rd, mut wr) = tokio::io::split(theirs);
        let _sock = Sock::adopt(ours, "fuzz", Config::accepting().handlers(handlers).limits(limits));
        let mut input = b"01".to_vec();
        input.extend_from_slice(data);
        let (_, out) = tokio::join!(
            async {
                let _ = wr.write_all(&input).await;
                // The end of the input: the connection closes once it has answered.
                let _ = wr.shutdown().await;
            },
            async {
                let mut out = Vec::new();
                let _ = tokio::time::timeout(Duration::from_secs(5), async {
                    let mut chunk = [0u8; 4096];
                    loop {
                        match rd.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => out.extend_from_slice(&chunk[..n]),
                        }
                    }
                })
                .await;
                out
            }
        );
        assert!(out.starts_with(b"01"), "the version goes first");
        let mut buf = BytesMut::from(&out[2..]);
        let mut last_was_error = false;
        while !buf.is_empty() {
            assert!(!last_was_error, "nothing after a protocol error");
            match parse(&mut buf, u32::MAX) {
                Ok(Message::ProtocolError { .. }) => last_was_error = true,
                Ok(_) => {}
                // Only if the time ran out mid-message.
                Err(ParseError::Incomplete { .. }) => break,
                Err(ParseError::Invalid(e)) => panic!("invalid output: {e}"),
            }
        }
    });
});
