//! The Encrypted payload (RFC 7296 section 3.14): the payloads of every exchange after
//! IKE_SA_INIT travel inside it, as IV | ciphertext(payloads | padding | pad length) | ICV.
//!
//! - AES-GCM-16 (RFC 5282): the IKE header and the SK payload's generic header are the
//!   associated data; the nonce is the 4-byte salt from the keying material and the payload's
//!   explicit 8-byte IV (a counter: it must never repeat under the key); a 16-byte ICV.
//! - AES-CBC with HMAC-SHA2 (RFC 7296, RFC 4868): a random 16-byte IV, the plaintext padded to
//!   the block, and the ICV the truncated HMAC over the whole message up to it, checked before
//!   anything is decrypted.

use super::wire::{emit_chain, parse_chain, payload_type, Header, Message, Payload, WireError};
use aes::cipher::{block_padding::NoPadding, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

const GCM_IV_LEN: usize = 8;
const GCM_ICV_LEN: usize = 16;
const SALT_LEN: usize = 4;
const BLOCK: usize = 16;

/// The integrity algorithms for AES-CBC (transform type 3), truncated as RFC 4868 says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integrity {
    HmacSha256_128,
    HmacSha384_192,
    HmacSha512_256,
}

impl Integrity {
    pub fn from_id(id: u16) -> Option<Integrity> {
        Some(match id {
            12 => Integrity::HmacSha256_128,
            13 => Integrity::HmacSha384_192,
            14 => Integrity::HmacSha512_256,
            _ => return None,
        })
    }
    fn algorithm(self) -> hmac::Algorithm {
        match self {
            Integrity::HmacSha256_128 => hmac::HMAC_SHA256,
            Integrity::HmacSha384_192 => hmac::HMAC_SHA384,
            Integrity::HmacSha512_256 => hmac::HMAC_SHA512,
        }
    }
    /// The key length (SK_a): the hash's output length.
    pub fn key_len(self) -> usize {
        self.algorithm().digest_algorithm().output_len()
    }
    /// The ICV length: half the hash.
    pub fn icv_len(self) -> usize {
        self.key_len() / 2
    }
}

/// One direction's keys for the Encrypted payload. (A few per IKE SA, built once: the
/// variants' sizes do not matter.)
#[allow(clippy::large_enum_variant)]
pub enum SkKey {
    Gcm {
        key: LessSafeKey,
        salt: [u8; SALT_LEN],
    },
    Cbc {
        key: zeroize::Zeroizing<Vec<u8>>,
        integrity: Integrity,
        mac: hmac::Key,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkError {
    #[error("SK_e of {0} bytes does not fit the cipher")]
    KeyLength(usize),
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("no Encrypted payload")]
    NotEncrypted,
    /// The ICV did not verify: the message is dropped (RFC 7296 section 2.21.2 says not to
    /// answer it).
    #[error("integrity check failed")]
    Integrity,
    #[error("no randomness for the IV")]
    Random,
}

impl SkKey {
    /// AES-GCM-16 from SK_ei or SK_er (key || 4-byte salt, RFC 5282 section 7.1).
    pub fn new(keymat: &[u8]) -> Result<SkKey, SkError> {
        let alg = match keymat.len() {
            20 => &aead::AES_128_GCM,
            36 => &aead::AES_256_GCM,
            n => return Err(SkError::KeyLength(n)),
        };
        let (k, s) = keymat.split_at(keymat.len() - SALT_LEN);
        let key = UnboundKey::new(alg, k).map_err(|_| SkError::KeyLength(keymat.len()))?;
        let mut salt = [0; SALT_LEN];
        salt.copy_from_slice(s);
        Ok(SkKey::Gcm {
            key: LessSafeKey::new(key),
            salt,
        })
    }

    /// AES-CBC (a 16 or 32-byte SK_e) with HMAC integrity (SK_a).
    pub fn cbc(sk_e: &[u8], integrity: Integrity, sk_a: &[u8]) -> Result<SkKey, SkError> {
        if !matches!(sk_e.len(), 16 | 32) {
            return Err(SkError::KeyLength(sk_e.len()));
        }
        Ok(SkKey::Cbc {
            key: zeroize::Zeroizing::new(sk_e.to_vec()),
            integrity,
            mac: hmac::Key::new(integrity.algorithm(), sk_a),
        })
    }

    fn iv_len(&self) -> usize {
        match self {
            SkKey::Gcm { .. } => GCM_IV_LEN,
            SkKey::Cbc { .. } => BLOCK,
        }
    }

