//! Our protocol extension: cancellation and deadlines across the wire (`EXTENSIONS.md`
//! is the contract). It travels as notifications with reserved names, which a plain
//! version-1 peer reads and ignores, and a side sends any of it only to a peer that
//! announced it: the dialling side announces right after its version, the accepting side
//! answers an announcement with its own. So a plain peer that dials us receives nothing
//! new at all, and one we dial receives one notification it ignores.

use std::{
    future::Future,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use rustc_hash::FxHashMap;
use tokio::{
    task::{AbortHandle, Id},
    time::Instant,
};

use super::{id_key, signal::Signal, Sock};
use crate::{
    sync::{lock, Mutex},
    wire::{Header, RequestId},
};

/// Names that start with this are ours: handlers cannot be registered for them.
pub const RESERVED_PREFIX: &str = "gotalk:";
/// The announcement: the payload lists what the sender speaks, separated by spaces.
const HELLO: &str = "gotalk:hello";
/// The caller gave up on a request: the payload is its ID.
const CANCEL: &str = "gotalk:cancel";
/// The next request with this ID has this long to run: `ID MILLISECONDS`.
const DEADLINE: &str = "gotalk:deadline";
/// What we speak.
const SPEAKS: &[u8] = b"cancel deadline";
/// Asks a peer that announced `describe` for its description (`crate::describe`).
pub(super) const DESCRIBE: &str = "gotalk:describe";
/// The largest WebSocket message a peer that announced `ws-stream` must take anywhere in
/// the stream (ours announce it only when their limit allows this much).
#[cfg(feature = "websocket")]
pub(crate) const BATCH_MAX: usize = 4096;

/// Whether the peer announced `ws-stream`: then the WebSocket under the connection may put
/// many Gotalk messages in one frame, where the reference gotalk.js needs a header and each
/// payload in messages of their own (PROTOCOL.md 4) and never announces it. Shared by the
/// connection, which reads the announcement, and the WebSocket, which frames.
#[derive(Clone, Debug, Default)]
pub(crate) struct PeerReadsStream(Arc<AtomicBool>);

impl PeerReadsStream {
    #[cfg(feature = "websocket")]
    pub(crate) fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    pub(crate) fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Whether a name is reserved for the extension.
pub(super) fn is_reserved(name: &str) -> bool {
    name.starts_with(RESERVED_PREFIX)
}

/// A connection's side of the extension.
pub(super) struct Extension {
    /// This side speaks it (see `Config::extensions`): else reserved names are ignored.
    enabled: bool,
    /// The peer announced `cancel`: we tell it when we give up on a request.
    peer_cancels: AtomicBool,
    /// The peer announced `deadline`: our calls' timeouts go with them.
    peer_takes_deadlines: AtomicBool,
    /// The peer announced `describe`: it answers [`DESCRIBE`].
    peer_describes: AtomicBool,
    /// The peer's announcement has come.
    peer_announced: Signal,
    /// We answer [`DESCRIBE`] (`Config::describe`), and announce `describe`.
    describes: bool,
    /// We announced (first, or in answer).
    announced: AtomicBool,
    /// The connection runs over a WebSocket of ours that reads messages as a stream: we
    /// announce `ws-stream`, and tell the WebSocket when the peer does.
    over_ws: Option<PeerReadsStream>,
    /// The handlers of the peer's requests that run on tasks of their own, by request
    /// ID (only while the peer cancels): what a cancel aborts.
    running: Mutex<FxHashMap<u32, (Id, AbortHandle)>>,
}

/// An extension message from the peer, read.
pub(super) enum Received {
    /// The peer's announcement (to answer with [`announce`], if we had not announced).
    Hello,
    /// Cancel the peer's request with this ID.
    Cancel(RequestId),
    /// The next request with this ID has this long.
    Deadline(RequestId, Duration),
    /// A reserved name we do not know, or a payload that does not parse: ignored.
    Unknown,
}

impl Extension {
    pub(super) fn new(enabled: bool, over_ws: Option<PeerReadsStream>) -> Self {
        Self {
            enabled,
            peer_cancels: AtomicBool::new(false),
            peer_takes_deadlines: AtomicBool::new(false),
            peer_describes: AtomicBool::new(false),
            peer_announced: Signal::default(),
            describes: false,
            announced: AtomicBool::new(false),
            over_ws,
            running: Mutex::default(),
        }
    }

    /// The extension, answering [`DESCRIBE`] if `on` (and it is enabled).
    pub(super) fn describing(mut self, on: bool) -> Self {
        self.describes = on && self.enabled;
        self
    }

    /// Whether this side answers [`DESCRIBE`].
    pub(super) fn describes(&self) -> bool {
        self.describes
    }

    /// What we announce: every word we speak on this connection.
    fn speaks(&self) -> &'static [u8] {
        match (self.over_ws.is_some(), self.describes) {
            (false, false) => SPEAKS,
            (true, false) => b"cancel deadline ws-stream",
            (false, true) => b"cancel deadline describe",
            (true, true) => b"cancel deadline ws-stream describe",
        }
    }

    /// Whether the peer describes itself: it announced `describe`. A peer's announcement
    /// is not answered, and a peer that does not speak the extension never sends one, so
    /// this waits for it at most `wait`.
    pub(super) async fn peer_describes(&self, wait: Duration) -> bool {
        if !self.enabled {
            return false;
        }
        let _ = tokio::time::timeout(wait, self.peer_announced.wait()).await;
        self.peer_describes.load(Ordering::SeqCst)
    }

    /// Whether this side announces now: it speaks the extension and has not announced.
    fn may_announce(&self) -> bool {
        self.enabled && !self.announced.swap(true, Ordering::SeqCst)
    }

    /// Reads an extension message (`name` is reserved) and does what the peer asks that
    /// concerns the extension itself (the reader does the rest).
    pub(super) fn receive(&self, name: &str, payload: &[u8]) -> Received {
        if !self.enabled {
            return Received::Unknown;
        }
        match name {
            HELLO => {
                for word in payload.split(|&b| b == b' ') {
                    match word {
                        b"cancel" => self.peer_cancels.store(true, Ordering::SeqCst),
                        b"deadline" => self.peer_takes_deadlines.store(true, Ordering::SeqCst),
                        b"ws-stream" => {
                            if let Some(flag) = &self.over_ws {
                                flag.set();
                            }
                        }
                        b"describe" => self.peer_describes.store(true, Ordering::SeqCst),
                        _ => {}
                    }
                }
                self.peer_announced.set();
                Received::Hello
            }
            CANCEL => match <RequestId>::try_from(payload) {
                Ok(id) => {
                    self.abort(id);
                    Received::Cancel(id)
                }
                Err(_) => Received::Unknown,
            },
            DEADLINE => parse_deadline(payload).map_or(Received::Unknown, |(id, within)| {
                Received::Deadline(id, within)
            }),
            _ => Received::Unknown,
        }
    }

    /// Whether the peer takes our calls' deadlines.
    pub(super) fn peer_takes_deadlines(&self) -> bool {
        self.peer_takes_deadlines.load(Ordering::Relaxed)
    }

    /// Aborts the running handler of the peer's request `id`, if any.
    fn abort(&self, id: RequestId) {
        if let Some((_, handle)) = lock(&self.running).remove(&id_key(id)) {
            handle.abort();
        }
    }

    /// The task of a handler has ended: it is forgotten, unless its ID was taken by a
    /// newer request since.
    fn ended(&self, id: RequestId, task: Id) {
        let mut running = lock(&self.running);
        if running.get(&id_key(id)).is_some_and(|(t, _)| *t == task) {
            running.remove(&id_key(id));
        }
    }
}

/// Announces what we speak, once per connection: right after the version when this side
/// dials, else in answer to the peer's announcement.
pub(super) fn announce(sock: &Sock) {
    let ext = sock.extension();
    if ext.may_announce() {
        sock.send_now(Header::Notification { name: HELLO }, ext.speaks());
    }
}

/// Runs the rest of the peer's request `id` on a task of its own: dropped when its
/// `deadline` passes, and aborted when the peer cancels the request (`ext` is the
/// connection's extension).
pub(super) fn spawn(
    ext: &Arc<Extension>,
    id: RequestId,
    deadline: Option<Instant>,
    work: impl Future<Output = ()> + Send + 'static,
) {
    let work = async move {
        match deadline {
            // Nobody waits for a result past its deadline: nothing more is sent.
            Some(deadline) => {
                let _ = tokio::time::timeout_at(deadline, work).await;
            }
            None => work.await,
        }
    };
    if !ext.peer_cancels.load(Ordering::Relaxed) {
        tokio::spawn(work);
        return;
    }
    // Registered under the lock the task takes when it ends, so that it cannot end first.
    let mut running = lock(&ext.running);
    let task = tokio::spawn({
        let ext = ext.clone();
        async move {
            work.await;
            ext.ended(id, tokio::task::id());
        }
    });
    running.insert(id_key(id), (task.id(), task.abort_handle()));
}

/// Tells the peer that we gave up on our request `id` (if it listens).
pub(super) fn send_cancel(sock: &Sock, id: RequestId) {
    if sock.extension().peer_cancels.load(Ordering::Relaxed) {
        sock.send_now(Header::Notification { name: CANCEL }, &id);
    }
}

/// Tells the peer that our request `id`, sent next, has `within` to run (if it listens).
pub(super) fn send_deadline(sock: &Sock, id: RequestId, within: Duration) {
    if sock.extension().peer_takes_deadlines() {
        let ms = within.as_millis().min(u128::from(u64::MAX)) as u64;
        let (payload, len) = deadline_payload(id, ms);
        sock.send_now(Header::Notification { name: DEADLINE }, &payload[..len]);
    }
}

/// `ID MILLISECONDS` and its length, without allocating.
fn deadline_payload(id: RequestId, mut ms: u64) -> ([u8; 25], usize) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (ms % 10) as u8;
        ms /= 10;
        if ms == 0 {
            break;
        }
    }
    let len = 5 + digits.len() - start;
    let mut payload = [0u8; 25];
    payload[..4].copy_from_slice(&id);
    payload[4] = b' ';
    payload[5..len].copy_from_slice(&digits[start..]);
    (payload, len)
}

