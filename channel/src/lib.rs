//! What travels between the control process and the dataplane: every change to a running
//! dataplane as one plain-data message ([`Change`]), with no pointer, no shared object and no
//! DPDK type in it, so that it can cross a process boundary as bytes. Whoever sends a change
//! (the dataplane's own JSON loader in standalone mode, or the control process), the
//! dataplane's main lcore applies it the same way.
//!
//! Key material ([`KeyMaterial`]) is wiped from memory when the message holding it is dropped,
//! which the dataplane does as soon as it has built the SA's cipher.

//!
//! Between two processes the changes travel over a shared-memory [`segment`]: fixed-slot
//! single-producer single-consumer [`ring`]s of [`message`]s, and a stats region.

pub mod change;
pub mod message;
pub mod ring;
pub mod segment;
pub mod stats;
pub mod vocabulary;

pub use change::{
    policy_families, Change, ClearScope, InboundSaSpec, InterfaceSpec, ObjectKey, OutboundSaSpec,
    PolicyAction, PolicySpec, RouteVia, SaSpec, TunnelSpec,
};
pub use message::{Command, Datagram, Event, RecvError, SendError};
pub use segment::{Grant, Layout, RingId, Segment, SegmentError};
pub use vocabulary::{
    Algorithm, DfPolicy, Direction, Dscp, KeyMaterial, KeyMaterialError, Lifetime, Mac, Name,
    NameError, Prefixes, Prefixes6, DEFAULT_REPLAY_WINDOW, MAX_KEYMAT_LEN, MAX_NAME_LEN,
    MAX_REPLAY_WINDOW, MAX_SELECTORS, NATT_PORT, SALT_LEN,
};
