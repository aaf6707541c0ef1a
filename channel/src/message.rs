//! The messages on the rings, and how they are written into a slot and read out of one
//! (postcard, a compact serde format: no pointer and no length beyond the slot's).

use crate::change::Change;
use crate::ring::RingError;
use crate::segment::{Rx, Tx};
use crate::vocabulary::Name;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::net::IpAddr;

/// Control -> dataplane. (One lives at a time, on its way through: not worth a box.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Command {
    /// A control process attached (its pid): the dataplane answers `Welcome`.
    Hello { pid: u32 },
    /// A change, answered by `Applied` once every worker has it, or `Refused`.
    Change { id: u64, change: Change },
    /// A resync starts: every object the dataplane holds is marked stale; each `Change` that
    /// sets it again (identical ones change nothing) clears the mark.
    SyncBegin { id: u64 },
    /// The resync ends: what is still marked stale is deleted. Answered by `SyncDone`.
    SyncEnd { id: u64 },
}

/// Why an SA reports itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SaEvent {
    SoftLimit,
    HardLimit,
    SeqNearExhaustion,
}

/// A bounded error text (events have small slots).
pub type ErrorText = arrayvec::ArrayString<200>;

/// Dataplane -> control.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// Answer to `Hello`: which start of the dataplane this is.
    Welcome { generation: u64, pid: u32 },
    /// Change `id` is in force on every worker (`changed` false: it was already so).
    Applied {
        id: u64,
        generation: u64,
        changed: bool,
    },
    /// Change `id` was refused; nothing of it was applied.
    Refused { id: u64, error: ErrorText },
    /// A resync ended; `deleted` stale objects were removed.
    SyncDone { id: u64, deleted: u32 },
    /// A command slot held no message this dataplane understands (counted, skipped).
    Malformed { error: ErrorText },
    Sa {
        spi: u32,
        direction: crate::vocabulary::Direction,
        tunnel: Option<Name>,
        event: SaEvent,
    },
    /// Traffic for a tunnel that has no outbound SA (IKE's ACQUIRE).
    Acquire { tunnel: Name },
    /// Nothing has arrived on inbound SA `spi` for `seconds` (its `idle_after`): time for a
    /// liveness check. Once, until traffic comes again.
    Idle {
        spi: u32,
        tunnel: Name,
        seconds: u32,
    },
}

/// A datagram for the gateway itself (IKE on UDP 500, or on 4500 after its zero non-ESP
/// marker, which is removed), with where it came from: IPv4 or IPv6, both addresses of one
/// family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Datagram<'a> {
    pub port: u16,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    #[serde(borrow)]
    pub payload: &'a [u8],
}

/// Error of a typed send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Ring(#[from] RingError),
    #[error("message does not encode into a slot: {0}")]
    Encode(String),
}

/// Error of a typed receive: the slot was skipped (and zeroed); the ring goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    #[error(transparent)]
    Ring(#[from] RingError),
    #[error("{0}")]
    Slot(#[from] crate::ring::BadSlot),
    #[error("undecodable message: {0}")]
    Decode(String),
}

impl Tx {
    /// Encodes `msg` straight into the next slot (no copy of it elsewhere: key material is
    /// only ever in the sender's value and in the slot).
    pub fn send<T: Serialize>(&mut self, msg: &T) -> Result<(), SendError> {
        self.ring
            .push_with(|slot| {
                postcard::to_slice(msg, slot)
                    .map(|used| used.len())
                    .map_err(|e| e.to_string())
            })?
            .map_err(SendError::Encode)
    }
}

impl Rx {
    /// The next message, if any. The slot is zeroed once it is decoded.
    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<Option<T>, RecvError> {
        match self
            .ring
            .pop_with(|b| postcard::from_bytes::<T>(b).map_err(|e| e.to_string()))?
        {
            None => Ok(None),
            Some(Err(bad)) => Err(bad.into()),
            Some(Ok(Err(e))) => Err(RecvError::Decode(e)),
            Some(Ok(Ok(m))) => Ok(Some(m)),
        }
    }

    /// Hands the next message's bytes, borrowed from its slot, to `read` (for datagrams,
    /// which are not copied twice); the slot is zeroed when `read` returns.
    pub fn recv_with<R>(
        &mut self,
        read: impl for<'a> FnOnce(Result<Datagram<'a>, String>) -> R,
    ) -> Result<Option<R>, RecvError> {
        match self.ring.pop_with(|b| {
            read(postcard::from_bytes::<Datagram<'_>>(b).map_err(|e| e.to_string()))
        })? {
            None => Ok(None),
            Some(Err(bad)) => Err(bad.into()),
            Some(Ok(r)) => Ok(Some(r)),
        }
    }
}

/// `s` cut to an `ErrorText` (on a character boundary).
pub fn error_text(s: &str) -> ErrorText {
    let mut t = ErrorText::new();
    for c in s.chars() {
        if t.try_push(c).is_err() {
            break;
        }
    }
    t
}
