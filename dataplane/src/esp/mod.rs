//! ESP (RFC 4303) in tunnel mode with AES-GCM (RFC 4106): encapsulation, decapsulation,
//! sequence numbers and anti-replay.

pub mod crypto;
pub mod decap;
pub mod encap;
pub mod replay;

pub use decap::{decap, DecapError};
pub use encap::{encap, EncapError};

/// Additional authenticated data: SPI || seq (|| with ESN: SPI || seq high || seq low).
/// Returns the buffer and the length used.
#[inline]
pub(crate) fn aad(spi: u32, seq: u64, esn: bool) -> ([u8; 12], usize) {
    let mut a = [0u8; 12];
    a[..4].copy_from_slice(&spi.to_be_bytes());
    if esn {
        a[4..12].copy_from_slice(&seq.to_be_bytes());
        (a, 12)
    } else {
        a[4..8].copy_from_slice(&(seq as u32).to_be_bytes());
        (a, 8)
    }
}

#[cfg(test)]
mod tests;
