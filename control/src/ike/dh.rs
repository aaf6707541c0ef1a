//! Ephemeral Diffie-Hellman for IKE_SA_INIT and PFS (RFC 7296 section 3.4): Curve25519
//! (group 31, RFC 8031) and the NIST curves ECP-256 and ECP-384 (groups 19 and 20, RFC 5903:
//! the KE data is x || y, without the 0x04 point prefix), from `ring`. MODP-2048 (group 14)
//! is still to come.

use super::kdf::Secret;
use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey};
use ring::rand::SystemRandom;
use zeroize::Zeroizing;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Ecp256,
    Ecp384,
    Curve25519,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DhError {
    #[error("DH group {0} is not supported")]
    Unsupported(u16),
    #[error("the peer's KE data is not a valid public value for this group")]
    BadPublic,
    #[error("no randomness")]
    Random,
}

impl Group {
    pub fn from_id(id: u16) -> Result<Group, DhError> {
        Ok(match id {
            19 => Group::Ecp256,
            20 => Group::Ecp384,
            31 => Group::Curve25519,
            o => return Err(DhError::Unsupported(o)),
        })
    }
    pub fn id(self) -> u16 {
        match self {
            Group::Ecp256 => 19,
            Group::Ecp384 => 20,
            Group::Curve25519 => 31,
        }
    }
    fn algorithm(self) -> &'static agreement::Algorithm {
        match self {
            Group::Ecp256 => &agreement::ECDH_P256,
            Group::Ecp384 => &agreement::ECDH_P384,
            Group::Curve25519 => &agreement::X25519,
        }
    }
    fn is_nist(self) -> bool {
        !matches!(self, Group::Curve25519)
    }
}

/// Our half of an exchange: the private key (used once) and the KE data to send.
pub struct KeyPair {
    group: Group,
    private: EphemeralPrivateKey,
    pub public: Vec<u8>,
}

impl KeyPair {
    pub fn generate(group: Group, rng: &SystemRandom) -> Result<KeyPair, DhError> {
        let private =
            EphemeralPrivateKey::generate(group.algorithm(), rng).map_err(|_| DhError::Random)?;
        let pk = private.compute_public_key().map_err(|_| DhError::Random)?;
        let mut public = pk.as_ref().to_vec();
        if group.is_nist() {
            // ring gives the uncompressed point 0x04 || x || y; IKE sends x || y.
            public.remove(0);
        }
        Ok(KeyPair {
            group,
            private,
            public,
        })
    }

    /// g^ir from the peer's KE data.
    pub fn agree(self, peer: &[u8]) -> Result<Secret, DhError> {
        let point;
        let peer = if self.group.is_nist() {
            point = [&[4u8][..], peer].concat();
            &point[..]
        } else {
            peer
        };
        agreement::agree_ephemeral(
            self.private,
            &UnparsedPublicKey::new(self.group.algorithm(), peer),
            |s| Zeroizing::new(s.to_vec()),
        )
        .map_err(|_| DhError::BadPublic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_agree_and_bad_public_values_are_refused() {
        let rng = SystemRandom::new();
        for (g, len) in [
            (Group::Curve25519, 32),
            (Group::Ecp256, 64),
            (Group::Ecp384, 96),
        ] {
            let a = KeyPair::generate(g, &rng).unwrap();
            let b = KeyPair::generate(g, &rng).unwrap();
            assert_eq!(
                a.public.len(),
                len,
                "{g:?} KE data length (RFC 5903, RFC 8031)"
            );
            let (pa, pb) = (a.public.clone(), b.public.clone());
            let s1 = a.agree(&pb).unwrap();
            let s2 = b.agree(&pa).unwrap();
            assert_eq!(*s1, *s2);
            let c = KeyPair::generate(g, &rng).unwrap();
            assert_eq!(
                c.agree(&vec![0u8; len + 1]).unwrap_err(),
                DhError::BadPublic
            );
        }
        assert_eq!(Group::from_id(14).unwrap_err(), DhError::Unsupported(14));
    }
}
