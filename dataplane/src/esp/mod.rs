//! ESP (RFC 4303) in tunnel mode with AES-GCM (RFC 4106): encapsulation, decapsulation, the
//! outer headers, sequence numbers and anti-replay. Each packet is first *prepared*
//! (`encap::prepare`, `decap::prepare`: headers, sequence number, trailer), its AEAD job left
//! to run later, batched per SA (as librte_ipsec's prepare/process); `run_one` runs one job
//! at once.

pub mod crypto;
pub mod decap;
pub mod encap;
pub mod outer;
pub mod replay;

pub use decap::{decap, DecapError};
pub use encap::{encap, EncapError};

use crate::sa::SaCrypto;
use crate::wire::esp::IV_LEN;
use crypto::{nonce, Aead, AeadOps, MAX_AAD_LEN};

/// The AEAD work one packet needs once `encap::prepare` or `decap::prepare` has readied it.
/// Kept small, since a worker parks a burst of them: nonce and AAD are derived when the job is
/// built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prepared {
    /// Where text || ICV starts in the buffer (just after the 8-byte IV), and its length.
    pub offset: u16,
    pub len: u16,
    /// The full (64-bit) sequence number.
    pub seq: u64,
}

impl Prepared {
    /// Adds the AEAD operation over this packet's bytes to `ops`: nonce from the SA's salt and
    /// the IV in the packet, AAD from the SPI and sequence number. Returns its index; `None`
    /// (nothing added) if the buffer no longer holds them or `ops` is full.
    #[inline(always)]
    pub fn push<'a>(
        &self,
        data: &'a mut [u8],
        sa: &SaCrypto,
        ops: &mut AeadOps<'a>,
    ) -> Option<usize> {
        let off = usize::from(self.offset);
        let iv: &[u8; IV_LEN] = data.get(off.checked_sub(IV_LEN)?..off)?.try_into().ok()?;
        let nonce = nonce(&sa.salt, iv);
        let (aad, aad_len) = aad(sa.spi, self.seq, sa.esn);
        let d = data.get_mut(off..off + usize::from(self.len))?;
        ops.push(d, &nonce, &aad, aad_len)
    }

    /// Seals or opens this packet at once, under the SA's cipher: whether it succeeded (for an
    /// open: the ICV verified).
    #[inline]
    pub fn run_one(&self, data: &mut [u8], sa: &SaCrypto) -> bool {
        let mut ops = AeadOps::new();
        if self.push(data, sa, &mut ops).is_none() {
            return false;
        }
        sa.cipher.process(&mut ops);
        ops.ok(0)
    }
}

/// Additional authenticated data: SPI || seq (|| with ESN: SPI || seq high || seq low).
/// Returns the buffer and the length used.
#[inline]
pub fn aad(spi: u32, seq: u64, esn: bool) -> ([u8; MAX_AAD_LEN], usize) {
    let mut a = [0u8; MAX_AAD_LEN];
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
#[cfg(test)]
mod tests6;
