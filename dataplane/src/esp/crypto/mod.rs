//! The AEAD behind ESP, as one small trait so the backend can change: `ring` everywhere
//! (`ring`), DPDK's `crypto_aesni_gcm` on the fast path (`cryptodev`, only in builds with
//! DPDK), and the `aes-gcm` crate as an independent oracle in tests. An SA holds its key as a
//! [`Cipher`] on one backend (`cipher`); a burst's operations go to it as an [`AeadOps`] batch.

pub mod batch;
pub mod cipher;
#[cfg(feature = "dpdk")]
pub mod cryptodev;
pub mod ring;

pub use batch::{AeadOps, MAX_AAD_LEN, NONCE_LEN, TAG_LEN};
pub use channel::{Algorithm, KeyMaterial, SALT_LEN};
pub use cipher::{cipher, Backend, Cipher};
pub use ring::RingGcm;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("key has the wrong length for the algorithm")]
    KeyLength,
    #[error("the crypto device refused the session: {0}")]
    Device(String),
}

/// Which way an SA's cipher works: outbound SAs seal, inbound SAs open. Fixed when the cipher
/// is made, as a cryptodev session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Seal,
    Open,
}

/// An SA's AES-GCM key, sealing or opening ESP payloads in place. `process` takes a whole
/// batch of the SA's packets at once, so a backend can amortise its per-call cost.
pub trait Aead: Send + Sync {
    /// Seals or opens every operation and records whether it succeeded (`AeadOps::ok`). On a
    /// failed open the text is unspecified and the packet must be dropped.
    fn process(&self, ops: &mut AeadOps<'_>);
}

/// A crypto device's session as a queue pair takes it: the device, the session, and the AAD
/// length it was made for. A handle only: the SA's cipher owns the session.
#[derive(Debug, Clone, Copy)]
pub struct DeviceSession {
    pub session: std::ptr::NonNull<std::ffi::c_void>,
    pub device: u8,
    pub aad_len: u8,
}

// SAFETY: a handle to a session that its owner keeps alive and that a PMD reads only.
unsafe impl Send for DeviceSession {}
// SAFETY: as above.
unsafe impl Sync for DeviceSession {}

/// A crypto device's queue pair: one trip for a batch whose operations are under different
/// SAs, where a cipher's own `process` takes one call per SA.
pub trait QueuePair: Send {
    /// Runs operation `i` of `ops` under `sessions[i]` and records each outcome. `false`, with
    /// nothing done, when a session is not on this queue's device.
    fn process(&mut self, ops: &mut AeadOps<'_>, sessions: &[DeviceSession]) -> bool;
    /// The device kept operations it was given: the queue fails every job from then on, and
    /// its owner should drop it (which frees nothing the device may still hold).
    fn is_stuck(&self) -> bool;
}

/// The RFC 4106 nonce: salt || explicit IV.
#[inline]
pub fn nonce(salt: &[u8; SALT_LEN], iv: &[u8; 8]) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[..SALT_LEN].copy_from_slice(salt);
    n[SALT_LEN..].copy_from_slice(iv);
    n
}

#[cfg(test)]
mod tests;