    fn icv_len(&self) -> usize {
        match self {
            SkKey::Gcm { .. } => GCM_ICV_LEN,
            SkKey::Cbc { integrity, .. } => integrity.icv_len(),
        }
    }
}

fn gcm_nonce(salt: &[u8; SALT_LEN], iv: &[u8]) -> Nonce {
    let mut n = [0; 12];
    n[..SALT_LEN].copy_from_slice(salt);
    n[SALT_LEN..].copy_from_slice(&iv[..GCM_IV_LEN]);
    Nonce::assume_unique_for_key(n)
}

fn cbc_apply(key: &[u8], iv: &[u8], data: &mut [u8], encrypt: bool) -> Result<(), SkError> {
    let bad = |_| SkError::KeyLength(key.len());
    let len = data.len();
    let ok = match (key.len(), encrypt) {
        (16, true) => cbc::Encryptor::<aes::Aes128>::new_from_slices(key, iv)
            .map_err(bad)?
            .encrypt_padded_mut::<NoPadding>(data, len)
            .is_ok(),
        (32, true) => cbc::Encryptor::<aes::Aes256>::new_from_slices(key, iv)
            .map_err(bad)?
            .encrypt_padded_mut::<NoPadding>(data, len)
            .is_ok(),
        (16, false) => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
            .map_err(bad)?
            .decrypt_padded_mut::<NoPadding>(data)
            .is_ok(),
        (32, false) => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
            .map_err(bad)?
            .decrypt_padded_mut::<NoPadding>(data)
            .is_ok(),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(WireError::Malformed("ciphertext length").into())
    }
}

/// Whether an Encrypted payload carries the whole message (SK) or one fragment of it (SKF,
/// RFC 7383 section 2.5: its header adds the fragment's number and the total).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Whole,
    Fragment { number: u16, total: u16 },
}

impl Part {
    fn header_len(self) -> usize {
        match self {
            Part::Whole => 4,
            Part::Fragment { .. } => 8,
        }
    }
}

/// The message with `inner` encrypted under `key`. With GCM the IV is `counter` (the
/// message ID does: it never repeats under the key); with CBC it is drawn from `rng`.
pub fn seal(
    header: &Header,
    inner: &[Payload],
    key: &SkKey,
    counter: u64,
    rng: &SystemRandom,
) -> Result<Vec<u8>, SkError> {
    let first = inner.first().map_or(payload_type::NONE, Payload::kind);
    let mut plain = Vec::with_capacity(256);
    emit_chain(inner, &mut plain);
    seal_part(header, first, Part::Whole, &plain, key, counter, rng)
}

/// The bytes an Encrypted payload adds to `len` bytes of plaintext under `key` (IV, padding,
/// pad length, ICV), with `part`'s generic header and the IKE header.
pub fn overhead(key: &SkKey, part: Part, len: usize) -> usize {
    28 + part.header_len() + key.iv_len() + padded(key, len) - len + key.icv_len()
}

/// `len` bytes of plaintext padded (with the pad length byte) as `key`'s cipher needs.
fn padded(key: &SkKey, len: usize) -> usize {
    match key {
        SkKey::Gcm { .. } => len + 1,
        SkKey::Cbc { .. } => (len + 1).div_ceil(BLOCK) * BLOCK,
    }
}

