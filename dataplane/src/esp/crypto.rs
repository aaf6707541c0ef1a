//! The AEAD behind ESP, as one small trait so the backend can change (ring now; DPDK's
//! cryptodev on the fast path later; the `aes-gcm` crate as an independent oracle in tests).

use crate::wire::esp::ICV_LEN;
use zeroize::Zeroizing;

pub const NONCE_LEN: usize = 12;
pub const SALT_LEN: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("key has the wrong length for the algorithm")]
    KeyLength,
    #[error("authentication failed")]
    Auth,
    #[error("buffer shorter than the tag")]
    Short,
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

/// An AES-GCM key ready to seal and open ESP payloads in place.
pub trait Aead: Send + Sync {
    /// Encrypts `in_out` in place and writes the 16-byte tag.
    fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &mut [u8; ICV_LEN],
    ) -> Result<(), CryptoError>;

    /// Verifies and decrypts `ciphertext || tag` in place; returns the plaintext length.
    /// On failure the buffer content is unspecified and must be dropped.
    fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<usize, CryptoError>;
}

/// AES-GCM from `ring` (BoringSSL's assembly): the portable backend.
pub struct RingGcm(ring::aead::LessSafeKey);

impl RingGcm {
    pub fn new(alg: Algorithm, key: &[u8]) -> Result<RingGcm, CryptoError> {
        if key.len() != alg.key_len() {
            return Err(CryptoError::KeyLength);
        }
        let ring_alg = match alg {
            Algorithm::Aes128Gcm => &ring::aead::AES_128_GCM,
            Algorithm::Aes256Gcm => &ring::aead::AES_256_GCM,
        };
        let unbound =
            ring::aead::UnboundKey::new(ring_alg, key).map_err(|_| CryptoError::KeyLength)?;
        Ok(RingGcm(ring::aead::LessSafeKey::new(unbound)))
    }
}

impl Aead for RingGcm {
    #[inline]
    fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &mut [u8; ICV_LEN],
    ) -> Result<(), CryptoError> {
        let n = ring::aead::Nonce::assume_unique_for_key(*nonce);
        let t = self
            .0
            .seal_in_place_separate_tag(n, ring::aead::Aad::from(aad), in_out)
            .map_err(|_| CryptoError::Short)?;
        tag.copy_from_slice(t.as_ref());
        Ok(())
    }

    #[inline]
    fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<usize, CryptoError> {
        if in_out.len() < ICV_LEN {
            return Err(CryptoError::Short);
        }
        let n = ring::aead::Nonce::assume_unique_for_key(*nonce);
        self.0
            .open_in_place(n, ring::aead::Aad::from(aad), in_out)
            .map(|p| p.len())
            .map_err(|_| CryptoError::Auth)
    }
}

/// The cipher for an SA from its key material, on the best backend available.
pub fn cipher(keymat: &Keymat) -> Result<Box<dyn Aead>, CryptoError> {
    Ok(Box::new(RingGcm::new(keymat.algorithm(), keymat.key())?))
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

    /// McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 4 (AES-128) and
    /// 16 (AES-256): 60-byte plaintext, 20-byte AAD, 96-bit IV.
    #[test]
    fn gcm_spec_test_vectors() {
        let pt = h("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
        let aad = h("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let iv: [u8; 12] = h("cafebabefacedbaddecaf888").try_into().unwrap();
        let cases = [
            (
                Algorithm::Aes128Gcm,
                "feffe9928665731c6d6a8f9467308308",
                "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
                "5bc94fbc3221a5db94fae95ae7121a47",
            ),
            (
                Algorithm::Aes256Gcm,
                "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
                "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
                "76fc6ece0f4e1768cddf8853bb2d551b",
            ),
        ];
        for (alg, key, ct, tag) in cases {
            let c = RingGcm::new(alg, &h(key)).unwrap();
            let mut buf = pt.clone();
            let mut t = [0u8; 16];
            c.seal(&iv, &aad, &mut buf, &mut t).unwrap();
            assert_eq!(buf, h(ct), "{alg:?} ciphertext");
            assert_eq!(t.to_vec(), h(tag), "{alg:?} tag");
            buf.extend_from_slice(&t);
            assert_eq!(c.open(&iv, &aad, &mut buf), Ok(pt.len()));
            assert_eq!(&buf[..pt.len()], &pt[..]);
            buf[..pt.len()].copy_from_slice(&h(ct));
            buf[3] ^= 0x80;
            assert_eq!(c.open(&iv, &aad, &mut buf), Err(CryptoError::Auth));
        }
    }

    #[test]
    fn keymat_splits_key_and_salt_and_rejects_wrong_lengths() {
        let km = Keymat::new(Algorithm::Aes128Gcm, Zeroizing::new((0u8..20).collect())).unwrap();
        assert_eq!(km.key(), &(0u8..16).collect::<Vec<_>>()[..]);
        assert_eq!(km.salt(), [16, 17, 18, 19]);
        assert_eq!(format!("{km:?}"), "Keymat(aes-128-gcm, <redacted>)");
        assert!(Keymat::new(Algorithm::Aes256Gcm, Zeroizing::new(vec![0; 20])).is_err());
        assert!(RingGcm::new(Algorithm::Aes128Gcm, &[0; 32]).is_err());
    }
}