fn parse_deadline(payload: &[u8]) -> Option<(RequestId, Duration)> {
    let (id, rest) = payload.split_first_chunk::<4>()?;
    let digits = std::str::from_utf8(rest.strip_prefix(b" ")?).ok()?;
    let ms: u64 = digits.parse().ok()?;
    Some((*id, Duration::from_millis(ms)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_read_back() {
        for ms in [0, 7, 1500, u64::MAX] {
            let (payload, len) = deadline_payload(*b"0a0Z", ms);
            assert_eq!(
                parse_deadline(&payload[..len]),
                Some((*b"0a0Z", Duration::from_millis(ms)))
            );
        }
        assert_eq!(&deadline_payload(*b"0001", 5000).0[..9], b"0001 5000");
        assert_eq!(
            parse_deadline(b"0a0Z 1500"),
            Some((*b"0a0Z", Duration::from_millis(1500)))
        );
        assert_eq!(parse_deadline(b"0a0Z1500"), None);
        assert_eq!(parse_deadline(b"0a0Z "), None);
        assert_eq!(parse_deadline(b"0a0Z -1"), None);
        assert_eq!(parse_deadline(b"0a"), None);
    }

    #[test]
    fn an_announcement_says_what_the_peer_takes_and_is_answered_once() {
        let ext = Extension::new(true, None);
        assert!(!ext.peer_takes_deadlines());
        assert!(matches!(
            ext.receive(HELLO, b"deadline future"),
            Received::Hello
        ));
        assert!(ext.peer_takes_deadlines());
        assert!(!ext.peer_cancels.load(Ordering::SeqCst), "not announced");
        assert!(ext.may_announce(), "answered");
        assert!(!ext.may_announce(), "once");
    }

    #[test]
    fn a_side_that_does_not_speak_it_ignores_it_and_announces_nothing() {
        let ext = Extension::new(false, None);
        assert!(matches!(ext.receive(HELLO, SPEAKS), Received::Unknown));
        assert!(matches!(ext.receive(CANCEL, b"0001"), Received::Unknown));
        assert!(!ext.peer_takes_deadlines());
        assert!(!ext.may_announce());
    }

    #[test]
    fn messages_that_do_not_parse_are_ignored() {
        let ext = Extension::new(true, None);
        assert!(matches!(ext.receive(CANCEL, b"001"), Received::Unknown));
        assert!(matches!(
            ext.receive(DEADLINE, b"0001 soon"),
            Received::Unknown
        ));
        assert!(matches!(
            ext.receive("gotalk:later", b""),
            Received::Unknown
        ));
        assert!(matches!(
            ext.receive(DEADLINE, b"0001 250"),
            Received::Deadline(id, within) if id == *b"0001" && within == Duration::from_millis(250)
        ));
    }

    #[tokio::test]
    async fn a_cancel_aborts_the_running_handler_of_that_request_only() {
        let ext = Arc::new(Extension::new(true, None));
        ext.receive(HELLO, b"cancel");
        let (tx1, rx1) = tokio::sync::oneshot::channel::<()>();
        let (tx2, rx2) = tokio::sync::oneshot::channel::<()>();
        spawn(&ext, *b"0001", None, async move {
            let _keep = tx1;
            std::future::pending::<()>().await
        });
        spawn(&ext, *b"0002", None, async move {
            let _keep = tx2;
            std::future::pending::<()>().await
        });
        assert!(matches!(ext.receive(CANCEL, b"0001"), Received::Cancel(_)));
        assert!(rx1.await.is_err(), "aborted: its future was dropped");
        let still = tokio::time::timeout(Duration::from_millis(50), rx2).await;
        assert!(still.is_err(), "the other one still runs");
    }

    #[test]
    fn reserved_names() {
        assert!(is_reserved("gotalk:cancel"));
        assert!(is_reserved("gotalk:anything"));
        assert!(!is_reserved("gotalk"));
        assert!(!is_reserved("greet"));
    }
}
