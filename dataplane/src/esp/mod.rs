//! ESP (RFC 4303) in tunnel mode with AES-GCM (RFC 4106): encapsulation, decapsulation,
//! sequence numbers and anti-replay.

pub mod crypto;
pub mod cryptodev;
pub mod decap;
pub mod encap;
pub mod replay;

pub use decap::{decap, DecapError};
pub use encap::{encap, EncapError};

use crate::wire::esp::IV_LEN;
use crypto::{nonce, AeadOps, Cipher, SALT_LEN};

/// The AEAD work one packet needs once `encap::prepare` or `decap::prepare` has readied it: the
/// crypto itself runs later, batched per SA (as librte_ipsec's prepare/process). Kept small,
/// since a worker parks a burst of them: nonce and AAD are derived when the job is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prepared {
    /// Where text || ICV starts in the buffer (just after the 8-byte IV), and its length.
    pub offset: u16,
    pub len: u16,
    /// The full (64-bit) sequence number.
    pub seq: u64,
}

/// What an SA brings to each of its packets' AEAD jobs.
pub struct Keying<'a> {
    pub cipher: &'a Cipher,
    pub salt: [u8; SALT_LEN],
    pub spi: u32,
    pub esn: bool,
}

impl Prepared {
    /// Adds the AEAD operation over this packet's bytes to `ops`: nonce from the SA's salt and
    /// the IV in the packet, AAD from the SPI and sequence number. Returns its index; `None`
    /// (nothing added) if the buffer no longer holds them or `ops` is full.
    #[inline(always)]
    pub fn push<'a>(
        &self,
        data: &'a mut [u8],
        k: &Keying<'_>,
        ops: &mut AeadOps<'a>,
    ) -> Option<usize> {
        let off = usize::from(self.offset);
        let iv: &[u8; IV_LEN] = data.get(off.checked_sub(IV_LEN)?..off)?.try_into().ok()?;
        let nonce = nonce(&k.salt, iv);
        let (aad, aad_len) = aad(k.spi, self.seq, k.esn);
        let d = data.get_mut(off..off + usize::from(self.len))?;
        ops.push(d, &nonce, &aad, aad_len)
    }
}

/// Additional authenticated data: SPI || seq (|| with ESN: SPI || seq high || seq low).
/// Returns the buffer and the length used.
#[inline]
pub fn aad(spi: u32, seq: u64, esn: bool) -> ([u8; 12], usize) {
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
