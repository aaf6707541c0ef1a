//! An SA's cipher on one of the backends, and where ciphers come from.

use super::ring::RingGcm;
use super::{Aead, AeadOps, CryptoError, DeviceSession, KeyMaterial, Op};

/// An SA's cipher. An enum rather than a boxed trait object: the device's session handle then
/// lies in the SA's own cache lines, so a packet reaches the PMD's session in one step and the
/// call is static.
pub enum Cipher {
    /// Boxed: ring's key schedule is large and only the ring backend reads it.
    Ring(Box<RingGcm>),
    #[cfg(feature = "dpdk")]
    Device(super::cryptodev::DeviceGcm),
}

impl Aead for Cipher {
    #[inline]
    fn process(&self, ops: &mut AeadOps<'_>) {
        match self {
            Cipher::Ring(c) => c.process(ops),
            #[cfg(feature = "dpdk")]
            Cipher::Device(c) => c.process(ops),
        }
    }
}

impl Cipher {
    /// Asks for the lines of the key schedule the backend reads first, ahead of the batch's
    /// crypto (with thousands of SAs they miss the cache).
    #[inline]
    pub fn prefetch_key(&self) {
        #[cfg(feature = "dpdk")]
        if let Cipher::Device(c) = self {
            c.prefetch_key();
        }
    }

    /// The crypto device's session behind the cipher, so that its operations can go through the
    /// device's queue pair with other SAs' (`QueuePair`); `None` for software.
    #[inline(always)]
    pub fn device_session(&self) -> Option<DeviceSession> {
        #[cfg(feature = "dpdk")]
        if let Cipher::Device(c) = self {
            return Some(c.handle());
        }
        None
    }
}

/// Where SA ciphers come from.
#[derive(Clone, Default)]
pub enum Backend {
    /// `ring`, in software, everywhere.
    #[default]
    Ring,
    /// A DPDK crypto device driven by synchronous CPU crypto (`crypto_aesni_gcm`).
    #[cfg(feature = "dpdk")]
    Cryptodev(std::sync::Arc<super::cryptodev::Device>),
}

impl Backend {
    pub fn name(&self) -> String {
        match self {
            Backend::Ring => "ring".into(),
            #[cfg(feature = "dpdk")]
            Backend::Cryptodev(d) => format!("cryptodev {}", d.driver()),
        }
    }
}

/// The cipher for an SA from its key material, on `backend`. `esn` fixes the AAD length
/// (12 bytes with extended sequence numbers, else 8), as a device session needs it.
#[cfg_attr(not(feature = "dpdk"), allow(unused_variables))]
pub fn cipher(
    keys: &KeyMaterial,
    op: Op,
    esn: bool,
    backend: &Backend,
) -> Result<Cipher, CryptoError> {
    Ok(match backend {
        Backend::Ring => Cipher::Ring(Box::new(RingGcm::new(keys.algorithm(), keys.key(), op)?)),
        #[cfg(feature = "dpdk")]
        Backend::Cryptodev(dev) => Cipher::Device(dev.session(keys, op, esn)?),
    })
}