/// One message: `header`, then an Encrypted payload (`part`) over `chain` (payload bytes
/// whose first payload is of type `first`; in a fragment after the first, `first` is 0).
pub fn seal_part(
    header: &Header,
    first: u8,
    part: Part,
    chain: &[u8],
    key: &SkKey,
    counter: u64,
    rng: &SystemRandom,
) -> Result<Vec<u8>, SkError> {
    let mut plain = chain.to_vec();
    // GCM needs no padding; CBC pads to its block (RFC 7296 section 3.14), then the pad
    // length.
    let pad = padded(key, plain.len()) - plain.len() - 1;
    plain.extend(std::iter::repeat_n(0u8, pad));
    plain.push(pad as u8);
    let (iv_len, icv_len) = (key.iv_len(), key.icv_len());
    let mut out = Vec::with_capacity(28 + 8 + iv_len + plain.len() + icv_len);
    let kind = match part {
        Part::Whole => payload_type::SK,
        Part::Fragment { .. } => payload_type::SKF,
    };
    header.emit(kind, &mut out);
    let sk_start = out.len();
    out.push(first);
    out.push(0);
    let sk_len = (part.header_len() + iv_len + plain.len() + icv_len) as u16;
    out.extend_from_slice(&sk_len.to_be_bytes());
    if let Part::Fragment { number, total } = part {
        out.extend_from_slice(&number.to_be_bytes());
        out.extend_from_slice(&total.to_be_bytes());
    }
    let total = (out.len() + iv_len + plain.len() + icv_len) as u32;
    out[24..28].copy_from_slice(&total.to_be_bytes());
    match key {
        SkKey::Gcm { key, salt } => {
            let iv = counter.to_be_bytes();
            // The IKE header and the payload's header (with a fragment's number and total).
            let aad = out[..sk_start + part.header_len()].to_vec();
            out.extend_from_slice(&iv);
            let tag = key
                .seal_in_place_separate_tag(gcm_nonce(salt, &iv), Aad::from(&aad), &mut plain)
                .map_err(|_| SkError::Integrity)?;
            out.extend_from_slice(&plain);
            out.extend_from_slice(tag.as_ref());
        }
        SkKey::Cbc {
            key,
            integrity,
            mac,
        } => {
            let mut iv = [0u8; BLOCK];
            rng.fill(&mut iv).map_err(|_| SkError::Random)?;
            cbc_apply(key, &iv, &mut plain, true)?;
            out.extend_from_slice(&iv);
            out.extend_from_slice(&plain);
            let icv = hmac::sign(mac, &out);
            out.extend_from_slice(&icv.as_ref()[..integrity.icv_len()]);
        }
    }
    Ok(out)
}

/// Parses `bytes`, checks and decrypts its Encrypted payload (the last in the chain), and
/// returns the message with the payloads before SK followed by those inside it.
pub fn open(bytes: &[u8], key: &SkKey) -> Result<Message, SkError> {
    let (mut outer, first, part, chain) = open_part(bytes, key)?;
    if part != Part::Whole {
        return Err(SkError::NotEncrypted);
    }
    let inner = parse_chain(first, &chain)?;
    outer.payloads.pop();
    outer.payloads.extend(inner);
    Ok(outer)
}

