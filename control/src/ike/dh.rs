//! Ephemeral Diffie-Hellman for IKE_SA_INIT and PFS (RFC 7296 section 3.4): Curve25519
//! (group 31, RFC 8031) and the NIST curves ECP-256 and ECP-384 (groups 19 and 20, RFC 5903:
//! the KE data is x || y, without the 0x04 point prefix), from `ring`; and MODP-2048 (group 14,
//! RFC 3526) with `crypto-bigint`'s constant-time modular exponentiation, a 256-bit private
//! exponent, and public values and secrets as 256 big-endian bytes.

use super::kdf::Secret;
use crypto_bigint::modular::{MontyForm, MontyParams};
use crypto_bigint::{Odd, U2048, U256};
use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

/// RFC 3526 section 3: the 2048-bit MODP group's prime; the generator is 2.
const MODP_2048_P: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
);

fn modp_prime() -> U2048 {
    U2048::from_be_hex(MODP_2048_P)
}

/// base^x mod p, as 256 big-endian bytes.
fn modp_pow(base: &U2048, x: &U256) -> Option<Secret> {
    let params = MontyParams::new(Option::<Odd<U2048>>::from(Odd::new(modp_prime()))?);
    let r = MontyForm::new(base, params).pow(x).retrieve();
    Some(Zeroizing::new(r.to_be_bytes().to_vec()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Modp2048,
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
            14 => Group::Modp2048,
            19 => Group::Ecp256,
            20 => Group::Ecp384,
            31 => Group::Curve25519,
            o => return Err(DhError::Unsupported(o)),
        })
    }
    pub fn id(self) -> u16 {
        match self {
            Group::Modp2048 => 14,
            Group::Ecp256 => 19,
            Group::Ecp384 => 20,
            Group::Curve25519 => 31,
        }
    }
    /// ring's algorithm, for the elliptic-curve groups.
    fn algorithm(self) -> Option<&'static agreement::Algorithm> {
        match self {
            Group::Modp2048 => None,
            Group::Ecp256 => Some(&agreement::ECDH_P256),
            Group::Ecp384 => Some(&agreement::ECDH_P384),
            Group::Curve25519 => Some(&agreement::X25519),
        }
    }
    fn is_nist(self) -> bool {
        matches!(self, Group::Ecp256 | Group::Ecp384)
    }
}

enum Private {
    Ec(EphemeralPrivateKey),
    Modp(Zeroizing<[u8; 32]>),
}

/// Our half of an exchange: the private key (used once) and the KE data to send.
pub struct KeyPair {
    group: Group,
    private: Private,
    pub public: Vec<u8>,
}

impl KeyPair {
    pub fn generate(group: Group, rng: &SystemRandom) -> Result<KeyPair, DhError> {
        let Some(alg) = group.algorithm() else {
            let mut x = Zeroizing::new([0u8; 32]);
            rng.fill(&mut x[..]).map_err(|_| DhError::Random)?;
            let public = modp_pow(&U2048::from_u8(2), &U256::from_be_slice(&x[..]))
                .ok_or(DhError::Random)?
                .to_vec();
            return Ok(KeyPair {
                group,
                private: Private::Modp(x),
                public,
            });
        };
        let private = EphemeralPrivateKey::generate(alg, rng).map_err(|_| DhError::Random)?;
        let pk = private.compute_public_key().map_err(|_| DhError::Random)?;
        let mut public = pk.as_ref().to_vec();
        if group.is_nist() {
            // ring gives the uncompressed point 0x04 || x || y; IKE sends x || y.
            public.remove(0);
        }
        Ok(KeyPair {
            group,
            private: Private::Ec(private),
            public,
        })
    }

    pub fn group(&self) -> Group {
        self.group
    }

    /// g^ir from the peer's KE data.
    pub fn agree(self, peer: &[u8]) -> Result<Secret, DhError> {
        match self.private {
            Private::Modp(x) => {
                // 1 < y < p - 1: the values of the small subgroups refused.
                if peer.len() != 256 {
                    return Err(DhError::BadPublic);
                }
                let y = U2048::from_be_slice(peer);
                if y <= U2048::ONE || y >= modp_prime().wrapping_sub(&U2048::ONE) {
                    return Err(DhError::BadPublic);
                }
                modp_pow(&y, &U256::from_be_slice(&x[..])).ok_or(DhError::BadPublic)
            }
            Private::Ec(private) => {
                let alg = self.group.algorithm().ok_or(DhError::BadPublic)?;
                let point;
                let peer = if self.group.is_nist() {
                    point = [&[4u8][..], peer].concat();
                    &point[..]
                } else {
                    peer
                };
                agreement::agree_ephemeral(private, &UnparsedPublicKey::new(alg, peer), |s| {
                    Zeroizing::new(s.to_vec())
                })
                .map_err(|_| DhError::BadPublic)
            }
        }
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
            (Group::Modp2048, 256),
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
        assert_eq!(Group::from_id(15).unwrap_err(), DhError::Unsupported(15));
        // MODP: 1 and p - 1 are refused.
        let k = KeyPair::generate(Group::Modp2048, &rng).unwrap();
        let mut one = vec![0u8; 256];
        one[255] = 1;
        assert_eq!(k.agree(&one).unwrap_err(), DhError::BadPublic);
    }
}
