//! Unit and property tests of the wire layer.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

use super::*;

fn name(s: &str) -> Name {
    Name::new(s).unwrap()
}

fn b(s: &'static [u8]) -> Bytes {
    Bytes::from_static(s)
}

/// One message of each type with the bytes it must encode to.
fn samples() -> Vec<(Message, &'static [u8])> {
    vec![
        (
            Message::SingleRequest {
                id: *b"0001",
                name: name("echo"),
                payload: b(br#"{"message":"Hello World"}"#),
            },
            br#"r0001004echo00000019{"message":"Hello World"}"#,
        ),
        (
            Message::StreamRequest {
                id: *b"0005",
                name: name("stream-echo"),
                payload: b(b"hello "),
            },
            b"s000500bstream-echo00000006hello ",
        ),
        (
            Message::StreamRequestPart {
                id: *b"0005",
                payload: b(b""),
            },
            b"p000500000000",
        ),
        (
            Message::SingleResult {
                id: *b"0001",
                payload: b(br#"{"message":"Hello World"}"#),
            },
            br#"R000100000019{"message":"Hello World"}"#,
        ),
        (
            Message::StreamResult {
                id: *b"0005",
                payload: b(b"world"),
            },
            b"S000500000005world",
        ),
        (
            Message::ErrorResult {
                id: *b"0001",
                payload: b(br#"{"error":"Unknown operation \"echo\""}"#),
            },
            br#"E000100000026{"error":"Unknown operation \"echo\""}"#,
        ),
        (
            Message::RetryResult {
                id: *b"0001",
                wait_ms: 5000,
                payload: b(br#""request rate limit""#),
            },
            br#"e00010000138800000014"request rate limit""#,
        ),
        (
            Message::Notification {
                name: name("chat message"),
                payload: b(br#"{"message":"Hi","from":"nthn","room":"gonuts"}"#),
            },
            br#"n00cchat message0000002e{"message":"Hi","from":"nthn","room":"gonuts"}"#,
        ),
        (
            Message::Heartbeat {
                load: 2,
                time: 0x54d7de9a,
            },
            b"h000254d7de9a",
        ),
        (
            Message::ProtocolError {
                code: ProtocolErrorCode::UNSUPPORTED,
            },
            b"f00000001",
        ),
    ]
}

#[test]
fn every_type_encodes_to_the_reference_bytes_and_parses_back() {
    for (msg, wire) in samples() {
        let encoded = msg.to_bytes().unwrap();
        assert_eq!(&encoded[..], wire, "encoding {msg:?}");
        assert_eq!(msg.header().encoded_len() + msg.payload().len(), wire.len());
        let mut buf = BytesMut::from(wire);
        assert_eq!(parse(&mut buf, DEFAULT_MAX_PAYLOAD).unwrap(), msg);
        assert!(buf.is_empty(), "parse consumed exactly one message");
    }
}

#[test]
fn a_request_header_is_the_same_bytes_whatever_its_name_length() {
    // Framed inline in three pieces (`encode_request`), for every length a name can have.
    for len in [0, 1, 47, 48, 49, 300, MAX_NAME_LEN] {
        let op = "n".repeat(len);
        let mut buf = BytesMut::from(&b"before"[..]);
        let header = Header::SingleRequest {
            id: *b"00a1",
            name: &op,
        };
        header.encode(0x1f2, &mut buf).unwrap();
        assert_eq!(buf.len(), 6 + header.encoded_len());
        let expected = format!("beforer00a1{len:03x}{op}{:08x}", 0x1f2);
        assert_eq!(
            std::str::from_utf8(&buf).unwrap(),
            expected,
            "name of {len} bytes"
        );
    }
}

#[test]
fn upper_case_hex_is_read() {
    let mut buf = BytesMut::from(&b"R00010000001A"[..]);
    assert_eq!(
        parse(&mut buf, 100),
        Err(ParseError::Incomplete { needed: 13 + 26 })
    );
    let mut buf = BytesMut::from(&b"e0001000013880000000Bx"[..]);
    assert!(matches!(
        parse(&mut buf, 100),
        Err(ParseError::Incomplete { needed: 32 })
    ));
    let mut buf = BytesMut::from(&b"h00FF0000ABCD"[..]);
    assert_eq!(
        parse(&mut buf, 100).unwrap(),
        Message::Heartbeat {
            load: 0xff,
            time: 0xabcd
        }
    );
}

#[test]
fn request_ids_are_opaque_bytes() {
    let mut buf = BytesMut::from(&b"r\x00\x01\xfe\xff004echo000000011"[..]);
    let msg = parse(&mut buf, 100).unwrap();
    assert_eq!(
        msg,
        Message::SingleRequest {
            id: [0, 1, 0xfe, 0xff],
            name: name("echo"),
            payload: b(b"1")
        }
    );
    assert_eq!(msg.to_string(), r"r \x00\x01\xfe\xff echo 1 1");
}

#[test]
fn several_messages_in_one_buffer_parse_in_order() {
    let mut buf = BytesMut::from(
        &br#"ra001005sleep0000000a{"ms":200}ra002004echo00000006"fast"h000254d7de9a"#[..],
    );
    let kinds: Vec<_> = std::iter::from_fn(|| parse(&mut buf, 100).ok())
        .map(|m| m.message_type())
        .collect();
    assert_eq!(
        kinds,
        [
            MessageType::SingleRequest,
            MessageType::SingleRequest,
            MessageType::Heartbeat
        ]
    );
    assert!(buf.is_empty());
}

#[test]
fn truncated_input_fed_one_byte_at_a_time_is_incomplete_until_whole() {
    for (msg, wire) in samples() {
        let mut buf = BytesMut::new();
        for (i, &byte) in wire.iter().enumerate() {
            match parse(&mut buf, DEFAULT_MAX_PAYLOAD) {
                Err(ParseError::Incomplete { needed }) => {
                    assert!(needed > i && needed <= wire.len(), "needed {needed} at {i}")
                }
                other => panic!("{msg:?}: at byte {i} got {other:?}"),
            }
            assert_eq!(buf.len(), i, "nothing consumed while incomplete");
            buf.extend_from_slice(&[byte]);
        }
        assert_eq!(parse(&mut buf, DEFAULT_MAX_PAYLOAD).unwrap(), msg);
    }
}

fn invalid(input: &[u8]) -> Invalid {
    match parse(&mut BytesMut::from(input), 1000) {
        Err(ParseError::Invalid(e)) => e,
        other => panic!(
            "{:?}: expected invalid, got {other:?}",
            Preview::new(input, 64).to_string()
        ),
    }
}

#[test]
fn every_malformed_field_is_invalid_as_soon_as_it_arrives() {
    assert_eq!(invalid(b"x"), Invalid::UnknownType(b'x'));
    assert_eq!(invalid(b"x0001000000000"), Invalid::UnknownType(b'x'));
    assert_eq!(invalid(b"\0"), Invalid::UnknownType(0));
    // Conformance 15: a non-hex size, detected before the rest of the field arrives.
    assert_eq!(
        invalid(b"r0001004echo0000zz19"),
        Invalid::NotHex {
            field: "payload size",
            byte: b'z'
        }
    );
    assert_eq!(
        invalid(b"r0001004echo0000z"),
        Invalid::NotHex {
            field: "payload size",
            byte: b'z'
        }
    );
    assert_eq!(
        invalid(b"r00010g4"),
        Invalid::NotHex {
            field: "name length",
            byte: b'g'
        }
    );
    assert_eq!(
        invalid(b"s0001 "),
        Invalid::NotHex {
            field: "name length",
            byte: b' '
        }
    );
    assert_eq!(
        invalid(b"n0-"),
        Invalid::NotHex {
            field: "name length",
            byte: b'-'
        }
    );
    assert_eq!(
        invalid(b"p0001-"),
        Invalid::NotHex {
            field: "payload size",
            byte: b'-'
        }
    );
    assert_eq!(
        invalid(b"R0001+"),
        Invalid::NotHex {
            field: "payload size",
            byte: b'+'
        }
    );
    assert_eq!(
        invalid(b"S00010x"),
        Invalid::NotHex {
            field: "payload size",
            byte: b'x'
        }
    );
    assert_eq!(
        invalid(b"E0001 "),
        Invalid::NotHex {
            field: "payload size",
            byte: b' '
        }
    );
    assert_eq!(
        invalid(b"e0001q"),
        Invalid::NotHex {
            field: "retry wait",
            byte: b'q'
        }
    );
    assert_eq!(
        invalid(b"e000100000000q"),
        Invalid::NotHex {
            field: "payload size",
            byte: b'q'
        }
    );
    assert_eq!(
        invalid(b"h00g"),
        Invalid::NotHex {
            field: "heartbeat load",
            byte: b'g'
        }
    );
    assert_eq!(
        invalid(b"h0000000g"),
        Invalid::NotHex {
            field: "heartbeat time",
            byte: b'g'
        }
    );
    assert_eq!(
        invalid(b"f0000000z"),
        Invalid::NotHex {
            field: "protocol error code",
            byte: b'z'
        }
    );
    assert_eq!(invalid(b"r0001002\xff\xfe"), Invalid::NameNotUtf8);
    assert_eq!(invalid(b"n002\xc3("), Invalid::NameNotUtf8);
    assert_eq!(
        invalid(b"R0001000003e9"),
        Invalid::PayloadTooLarge {
            size: 1001,
            max: 1000
        }
    );
    assert_eq!(
        invalid(b"rabcd001aFFFFFFFF"),
        Invalid::PayloadTooLarge {
            size: u32::MAX,
            max: 1000
        }
    );
    let text = invalid(b"r0001004echo0000zz19").to_string();
    assert_eq!(text, "payload size has a non-hex byte \"z\"");
}

#[test]
fn a_huge_declared_payload_reserves_nothing_ahead_of_the_bytes() {
    let mut codec = Codec::new(u32::MAX);
    let mut buf = BytesMut::from(&b"Rabcdfffffff0hello"[..]);
    assert!(codec.decode(&mut buf).unwrap().is_none());
    assert!(
        buf.capacity() <= 128 * 1024,
        "capacity {} after a 4 GiB header",
        buf.capacity()
    );
}

#[test]
fn room_for_a_frame_grows_with_what_arrived_or_the_credit_earned() {
    let mut buf = BytesMut::from(&[b'x'; 100_000][..]);
    reserve_for(&mut buf, 10_000_000, 0);
    assert!(buf.capacity() <= 200_000 + 64, "{}", buf.capacity());
    let mut buf = BytesMut::from(&b"Rabcd00100000"[..]);
    reserve_for(&mut buf, 1_048_589, 2_000_000);
    assert!(buf.capacity() >= 1_048_589, "{}", buf.capacity());
}

#[test]
fn version_handshake() {
    assert_eq!(parse_version(b"01"), Ok(()));
    assert_eq!(parse_version(b"01r0001"), Ok(()));
    assert_eq!(parse_version(b"0"), Err(VersionError::Incomplete));
    assert_eq!(parse_version(b"02"), Err(VersionError::Unsupported(*b"02")));
    assert_eq!(parse_version(b"zz"), Err(VersionError::Unsupported(*b"zz")));
}

#[test]
fn encoding_refuses_what_the_wire_cannot_carry() {
    let long = "x".repeat(MAX_NAME_LEN + 1);
    let mut buf = BytesMut::new();
    assert_eq!(
        Header::Notification { name: &long }.encode(0, &mut buf),
        Err(EncodeError::NameTooLong(4096))
    );
    assert_eq!(
        Header::Heartbeat { load: 0, time: 0 }.encode(1, &mut buf),
        Err(EncodeError::PayloadTooLarge(1))
    );
    assert!(buf.is_empty(), "a refused header writes nothing");
    let max = "y".repeat(MAX_NAME_LEN);
    Header::Notification { name: &max }
        .encode(0, &mut buf)
        .unwrap();
    assert_eq!(&buf[..4], b"nfff");
    assert_eq!(Name::new(&long), Err(NameError::TooLong(4096)));
}

#[test]
fn codec_round_trips_and_reports_invalid_input() {
    let mut codec = Codec::new(64);
    let mut buf = BytesMut::new();
    for (msg, _) in samples() {
        codec.encode(&msg, &mut buf).unwrap();
    }
    for (msg, _) in samples() {
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(msg));
    }
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    let mut bad = BytesMut::from(&b"R000100000041"[..]);
    let err = codec.decode(&mut bad).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid message: payload of 65 bytes is over the limit of 64 bytes"
    );
}

#[test]
fn readable_form() {
    let lines: Vec<String> = samples().into_iter().map(|(m, _)| m.to_string()).collect();
    assert_eq!(lines[0], r#"r 0001 echo 25 {"message":"Hello World"}"#);
    assert_eq!(lines[6], r#"e 0001 wait=5000ms 20 "request rate limit""#);
    assert_eq!(lines[8], "h load=2 time=1423433370");
    assert_eq!(lines[9], "f unsupported protocol version (code 1)");
    let long = Message::SingleResult {
        id: *b"0001",
        payload: Bytes::from(vec![b'a'; 100]),
    };
    assert!(long.to_string().ends_with(&format!("{}…", "a".repeat(64))));
}

fn arb_id() -> impl Strategy<Value = RequestId> {
    any::<[u8; 4]>()
}

fn arb_name() -> impl Strategy<Value = Name> {
    prop_oneof![
        "[a-z.\\- ]{0,20}",
        any::<String>().prop_filter("fits hex3", |s| s.len() <= MAX_NAME_LEN),
    ]
    .prop_map(|s| Name::new(&s).unwrap())
}

fn arb_payload() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..300).prop_map(Bytes::from)
}

fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (arb_id(), arb_name(), arb_payload())
            .prop_map(|(id, name, payload)| Message::SingleRequest { id, name, payload }),
        (arb_id(), arb_name(), arb_payload())
            .prop_map(|(id, name, payload)| Message::StreamRequest { id, name, payload }),
        (arb_id(), arb_payload())
            .prop_map(|(id, payload)| Message::StreamRequestPart { id, payload }),
        (arb_id(), arb_payload()).prop_map(|(id, payload)| Message::SingleResult { id, payload }),
        (arb_id(), arb_payload()).prop_map(|(id, payload)| Message::StreamResult { id, payload }),
        (arb_id(), arb_payload()).prop_map(|(id, payload)| Message::ErrorResult { id, payload }),
        (arb_id(), any::<u32>(), arb_payload()).prop_map(|(id, wait_ms, payload)| {
            Message::RetryResult {
                id,
                wait_ms,
                payload,
            }
        }),
        (arb_name(), arb_payload())
            .prop_map(|(name, payload)| Message::Notification { name, payload }),
        (any::<u16>(), any::<u32>()).prop_map(|(load, time)| Message::Heartbeat { load, time }),
        any::<u32>().prop_map(|c| Message::ProtocolError {
            code: ProtocolErrorCode(c)
        }),
    ]
}

proptest! {
    #[test]
    fn encode_then_parse_round_trips(msgs in proptest::collection::vec(arb_message(), 1..8)) {
        let mut buf = BytesMut::new();
        for m in &msgs {
            m.encode(&mut buf).unwrap();
        }
        for m in &msgs {
            prop_assert_eq!(&parse(&mut buf, DEFAULT_MAX_PAYLOAD).unwrap(), m);
        }
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn split_anywhere_parses_the_same(msg in arb_message(), cut in 0usize..400) {
        let wire = msg.to_bytes().unwrap();
        let cut = cut.min(wire.len());
        let mut buf = BytesMut::from(&wire[..cut]);
        if cut < wire.len() {
            let incomplete = matches!(parse(&mut buf, DEFAULT_MAX_PAYLOAD), Err(ParseError::Incomplete { .. }));
            prop_assert!(incomplete);
        }
        buf.extend_from_slice(&wire[cut..]);
        prop_assert_eq!(parse(&mut buf, DEFAULT_MAX_PAYLOAD).unwrap(), msg);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(_msg) = parse(&mut buf, 1024) {}
    }
}

#[test]
fn request_headers_are_the_same_bytes_for_every_name_length() {
    for len in [0, 1, 9, 15, 16, 47, 48, 49, 255, 256, 4095] {
        let name: String = (0..len)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        for (header, kind) in [
            (
                Header::SingleRequest {
                    id: *b"0a_Z",
                    name: &name,
                },
                'r',
            ),
            (
                Header::StreamRequest {
                    id: *b"0a_Z",
                    name: &name,
                },
                's',
            ),
        ] {
            let mut dst = BytesMut::from(&b"before"[..]);
            header.encode(0x1234_abcd, &mut dst).unwrap();
            let expected = format!("before{kind}0a_Z{len:03x}{name}1234abcd");
            assert_eq!(dst, expected.as_bytes(), "name of {len} bytes");
            assert_eq!(header.encoded_len(), expected.len() - 6);
        }
    }
}