/// Parses `bytes` and checks and decrypts its Encrypted payload, whole or a fragment: the
/// message as parsed, the type of the first payload inside, which part it is, and the
/// payload bytes inside (not parsed: a fragment's are a piece of the chain).
pub fn open_part(bytes: &[u8], key: &SkKey) -> Result<(Message, u8, Part, Vec<u8>), SkError> {
    let outer = Message::parse(bytes)?;
    let (first, part, body) = match outer.payloads.last() {
        Some(Payload::Sk { first, body }) => (*first, Part::Whole, body),
        Some(Payload::Skf {
            first,
            number,
            total,
            body,
        }) => (
            *first,
            Part::Fragment {
                number: *number,
                total: *total,
            },
            body,
        ),
        _ => return Err(SkError::NotEncrypted),
    };
    let (iv_len, icv_len) = (key.iv_len(), key.icv_len());
    // The Encrypted payload is the last: its header ends where its body starts.
    let body_start = bytes.len() - body.len();
    if body.len() < iv_len + 1 + icv_len {
        return Err(WireError::Truncated("encrypted payload").into());
    }
    let iv = &body[..iv_len];
    let plain: Vec<u8> = match key {
        SkKey::Gcm { key, salt } => {
            let mut sealed = body[iv_len..].to_vec();
            let aad = &bytes[..body_start];
            let n = key
                .open_in_place(gcm_nonce(salt, iv), Aad::from(aad), &mut sealed)
                .map_err(|_| SkError::Integrity)?
                .len();
            sealed.truncate(n);
            sealed
        }
        SkKey::Cbc { key, mac, .. } => {
            let (signed, icv) = bytes.split_at(bytes.len() - icv_len);
            let full = hmac::sign(mac, signed);
            let want = &full.as_ref()[..icv_len];
            // Constant time: no early exit on the first differing byte.
            if want.iter().zip(icv).fold(0u8, |d, (a, b)| d | (a ^ b)) != 0 {
                return Err(SkError::Integrity);
            }
            let mut data = body[iv_len..body.len() - icv_len].to_vec();
            if data.is_empty() || data.len() % BLOCK != 0 {
                return Err(WireError::Malformed("ciphertext length").into());
            }
            cbc_apply(key, iv, &mut data, false)?;
            data
        }
    };
    let (&pad, rest) = plain
        .split_last()
        .ok_or(WireError::Truncated("pad length"))?;
    let chain_len = rest
        .len()
        .checked_sub(usize::from(pad))
        .ok_or(WireError::Malformed("padding"))?;
    let chain = rest[..chain_len].to_vec();
    Ok((outer, first, part, chain))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ike::wire::{Exchange, Flags, Id};

    fn header() -> Header {
        Header {
            initiator_spi: 0x1111,
            responder_spi: 0x2222,
            exchange: Exchange::IkeAuth,
            flags: Flags {
                initiator: true,
                ..Default::default()
            },
            message_id: 1,
        }
    }

    fn inner() -> Vec<Payload> {
        vec![
            Payload::IdI(Id {
                kind: 2,
                data: b"gw1.example".to_vec(),
            }),
            Payload::Auth {
                method: 2,
                data: vec![5; 32],
            },
        ]
    }

    #[test]
    fn sealed_payloads_open_again_and_an_independent_aes_gcm_reads_them() {
        let rng = SystemRandom::new();
        let keymat: Vec<u8> = (0u8..36).collect();
        let key = SkKey::new(&keymat).unwrap();
        let bytes = seal(&header(), &inner(), &key, 1, &rng).unwrap();
        let m = open(&bytes, &key).unwrap();
        assert_eq!(m.header, header());
        assert_eq!(m.payloads, inner());

        // The `aes-gcm` crate, with the nonce and associated data RFC 5282 prescribes.
        use aes_gcm::aead::{Aead, KeyInit, Payload as P};
        let cipher = aes_gcm::Aes256Gcm::new_from_slice(&keymat[..32]).unwrap();
        let mut nonce = [0u8; 12];
        nonce[..4].copy_from_slice(&keymat[32..]);
        nonce[4..].copy_from_slice(&1u64.to_be_bytes());
        let aad = &bytes[..28 + 4];
        let plain = cipher
            .decrypt(
                aes_gcm::Nonce::from_slice(&nonce),
                P {
                    msg: &bytes[28 + 4 + 8..],
                    aad,
                },
            )
            .unwrap();
        let (&pad, chain) = plain.split_last().unwrap();
        assert_eq!(pad, 0);
        assert_eq!(parse_chain(payload_type::IDI, chain).unwrap(), inner());
    }

    #[test]
    fn cbc_with_hmac_pads_to_the_block_and_checks_before_decrypting() {
        let rng = SystemRandom::new();
        for (e, i) in [
            (16, Integrity::HmacSha256_128),
            (32, Integrity::HmacSha384_192),
            (32, Integrity::HmacSha512_256),
        ] {
            let key = SkKey::cbc(&vec![3u8; e], i, &vec![4u8; i.key_len()]).unwrap();
            let bytes = seal(&header(), &inner(), &key, 1, &rng).unwrap();
            // IV, whole blocks, ICV.
            let body = bytes.len() - 28 - 4 - BLOCK - i.icv_len();
            assert_eq!(body % BLOCK, 0);
            assert_eq!(open(&bytes, &key).unwrap().payloads, inner());
            // Two seals of the same message differ (a fresh IV each).
            assert_ne!(seal(&header(), &inner(), &key, 1, &rng).unwrap(), bytes);
            let mut b = bytes.clone();
            let last = b.len() - 1;
            b[last] ^= 1;
            assert_eq!(open(&b, &key), Err(SkError::Integrity));
            let mut b = bytes.clone();
            b[40] ^= 1;
            assert_eq!(open(&b, &key), Err(SkError::Integrity));
        }
        assert!(matches!(
            SkKey::cbc(&[0; 24], Integrity::HmacSha256_128, &[0; 32]),
            Err(SkError::KeyLength(24))
        ));
    }

    #[test]
    fn any_change_to_a_sealed_message_is_refused() {
        let rng = SystemRandom::new();
        let key = SkKey::new(&[7u8; 20]).unwrap();
        let bytes = seal(&header(), &inner(), &key, 9, &rng).unwrap();
        for at in [5, 20, 30, 40, bytes.len() - 1] {
            let mut b = bytes.clone();
            b[at] ^= 1;
            assert!(
                open(&b, &key).is_err(),
                "byte {at} changed and still accepted"
            );
        }
        let other = SkKey::new(&[8u8; 20]).unwrap();
        assert_eq!(open(&bytes, &other), Err(SkError::Integrity));
        assert!(matches!(SkKey::new(&[0; 16]), Err(SkError::KeyLength(16))));
    }
}
