//! Replays every transcript in `tests/conformance/` (captured from the reference Go
//! implementation; a copy of `shared/conformance/`) against our server over real TCP,
//! byte for byte, with the deliberate differences that `conformance/README.md` lists.

#[path = "../../examples/conformance_ops.rs"]
mod conformance_ops;

use std::{net::SocketAddr, path::Path, time::Duration};

use bytes::BytesMut;
use gotalk::{
    wire::{self, Message, Preview},
    Config, Server,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::timeout,
};

/// One line of a transcript.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Send(Vec<u8>),
    Expect(Vec<u8>),
    Closed,
}

fn unescape(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1)) {
            (b'\\', Some(b'\\')) => {
                out.push(b'\\');
                i += 2;
            }
            (b'\\', Some(b'x')) => {
                let hex = std::str::from_utf8(&bytes[i + 2..i + 4]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn load(path: &Path) -> Vec<Step> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|line| {
            if let Some(rest) = line.strip_prefix("> ") {
                Some(Step::Send(unescape(rest)))
            } else if let Some(rest) = line.strip_prefix("<") {
                Some(Step::Expect(unescape(
                    rest.strip_prefix(' ').unwrap_or(rest),
                )))
            } else if line == "closed" || line == "reset" {
                Some(Step::Closed)
            } else {
                None
            }
        })
        .collect()
}

/// The steps we must follow instead of the reference's, where the README says we do
/// better (13, 15, 16, 18).
fn ours(name: &str, mut steps: Vec<Step>) -> Vec<Step> {
    let echo_still_works = [
        Step::Send(b"r0f01004echo000000011".to_vec()),
        Step::Expect(b"R0f01000000011".to_vec()),
    ];
    match name {
        // Bad version: we send protocol error 1 (after our own 01), then close.
        "13-bad-version.txt" => steps.insert(2, Step::Expect(b"f00000001".to_vec())),
        // Non-hex size: protocol error 2, then close (the reference is silent).
        "15-non-hex-size.txt" => steps[3] = Step::Expect(b"f00000002".to_vec()),
        // Part for an unknown stream: protocol error 2, then close.
        "16-part-for-unknown-stream.txt" => steps.insert(3, Step::Expect(b"f00000002".to_vec())),
        // Stream not allowed: the parts are discarded and the connection stays open.
        "18-stream-not-allowed.txt" => {
            assert_eq!(steps.pop(), Some(Step::Closed));
            steps.extend(echo_still_works);
        }
        _ => {}
    }
    steps
}

fn parse_all(bytes: &[u8]) -> Vec<Message> {
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while !buf.is_empty() {
        out.push(wire::parse(&mut buf, u32::MAX).expect("transcript message"));
    }
    out
}

/// What may differ from the reference's bytes: in 11 the request ID our server picks
/// for its own request, in 17 the random retry wait, in 07 the order of results.
#[derive(Default)]
struct Leeway {
    /// The reference's ID for the server's own request → ours.
    id_map: Option<([u8; 4], [u8; 4])>,
}

impl Leeway {
    fn check(&mut self, name: &str, expected: &[u8], got: &[u8]) {
        let show = |b: &[u8]| Preview::new(b, 200).to_string();
        let exact = !matches!(
            name,
            "07-pipelined.txt"
                | "11-server-calls-back.txt"
                | "17-retry-result.txt"
                | "19-bad-json-input.txt"
        );
        if exact || expected == wire::VERSION {
            assert_eq!(show(got), show(expected), "{name}: bytes differ");
            return;
        }
        let mut want = parse_all(expected);
        let mut have = parse_all(got);
        for (w, h) in want.iter_mut().zip(have.iter_mut()) {
            match (w, h) {
                (
                    Message::SingleRequest { id: wid, .. },
                    Message::SingleRequest { id: hid, .. },
                ) => {
                    self.id_map = Some((*wid, *hid));
                    *hid = *wid;
                }
                // 19: our text for undecodable input may say more than the reference's.
                (
                    Message::ErrorResult { payload: wp, .. },
                    Message::ErrorResult { payload: hp, .. },
                ) if name == "19-bad-json-input.txt" => {
                    assert!(!hp.is_empty(), "{name}: empty error text");
                    *hp = wp.clone();
                }
                (
                    Message::RetryResult { wait_ms: ww, .. },
                    Message::RetryResult { wait_ms: hw, .. },
                ) => {
                    assert!(
                        (100..=200).contains(hw),
                        "{name}: retry wait {hw} ms outside 100..=200"
                    );
                    *hw = *ww;
                }
                _ => {}
            }
        }
        if name == "07-pipelined.txt" {
            want.sort_by_key(|m| m.to_bytes().unwrap());
            have.sort_by_key(|m| m.to_bytes().unwrap());
        }
        assert_eq!(have, want, "{name}: messages differ: got {}", show(got));
    }

    fn rewrite(&self, bytes: &[u8]) -> Vec<u8> {
        let Some((theirs, ours)) = self.id_map else {
            return bytes.to_vec();
        };
        let mut out = bytes.to_vec();
        if out.len() >= 5 && out[1..5] == theirs {
            out[1..5].copy_from_slice(&ours);
        }
        out
    }
}

/// Reads as many messages as `expected` holds (the version counts as one), whatever
/// their lengths: where we may differ in text, our bytes may be more or fewer.
async fn read_like(stream: &mut TcpStream, expected: &[u8]) -> std::io::Result<Vec<u8>> {
    if expected == wire::VERSION || expected.is_empty() {
        let mut got = vec![0; expected.len()];
        stream.read_exact(&mut got).await?;
        return Ok(got);
    }
    let count = parse_all(expected).len();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    let mut parsed = 0;
    while parsed < count {
        match wire::parse(&mut buf.clone(), u32::MAX) {
            Ok(msg) => {
                let len = msg.to_bytes().unwrap().len();
                got.extend_from_slice(&buf.split_to(len));
                parsed += 1;
            }
            Err(_) => {
                if stream.read_buf(&mut buf).await? == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
            }
        }
    }
    assert!(
        buf.is_empty(),
        "more bytes than expected: {:?}",
        Preview::new(&buf, 100).to_string()
    );
    Ok(got)
}

async fn replay(name: &str, steps: &[Step], addr: SocketAddr) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut leeway = Leeway::default();
    for step in steps {
        match step {
            Step::Send(bytes) => stream.write_all(&leeway.rewrite(bytes)).await.unwrap(),
            Step::Expect(expected) => {
                let got = timeout(Duration::from_secs(5), read_like(&mut stream, expected))
                    .await
                    .unwrap_or_else(|_| {
                        panic!(
                            "{name}: timed out waiting for {:?}",
                            Preview::new(expected, 100).to_string()
                        )
                    })
                    .unwrap_or_else(|e| {
                        panic!(
                            "{name}: {e} waiting for {:?}",
                            Preview::new(expected, 100).to_string()
                        )
                    });
                leeway.check(name, expected, &got);
            }
            Step::Closed => {
                let mut rest = Vec::new();
                let read = timeout(Duration::from_secs(5), stream.read_to_end(&mut rest))
                    .await
                    .unwrap_or_else(|_| panic!("{name}: connection still open"));
                // A close or a reset both end the conversation; nothing else may come.
                if let Err(e) = read {
                    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{name}");
                }
                assert!(
                    rest.is_empty(),
                    "{name}: unexpected bytes {:?}",
                    Preview::new(&rest, 100).to_string()
                );
            }
        }
    }
}

