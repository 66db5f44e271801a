//! What a read buffer costs the budgets, for as long as any of it is alive.
//!
//! A payload handed on is a slice of the read buffer it arrived in, and keeps all of that
//! buffer's memory alive. So the buffer is charged at the capacity it was allocated with,
//! once, by a [`Charge`] shared by everything that keeps a slice of it past its read: the
//! reader while the buffer is its own, and after that
//!
//! - a large payload itself: it is handed on as a [`Bytes`] that owns a share of the
//!   charge ([`Detached`]), so it stays charged wherever it goes (a handler, a caller,
//!   the write queue, the application);
//! - for a small payload, whoever queues or parks it (a handler that waits, a stream's
//!   chunk queue, the notification queue) through a [`Keep`];
//! - a small payload in a large buffer is copied out instead, and charged its own size:
//!   it must not keep the whole buffer alive.
//!
//! The last share dropped releases the charge. Nothing is charged twice: however many
//! slices a buffer has, it is charged once.

use std::sync::Arc;

use bytes::Bytes;

use super::{budget::Budgets, outbox::COPY_LIMIT};
use crate::wire::Name;

/// A payload at least this large is handed on owning a share of its buffer's charge: the
/// write queue sends payloads this large by reference rather than copying them, so they
/// may outlive everything else that holds their buffer. (Smaller ones are copied into
/// the write queue, and their holders keep the charge: see [`Keep`].)
const OWNS_CHARGE_FROM: usize = COPY_LIMIT;
/// A payload this small, in a buffer at least `COPY_FROM_BUFFER` large, is copied out of
/// it: a parked request of a few bytes must not keep (and be charged for) a large buffer.
const COPY_AT_MOST: usize = 256;
const COPY_FROM_BUFFER: usize = 64 * 1024;

/// Bytes held against a connection's budgets until this is dropped.
pub(super) struct Charge {
    budgets: Arc<Budgets>,
    bytes: usize,
}

impl Charge {
    /// Charges `bytes` held already (the caller holds them in `budgets`).
    pub(super) fn held(budgets: &Arc<Budgets>, bytes: usize) -> Self {
        Self {
            budgets: budgets.clone(),
            bytes,
        }
    }

    /// Ends the charge without releasing it: the caller holds its bytes from now on.
    pub(super) fn into_held(mut self) -> usize {
        std::mem::take(&mut self.bytes)
    }

    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budgets.release(self.bytes);
    }
}

/// What a holder that keeps a payload past its read keeps charged with it.
pub(super) enum Keep<'a> {
    /// Nothing: the payload owns its charge, or holds no buffer (it is empty or copied
    /// and charged with the copy).
    Nothing,
    /// The charge of the reader's buffer, which the payload is a slice of: a holder
    /// that keeps it takes a share ([`into_owned`](Self::into_owned)).
    Buffer(&'a Arc<Charge>),
    /// The payload's own copy.
    Own(Charge),
}

impl Keep<'_> {
    /// The share a holder keeps until it is done with the payload.
    pub(super) fn into_owned(self) -> Kept {
        match self {
            Self::Nothing => Kept::Nothing,
            Self::Buffer(charge) => Kept::Buffer(charge.clone()),
            Self::Own(charge) => Kept::Own(charge),
        }
    }
}

/// A [`Keep`] a holder owns (its fields are held for what dropping them does).
pub(super) enum Kept {
    Nothing,
    Buffer(Arc<Charge>),
    Own(Charge),
}

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Nothing => f.write_str("Nothing"),
            Self::Buffer(charge) => write!(f, "Buffer({} bytes)", charge.bytes),
            Self::Own(charge) => write!(f, "Own({} bytes)", charge.bytes),
        }
    }
}

/// A payload ready to be handed on, and what keeps it charged.
pub(super) struct Detached<'a> {
    pub(super) bytes: Bytes,
    pub(super) keep: Keep<'a>,
}

/// Hands on a message's `payload` and `name` (a slice of the buffer too, if
/// `name_is_slice`: the decoder may have taken a name it knew instead), split off a
/// buffer of `capacity` bytes charged by `charge`: a large payload owning a share of the
/// charge, a small one of a large buffer copied out with its name, the rest as they are
/// (their holders keep the charge).
#[inline]
pub(super) fn detach<'a>(
    payload: Bytes,
    name: Option<&mut Name>,
    name_is_slice: bool,
    charge: &'a Arc<Charge>,
    capacity: usize,
    budgets: &Arc<Budgets>,
) -> Detached<'a> {
    let len = payload.len();
    // The common case, inline: a payload handed on as it is.
    if len < OWNS_CHARGE_FROM && (len > COPY_AT_MOST || capacity < COPY_FROM_BUFFER) {
        let keep = if len > 0 || (name_is_slice && name.is_some()) {
            Keep::Buffer(charge)
        } else {
            Keep::Nothing
        };
        return Detached {
            bytes: payload,
            keep,
        };
    }
    detach_apart(payload, name.filter(|_| name_is_slice), charge, budgets)
}

