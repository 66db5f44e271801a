//! The frame parser on arbitrary bytes: it never panics, never consumes bytes it does
//! not return, and what it parses encodes back to the same bytes (hex in lower case).
#![no_main]

use bytes::BytesMut;
use gotalk::wire::{parse, Header, Message, ParseError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    loop {
        let before = buf.clone();
        match parse(&mut buf, 1 << 20) {
            Ok(msg) => {
                let consumed = &before[..before.len() - buf.len()];
                let mut again = BytesMut::new();
                encode(&msg, &mut again);
                assert_eq!(
                    again.to_ascii_lowercase(),
                    consumed.to_ascii_lowercase(),
                    "{msg}"
                );
            }
            Err(ParseError::Incomplete { needed }) => {
                assert!(needed > buf.len());
                assert_eq!(buf, before, "nothing consumed");
                break;
            }
            Err(ParseError::Invalid(_)) => {
                assert_eq!(buf, before, "nothing consumed");
                break;
            }
        }
    }
});

fn encode(msg: &Message, out: &mut BytesMut) {
    let (header, payload): (Header, &[u8]) = match msg {
        Message::SingleRequest { id, name, payload } => (
            Header::SingleRequest {
                id: *id,
                name: name.as_str(),
            },
            payload,
        ),
        Message::StreamRequest { id, name, payload } => (
            Header::StreamRequest {
                id: *id,
                name: name.as_str(),
            },
            payload,
        ),
        Message::StreamRequestPart { id, payload } => (Header::StreamRequestPart { id: *id }, payload),
        Message::SingleResult { id, payload } => (Header::SingleResult { id: *id }, payload),
        Message::StreamResult { id, payload } => (Header::StreamResult { id: *id }, payload),
        Message::ErrorResult { id, payload } => (Header::ErrorResult { id: *id }, payload),
        Message::RetryResult { id, wait_ms, payload } => (
            Header::RetryResult {
                id: *id,
                wait_ms: *wait_ms,
            },
            payload,
        ),
        Message::Notification { name, payload } => (
            Header::Notification {
                name: name.as_str(),
            },
            payload,
        ),
        Message::Heartbeat { load, time } => (
            Header::Heartbeat {
                load: *load,
                time: *time,
            },
            &[],
        ),
        Message::ProtocolError { code } => (Header::ProtocolError { code: *code }, &[]),
    };
    header.encode(payload.len(), out).expect("what parsed encodes");
    out.extend_from_slice(payload);
}