#[tokio::test]
async fn every_transcript_replays_against_our_server() {
    let config = Config::accepting().handlers(conformance_ops::handlers());
    let default = Server::new(config.clone())
        .listen_tcp("127.0.0.1:0")
        .await
        .unwrap();
    let limited = Server::new(config.limits(conformance_ops::limited()))
        .listen_tcp("127.0.0.1:0")
        .await
        .unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 20, "all twenty transcripts are there");
    let mut replays = Vec::new();
    for path in files {
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let steps = ours(&name, load(&path));
        let addr = if name.starts_with("17-") || name.starts_with("18-") {
            limited.local_addr()
        } else {
            default.local_addr()
        };
        replays.push(tokio::spawn(
            async move { replay(&name, &steps, addr).await },
        ));
    }
    for r in replays {
        r.await.unwrap();
    }
}

#[test]
fn the_vendored_transcripts_match_shared_when_present() {
    let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance");
    let Ok(entries) = std::fs::read_dir(&shared) else {
        return; // Not beside this checkout: the vendored copy stands alone.
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let copy = ours.join(path.file_name().unwrap());
        assert_eq!(
            std::fs::read(&path).unwrap(),
            std::fs::read(&copy).unwrap_or_default(),
            "{} differs from shared/; copy it again",
            copy.display()
        );
    }
}
