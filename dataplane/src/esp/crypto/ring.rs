//! AES-GCM from `ring` (BoringSSL's assembly): the portable backend, one call per packet.

use super::{Aead, AeadOps, Algorithm, CryptoError, Op, NONCE_LEN, TAG_LEN};

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
        let Some(text_len) = data.len().checked_sub(TAG_LEN) else {
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
