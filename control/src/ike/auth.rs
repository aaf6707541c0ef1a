//! Pre-shared-key authentication (RFC 7296 section 2.15):
//!
//! ```text
//! AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)
//! SignedOctets = RealMessage | Nonce of the other side | prf(SK_p, RestOfIDPayload)
//! ```
//!
//! The initiator signs its IKE_SA_INIT request with the responder's nonce and SK_pi; the
//! responder its response with the initiator's nonce and SK_pr. `RestOfIDPayload` is the ID
//! payload's body: its type, three reserved bytes and the data.

use super::kdf::{Prf, Secret};
use super::wire::Id;

const KEY_PAD: &[u8] = b"Key Pad for IKEv2";

/// What one side signs: its own IKE_SA_INIT message as sent, the peer's nonce, its SK_p and
/// its ID.
pub struct Signed<'a> {
    pub real_message: &'a [u8],
    pub peer_nonce: &'a [u8],
    pub sk_p: &'a [u8],
    pub id: &'a Id,
}

/// The AUTH payload data for a pre-shared key.
pub fn psk_auth(prf: Prf, psk: &[u8], s: &Signed<'_>) -> Secret {
    let id_body = [&[s.id.kind, 0, 0, 0][..], &s.id.data].concat();
    let maced_id = prf.prf(s.sk_p, &[&id_body]);
    let key = prf.prf(psk, &[KEY_PAD]);
    prf.prf(&key, &[s.real_message, s.peer_nonce, &maced_id])
}

/// Whether the peer's AUTH data is what its side would compute (constant time).
pub fn psk_verify(prf: Prf, psk: &[u8], s: &Signed<'_>, auth: &[u8]) -> bool {
    let want = psk_auth(prf, psk, s);
    want.len() == auth.len() && want.iter().zip(auth).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> Id {
        Id {
            kind: 2,
            data: b"gw1.example".to_vec(),
        }
    }

    #[test]
    fn auth_binds_the_key_the_message_the_nonce_and_the_id() {
        let p = Prf::HmacSha256;
        let (msg, nonce, sk_p, psk) = (b"IKE_SA_INIT bytes", [7u8; 32], [1u8; 32], b"secret");
        let i = id();
        let s = Signed {
            real_message: msg,
            peer_nonce: &nonce,
            sk_p: &sk_p,
            id: &i,
        };
        let auth = psk_auth(p, psk, &s);
        // The composition RFC 7296 section 2.15 writes, step by step.
        let maced = p.prf(&sk_p, &[&[2, 0, 0, 0], b"gw1.example"]);
        let key = p.prf(psk, &[b"Key Pad for IKEv2"]);
        assert_eq!(*auth, *p.prf(&key, &[msg, &nonce, &maced]));
        assert!(psk_verify(p, psk, &s, &auth));
        // Any other key, message, nonce or ID: another AUTH.
        assert!(!psk_verify(p, b"Secret", &s, &auth));
        let other = Id {
            kind: 2,
            data: b"gw2.example".to_vec(),
        };
        let s2 = Signed { id: &other, ..s };
        assert!(!psk_verify(p, psk, &s2, &auth));
        let s3 = Signed {
            peer_nonce: &[8u8; 32],
            id: &i,
            ..s2
        };
        assert!(!psk_verify(p, psk, &s3, &auth));
        assert!(!psk_verify(p, psk, &s, &auth[..31]));
    }
}
