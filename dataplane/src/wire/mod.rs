//! Zero-copy, checked views over packet headers, and plain `Repr`s to build them.
//!
//! Modelled on smoltcp's `wire`: `X::new_checked(buf)` validates lengths once, after which
//! the accessors cannot go out of bounds; nothing here panics on any input.

pub mod arp;
pub mod checksum;
pub mod esp;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod udp;

/// Why a header could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("truncated")]
    Truncated,
    #[error("malformed header")]
    Malformed,
    #[error("bad checksum")]
    Checksum,
}

pub type Result<T> = core::result::Result<T, WireError>;

#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
