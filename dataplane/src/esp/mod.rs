//! ESP (RFC 4303) in tunnel mode with AES-GCM (RFC 4106): encapsulation, decapsulation,
//! sequence numbers and anti-replay.

pub mod crypto;
pub mod cryptodev;
pub mod decap;
pub mod encap;
pub mod replay;

pub use decap::{decap, DecapError};
pub use encap::{encap, EncapError};

use crypto::{Job, MAX_AAD_LEN, NONCE_LEN};

/// The AEAD work one packet needs once `encap::prepare` or `decap::prepare` has readied it: the
/// crypto itself runs later, batched per SA (as librte_ipsec's prepare/process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prepared {
    /// Where text || ICV starts in the buffer, and its length.
    pub offset: usize,
    pub len: usize,
    pub nonce: [u8; NONCE_LEN],
    pub aad: ([u8; MAX_AAD_LEN], usize),
    /// The full (64-bit) sequence number.
    pub seq: u64,
}

impl Prepared {
    /// The job over this packet's bytes; `None` if the buffer no longer holds them.
    #[inline]
    pub fn job<'a>(&self, data: &'a mut [u8]) -> Option<Job<'a>> {
        let d = data.get_mut(self.offset..self.offset.checked_add(self.len)?)?;
        Some(Job::new(self.nonce, self.aad, d))
    }
}

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