/// A large payload, or a small one in a large buffer (see [`detach`]).
#[cold]
fn detach_apart<'a>(
    payload: Bytes,
    name: Option<&mut Name>,
    charge: &'a Arc<Charge>,
    budgets: &Arc<Budgets>,
) -> Detached<'a> {
    let len = payload.len();
    if len >= OWNS_CHARGE_FROM {
        if let Some(name) = name {
            // It would keep the buffer after the payload is gone.
            *name = Name::copy_of(name);
        }
        let bytes = Bytes::from_owner(Share {
            bytes: payload,
            _charge: charge.clone(),
        });
        return Detached {
            bytes,
            keep: Keep::Nothing,
        };
    }
    // Small, in a large buffer: copied out, with its name.
    let mut copied = len;
    if let Some(name) = name {
        *name = Name::copy_of(name);
        copied += name.as_str().len();
    }
    budgets.hold(copied);
    Detached {
        bytes: Bytes::copy_from_slice(&payload),
        keep: Keep::Own(Charge::held(budgets, copied)),
    }
}

/// A result for a caller, split off a buffer charged by `charge`: taken at once, so only
/// a large one, which the caller may keep, is handed on owning a share of the charge.
#[inline]
pub(super) fn result(payload: Bytes, charge: &Arc<Charge>) -> Bytes {
    if payload.len() < OWNS_CHARGE_FROM {
        return payload;
    }
    Bytes::from_owner(Share {
        bytes: payload,
        _charge: charge.clone(),
    })
}

/// A slice that owns a share of its buffer's charge.
struct Share {
    bytes: Bytes,
    _charge: Arc<Charge>,
}

impl AsRef<[u8]> for Share {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_is_charged_once_until_its_last_share_is_dropped() {
        let budgets = Arc::new(Budgets::new(1 << 30, None));
        let capacity = 128 * 1024;
        budgets.hold(capacity);
        let charge = Arc::new(Charge::held(&budgets, capacity));
        let buffer = Bytes::from(vec![7u8; capacity]);

        let detach = |bytes: Bytes| detach(bytes, None, false, &charge, capacity, &budgets);
        let large = detach(buffer.slice(0..OWNS_CHARGE_FROM));
        assert!(matches!(large.keep, Keep::Nothing), "it owns its share");
        let large = large.bytes;
        let small = detach(buffer.slice(0..1000));
        let kept = small.keep.into_owned();
        assert_eq!(budgets.held(), capacity, "slices are not charged again");

        let tiny = detach(buffer.slice(0..30));
        assert!(
            !std::ptr::eq(tiny.bytes.as_ptr(), buffer.as_ptr()),
            "copied"
        );
        assert_eq!(budgets.held(), capacity + 30, "and charged its own size");
        drop(tiny);

        drop(charge);
        drop(kept);
        assert_eq!(budgets.held(), capacity, "the large payload still holds it");
        assert_eq!(&large[..3], &[7, 7, 7]);
        drop(large);
        assert_eq!(budgets.held(), 0, "the last share released it");
    }

    #[test]
    fn a_small_payload_of_a_small_buffer_is_not_copied() {
        let budgets = Arc::new(Budgets::new(1 << 20, None));
        budgets.hold(8192);
        let charge = Arc::new(Charge::held(&budgets, 8192));
        let buffer = Bytes::from(vec![1u8; 8192]);
        let small = detach(buffer.slice(0..30), None, false, &charge, 8192, &budgets);
        assert_eq!(small.bytes.as_ptr(), buffer.as_ptr());
        assert!(matches!(small.keep, Keep::Buffer(_)));
        assert_eq!(budgets.held(), 8192);
    }

    #[test]
    fn a_message_that_keeps_only_its_name_keeps_the_buffer() {
        let budgets = Arc::new(Budgets::new(1 << 20, None));
        budgets.hold(8192);
        let charge = Arc::new(Charge::held(&budgets, 8192));
        let mut name = Name::from_static("wait").unwrap();
        let empty = detach(Bytes::new(), Some(&mut name), true, &charge, 8192, &budgets);
        assert!(matches!(empty.keep, Keep::Buffer(_)), "its name is a slice");
        let known = detach(
            Bytes::new(),
            Some(&mut name),
            false,
            &charge,
            8192,
            &budgets,
        );
        assert!(
            matches!(known.keep, Keep::Nothing),
            "a name the decoder knew"
        );
    }

    #[test]
    fn a_tiny_request_in_a_large_buffer_is_copied_with_its_name() {
        let budgets = Arc::new(Budgets::new(1 << 20, None));
        let capacity = COPY_FROM_BUFFER;
        budgets.hold(capacity);
        let charge = Arc::new(Charge::held(&budgets, capacity));
        let buffer = Bytes::from(vec![b'a'; capacity]);
        let mut name = Name::from_static("sleep").unwrap();
        let tiny = detach(
            buffer.slice(0..10),
            Some(&mut name),
            true,
            &charge,
            capacity,
            &budgets,
        );
        assert!(matches!(tiny.keep, Keep::Own(_)));
        assert_eq!(budgets.held(), capacity + 10 + 5, "the copies, charged");
        drop(tiny);
        assert_eq!(budgets.held(), capacity);
    }
}
