//! The Encrypted payload (RFC 7296 section 3.14) with AES-GCM-16 (RFC 5282): the payloads of
//! every exchange after IKE_SA_INIT travel inside it. The IKE header and the SK payload's
//! generic header are the associated data; the nonce is the 4-byte salt from the keying
//! material followed by the payload's explicit 8-byte IV; the plaintext is the inner payloads,
//! padding and the pad length; a 16-byte ICV closes it.

use super::wire::{emit_chain, parse_chain, payload_type, Header, Message, Payload, WireError};
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};

const IV_LEN: usize = 8;
const ICV_LEN: usize = 16;
const SALT_LEN: usize = 4;

/// One direction's SK_e (key || salt) for AES-GCM-16.
pub struct SkKey {
    key: LessSafeKey,
    salt: [u8; SALT_LEN],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkError {
    #[error("SK_e of {0} bytes: AES-GCM takes a 16 or 32-byte key and a 4-byte salt")]
    KeyLength(usize),
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("no Encrypted payload")]
    NotEncrypted,
    /// The ICV did not verify: the message is dropped (RFC 7296 section 2.21.2 says not to
    /// answer it).
    #[error("integrity check failed")]
    Integrity,
}

impl SkKey {
    /// From SK_ei or SK_er (key || 4-byte salt, RFC 5282 section 7.1).
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
        Ok(SkKey {
            key: LessSafeKey::new(key),
            salt,
        })
    }

    fn nonce(&self, iv: &[u8; IV_LEN]) -> Nonce {
        let mut n = [0; 12];
        n[..SALT_LEN].copy_from_slice(&self.salt);
        n[SALT_LEN..].copy_from_slice(iv);
        Nonce::assume_unique_for_key(n)
    }
}

/// The message with `inner` encrypted under `key`. `iv` must never repeat under the key: the
/// caller uses its message counter (RFC 5282 section 3.1 asks for uniqueness, not randomness).
pub fn seal(header: &Header, inner: &[Payload], key: &SkKey, iv: [u8; IV_LEN]) -> Vec<u8> {
    let first = inner.first().map_or(payload_type::NONE, Payload::kind);
    let mut plain = Vec::with_capacity(256);
    emit_chain(inner, &mut plain);
    // No padding is needed with a counter-mode cipher; the pad length byte is.
    plain.push(0);
    let mut out = Vec::with_capacity(28 + 4 + IV_LEN + plain.len() + ICV_LEN);
    header.emit(payload_type::SK, &mut out);
    let sk_start = out.len();
    out.push(first);
    out.push(0);
    let sk_len = (4 + IV_LEN + plain.len() + ICV_LEN) as u16;
    out.extend_from_slice(&sk_len.to_be_bytes());
    let total = (out.len() + IV_LEN + plain.len() + ICV_LEN) as u32;
    out[24..28].copy_from_slice(&total.to_be_bytes());
    let aad = out[..sk_start + 4].to_vec();
    out.extend_from_slice(&iv);
    // ring seals in place and returns the tag: errors only on absurd lengths.
    let tag = key
        .key
        .seal_in_place_separate_tag(key.nonce(&iv), Aad::from(&aad), &mut plain)
        .map(|t| t.as_ref().to_vec())
        .unwrap_or_default();
    out.extend_from_slice(&plain);
    out.extend_from_slice(&tag);
    out
}

/// Parses `bytes`, checks and decrypts its Encrypted payload (the last in the chain), and
/// returns the message with the payloads before SK followed by those inside it.
pub fn open(bytes: &[u8], key: &SkKey) -> Result<Message, SkError> {
    let outer = Message::parse(bytes)?;
    let Some(Payload::Sk { first, body }) = outer.payloads.last() else {
        return Err(SkError::NotEncrypted);
    };
    // The SK payload is the last: its generic header starts 4 bytes before its body.
    let sk_start = bytes.len() - body.len() - 4;
    if body.len() < IV_LEN + 1 + ICV_LEN {
        return Err(WireError::Truncated("encrypted payload").into());
    }
    let aad = &bytes[..sk_start + 4];
    let mut iv = [0; IV_LEN];
    iv.copy_from_slice(&body[..IV_LEN]);
    let mut sealed = body[IV_LEN..].to_vec();
    let plain = key
        .key
        .open_in_place(key.nonce(&iv), Aad::from(aad), &mut sealed)
        .map_err(|_| SkError::Integrity)?;
    let (&pad, rest) = plain
        .split_last()
        .ok_or(WireError::Truncated("pad length"))?;
    let chain_len = rest
        .len()
        .checked_sub(usize::from(pad))
        .ok_or(WireError::Malformed("padding"))?;
    let inner = parse_chain(*first, &rest[..chain_len])?;
    let mut payloads = outer.payloads;
    payloads.pop();
    payloads.extend(inner);
    Ok(Message {
        header: outer.header,
        payloads,
    })
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
        let keymat: Vec<u8> = (0u8..36).collect();
        let key = SkKey::new(&keymat).unwrap();
        let iv = [0, 0, 0, 0, 0, 0, 0, 1];
        let bytes = seal(&header(), &inner(), &key, iv);
        let m = open(&bytes, &key).unwrap();
        assert_eq!(m.header, header());
        assert_eq!(m.payloads, inner());

        // The `aes-gcm` crate, with the nonce and associated data RFC 5282 prescribes.
        use aes_gcm::aead::{Aead, KeyInit, Payload as P};
        let cipher = aes_gcm::Aes256Gcm::new_from_slice(&keymat[..32]).unwrap();
        let mut nonce = [0u8; 12];
        nonce[..4].copy_from_slice(&keymat[32..]);
        nonce[4..].copy_from_slice(&iv);
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
    fn any_change_to_a_sealed_message_is_refused() {
        let key = SkKey::new(&[7u8; 20]).unwrap();
        let bytes = seal(&header(), &inner(), &key, [9; 8]);
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
