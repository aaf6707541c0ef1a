//! The AEAD behind ESP, as one small trait so the backend can change (ring now; DPDK's
//! cryptodev on the fast path later; the `aes-gcm` crate as an independent oracle in tests).

use crate::wire::esp::ICV_LEN;
use zeroize::Zeroizing;

pub use dpdk_sys::aead_ops::NONCE_LEN;
pub const SALT_LEN: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("key has the wrong length for the algorithm")]
    KeyLength,
    #[error("authentication failed")]
    Auth,
    #[error("the crypto device refused the session: {0}")]
    Device(String),
}

/// The ESP transforms we implement (RFC 4106 with a 16-byte ICV).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Algorithm {
    #[serde(rename = "aes-128-gcm")]
    Aes128Gcm,
    #[serde(rename = "aes-256-gcm")]
    Aes256Gcm,
}

impl Algorithm {
    pub fn key_len(self) -> usize {
        match self {
            Algorithm::Aes128Gcm => 16,
            Algorithm::Aes256Gcm => 32,
        }
    }
    /// RFC 4106 section 8.1: KEYMAT is the key followed by a 4-byte salt.
    pub fn keymat_len(self) -> usize {
        self.key_len() + SALT_LEN
    }
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Aes128Gcm => "aes-128-gcm",
            Algorithm::Aes256Gcm => "aes-256-gcm",
        }
    }
}

/// SA key material (key || salt). Wiped when dropped; its Debug prints no key.
#[derive(Clone)]
pub struct Keymat {
    alg: Algorithm,
    bytes: Zeroizing<Vec<u8>>,
}

impl Keymat {
    pub fn new(alg: Algorithm, bytes: Zeroizing<Vec<u8>>) -> Result<Keymat, CryptoError> {
        if bytes.len() != alg.keymat_len() {
            return Err(CryptoError::KeyLength);
        }
        Ok(Keymat { alg, bytes })
    }
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }
    pub fn key(&self) -> &[u8] {
        &self.bytes[..self.alg.key_len()]
    }
    pub fn salt(&self) -> [u8; SALT_LEN] {
        let mut s = [0; SALT_LEN];
        s.copy_from_slice(&self.bytes[self.alg.key_len()..]);
        s
    }
}

impl core::fmt::Debug for Keymat {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Keymat({}, <redacted>)", self.alg.name())
    }
}

/// Which way an SA's cipher works: outbound SAs seal, inbound SAs open. Fixed when the cipher
/// is made, as a cryptodev session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Seal,
    Open,
}

/// A batch of one SA's AEAD work, in place: each operation is a packet's text followed by its
/// 16-byte ICV (written when sealing, verified when opening), with its nonce and AAD. Filled by
/// `encap`/`decap` (through `Prepared::push`), run by an [`Aead`] in one call.
pub use dpdk_sys::aead_ops::{AeadOps, MAX_AAD_LEN};

/// An SA's AES-GCM key, sealing or opening ESP payloads in place. `process` takes a whole
/// batch of the SA's packets at once, so a backend can amortise its per-call cost.
pub trait Aead: Send + Sync {
    /// Seals or opens every operation and records whether it succeeded (`AeadOps::ok`). On a
    /// failed open the text is unspecified and the packet must be dropped.
    fn process(&self, ops: &mut AeadOps<'_>);
    /// The crypto device's session behind this cipher, for a burst that goes through a queue
    /// pair with other SAs' packets (`dpdk_sys::AeadQueue`); `None` for software backends.
    fn device_session(&self) -> Option<&dpdk_sys::AeadSession> {
        None
    }
}

/// AES-GCM from `ring` (BoringSSL's assembly): the portable backend.
pub struct RingGcm {
    key: ring::aead::LessSafeKey,
    op: Op,
}

impl RingGcm {
    pub fn new(alg: Algorithm, key: &[u8], op: Op) -> Result<RingGcm, CryptoError> {
        if key.len() != alg.key_len() {
            return Err(CryptoError::KeyLength);
        }
        let ring_alg = match alg {
            Algorithm::Aes128Gcm => &ring::aead::AES_128_GCM,
            Algorithm::Aes256Gcm => &ring::aead::AES_256_GCM,
        };
        let unbound =
            ring::aead::UnboundKey::new(ring_alg, key).map_err(|_| CryptoError::KeyLength)?;
        Ok(RingGcm {
            key: ring::aead::LessSafeKey::new(unbound),
            op,
        })
    }

    #[inline]
    fn one(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], data: &mut [u8]) -> bool {
        let n = ring::aead::Nonce::assume_unique_for_key(*nonce);
        let aad = ring::aead::Aad::from(aad);
        let Some(text_len) = data.len().checked_sub(ICV_LEN) else {
            return false;
        };
        match self.op {
            Op::Seal => {
                let (text, icv) = data.split_at_mut(text_len);
                match self.key.seal_in_place_separate_tag(n, aad, text) {
                    Ok(t) => {
                        icv.copy_from_slice(t.as_ref());
                        true
                    }
                    Err(_) => false,
                }
            }
            Op::Open => self.key.open_in_place(n, aad, data).is_ok(),
        }
    }
}

impl Aead for RingGcm {
    fn process(&self, ops: &mut AeadOps<'_>) {
        for i in 0..ops.len() {
            let ok = ops
                .get_mut(i)
                .is_some_and(|(nonce, aad, data)| self.one(nonce, aad, data));
            ops.set_ok(i, ok);
        }
    }
}

/// Where SA ciphers come from.
#[derive(Clone, Default)]
pub enum Backend {
    /// `ring`, in software, everywhere.
    #[default]
    Ring,
    /// A DPDK crypto device driven by synchronous CPU crypto (`crypto_aesni_gcm`).
    Cryptodev(std::sync::Arc<super::cryptodev::Device>),
}

impl Backend {
    pub fn name(&self) -> String {
        match self {
            Backend::Ring => "ring".into(),
            Backend::Cryptodev(d) => format!("cryptodev {}", d.driver()),
        }
    }
}

/// An SA's cipher on one of the backends. An enum rather than a boxed trait object: the
/// device's session handle then lies in the SA's own cache lines, so a packet reaches the
/// PMD's session in one step and the call is static.
pub enum Cipher {
    /// Boxed: ring's key schedule is large and only the ring backend reads it.
    Ring(Box<RingGcm>),
    Device(super::cryptodev::CryptodevGcm),
}

impl Aead for Cipher {
    #[inline]
    fn process(&self, ops: &mut AeadOps<'_>) {
        match self {
            Cipher::Ring(c) => c.process(ops),
            Cipher::Device(c) => c.process(ops),
        }
    }
    #[inline]
    fn device_session(&self) -> Option<&dpdk_sys::AeadSession> {
        match self {
            Cipher::Ring(_) => None,
            Cipher::Device(c) => c.device_session(),
        }
    }
}

impl Cipher {
    /// Asks for the lines of the key schedule the backend reads first (a device session's
    /// `hot_lines`), ahead of the batch's crypto.
    #[inline]
    pub fn prefetch_key(&self) {
        if let Some(s) = self.device_session() {
            s.hot_lines().into_iter().for_each(crate::prefetch::line);
        }
    }
}

/// The cipher for an SA from its key material, on `backend`. `esn` fixes the AAD length
/// (12 bytes with extended sequence numbers, else 8), as a device session needs it.
pub fn cipher(
    keymat: &Keymat,
    op: Op,
    esn: bool,
    backend: &Backend,
) -> Result<Cipher, CryptoError> {
    Ok(match backend {
        Backend::Ring => Cipher::Ring(Box::new(RingGcm::new(
            keymat.algorithm(),
            keymat.key(),
            op,
        )?)),
        Backend::Cryptodev(dev) => Cipher::Device(dev.session(keymat, op, esn)?),
    })
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
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    /// One operation with no AAD through the batch interface.
    fn one(c: &impl Aead, iv: &[u8; NONCE_LEN], buf: &mut [u8]) -> bool {
        let mut ops = AeadOps::new();
        assert_eq!(ops.push(buf, iv, &[0; MAX_AAD_LEN], 0), Some(0));
        c.process(&mut ops);
        ops.ok(0)
    }

    /// McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 3 (AES-128) and
    /// 15 (AES-256): 64-byte plaintext, no AAD, 96-bit IV; run through the batch interface
    /// both ways, and a flipped bit must fail to open.
    #[test]
    fn gcm_spec_test_vectors() {
        let pt = h("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255");
        let iv: [u8; 12] = h("cafebabefacedbaddecaf888").try_into().unwrap();
        let cases = [
            (
                Algorithm::Aes128Gcm,
                "feffe9928665731c6d6a8f9467308308",
                "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985",
                "4d5c2af327cd64a62cf35abd2ba6fab4",
            ),
            (
                Algorithm::Aes256Gcm,
                "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
                "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
                "b094dac5d93471bdec1a502270e3cc6c",
            ),
        ];
        for (alg, key, ct, tag) in cases {
            let sealer = RingGcm::new(alg, &h(key), Op::Seal).unwrap();
            let opener = RingGcm::new(alg, &h(key), Op::Open).unwrap();
            let mut buf = pt.clone();
            buf.extend_from_slice(&[0; ICV_LEN]);
            assert!(one(&sealer, &iv, &mut buf));
            assert_eq!(buf[..64], h(ct)[..], "{alg:?} ciphertext");
            assert_eq!(buf[64..], h(tag)[..], "{alg:?} tag");
            assert!(one(&opener, &iv, &mut buf));
            assert_eq!(&buf[..64], &pt[..]);
            buf[..64].copy_from_slice(&h(ct));
            buf[3] ^= 0x80;
            assert!(
                !one(&opener, &iv, &mut buf),
                "{alg:?}: a flipped bit must not open"
            );
            let mut short = [0u8; ICV_LEN - 1];
            let mut ops = AeadOps::new();
            let aad = [0; MAX_AAD_LEN];
            assert_eq!(
                ops.push(&mut short, &iv, &aad, 0),
                None,
                "shorter than a tag"
            );
        }
    }

    #[test]
    fn keymat_splits_key_and_salt_and_rejects_wrong_lengths() {
        let km = Keymat::new(Algorithm::Aes128Gcm, Zeroizing::new((0u8..20).collect())).unwrap();
        assert_eq!(km.key(), &(0u8..16).collect::<Vec<_>>()[..]);
        assert_eq!(km.salt(), [16, 17, 18, 19]);
        assert_eq!(format!("{km:?}"), "Keymat(aes-128-gcm, <redacted>)");
        assert!(Keymat::new(Algorithm::Aes256Gcm, Zeroizing::new(vec![0; 20])).is_err());
        assert!(RingGcm::new(Algorithm::Aes128Gcm, &[0; 32], Op::Seal).is_err());
    }
}
