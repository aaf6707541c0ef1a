//! AUTH (RFC 7296 section 2.15): each side proves it holds its key over what it sent in
//! IKE_SA_INIT, with a pre-shared key or a signature:
//!
//! ```text
//! AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)   (shared key)
//! AUTH = signature over <SignedOctets> by the private key of the CERT sent (certificate)
//! SignedOctets = RealMessage | Nonce of the other side | prf(SK_p, RestOfIDPayload)
//! ```
//!
//! The initiator signs its IKE_SA_INIT request with the responder's nonce and SK_pi; the
//! responder its response with the initiator's nonce and SK_pr. `RestOfIDPayload` is the ID
//! payload's body: its type, three reserved bytes and the data.

use super::identity::Identity;
use super::kdf::{Prf, Secret};
use super::pki::{Credential, Trust, X509_SIGNATURE};
use super::signature;
use super::wire::{Id, Payload};
use std::sync::Arc;
use zeroize::Zeroizing;

const KEY_PAD: &[u8] = b"Key Pad for IKEv2";
/// RFC 7296 section 3.8: shared key message integrity code.
pub const AUTH_PSK: u8 = 2;

/// How a gateway's peers authenticate, both ways: one pre-shared key, or certificates (ours
/// with its key, and the CAs a peer's must chain to).
#[derive(Clone)]
pub enum Auth {
    /// Wiped from memory when dropped.
    Psk(Zeroizing<Vec<u8>>),
    Certificate {
        ours: Arc<Credential>,
        trust: Arc<Trust>,
    },
}

/// What one side signs: its own IKE_SA_INIT message as sent, the peer's nonce, its SK_p and
/// its ID.
pub struct Signed<'a> {
    pub real_message: &'a [u8],
    pub peer_nonce: &'a [u8],
    pub sk_p: &'a [u8],
    pub id: &'a Id,
}

impl Signed<'_> {
    /// The octets a signature covers (and a pre-shared key MACs).
    pub fn octets(&self, prf: Prf) -> Zeroizing<Vec<u8>> {
        let id_body = [&[self.id.kind, 0, 0, 0][..], &self.id.data].concat();
        let maced_id = prf.prf(self.sk_p, &[&id_body]);
        Zeroizing::new([self.real_message, self.peer_nonce, &maced_id].concat())
    }
}

/// The AUTH payload data for a pre-shared key.
pub fn psk_auth(prf: Prf, psk: &[u8], s: &Signed<'_>) -> Secret {
    let key = prf.prf(psk, &[KEY_PAD]);
    prf.prf(&key, &[&s.octets(prf)])
}

/// Whether the peer's AUTH data is what its side would compute (constant time).
pub fn psk_verify(prf: Prf, psk: &[u8], s: &Signed<'_>, auth: &[u8]) -> bool {
    let want = psk_auth(prf, psk, s);
    want.len() == auth.len() && want.iter().zip(auth).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0
}

/// What the peer sent to prove itself: its AUTH, and its certificates (its own first).
pub struct Proof<'a> {
    pub method: u8,
    pub data: &'a [u8],
    pub certs: Vec<&'a [u8]>,
}

impl<'a> Proof<'a> {
    /// The AUTH and X.509 CERT payloads of a message.
    pub fn of(payloads: &'a [Payload]) -> Option<Proof<'a>> {
        let mut auth = None;
        let mut certs = Vec::new();
        for p in payloads {
            match p {
                Payload::Auth { method, data } => auth = Some((*method, &data[..])),
                Payload::Cert {
                    encoding: X509_SIGNATURE,
                    data,
                } => certs.push(&data[..]),
                _ => {}
            }
        }
        let (method, data) = auth?;
        Some(Proof {
            method,
            data,
            certs,
        })
    }
}

impl Auth {
    /// Our ID when the configuration names none: the certificate's subject.
    pub fn certificate_subject(&self) -> Option<&Id> {
        match self {
            Auth::Psk(_) => None,
            Auth::Certificate { ours, .. } => Some(&ours.subject),
        }
    }

    /// The CERTREQ payload that asks the peer for a certificate from our CAs.
    pub fn certreq(&self) -> Option<Payload> {
        match self {
            Auth::Psk(_) => None,
            Auth::Certificate { trust, .. } => Some(Payload::CertReq {
                encoding: X509_SIGNATURE,
                data: trust.certreq.clone(),
            }),
        }
    }

    /// Our CERT payloads (none with a pre-shared key) and AUTH payload, for a peer that
    /// verifies `peer_hashes` (RFC 7427).
    pub fn prove(
        &self,
        prf: Prf,
        s: &Signed<'_>,
        peer_hashes: &[u16],
    ) -> Result<Vec<Payload>, String> {
        match self {
            Auth::Psk(psk) => Ok(vec![Payload::Auth {
                method: AUTH_PSK,
                data: psk_auth(prf, psk, s).to_vec(),
            }]),
            Auth::Certificate { ours, .. } => {
                let (method, data) = signature::sign(&ours.key, peer_hashes, &s.octets(prf))?;
                let mut out: Vec<Payload> = ours
                    .chain
                    .iter()
                    .map(|c| Payload::Cert {
                        encoding: X509_SIGNATURE,
                        data: c.clone(),
                    })
                    .collect();
                out.push(Payload::Auth { method, data });
                Ok(out)
            }
        }
    }

    /// Checks the peer's proof for `s` (its side's signed octets): the key, or a certificate
    /// chaining to our CAs that names `remote` and whose key made the signature.
    pub fn check(
        &self,
        prf: Prf,
        s: &Signed<'_>,
        proof: &Proof<'_>,
        remote: &Identity,
    ) -> Result<(), String> {
        match self {
            Auth::Psk(psk) => {
                if proof.method != AUTH_PSK {
                    return Err(format!("AUTH method {}, not a shared key", proof.method));
                }
                if !psk_verify(prf, psk, s, proof.data) {
                    return Err("wrong pre-shared key".into());
                }
                Ok(())
            }
            Auth::Certificate { trust, .. } => {
                if proof.method == AUTH_PSK {
                    return Err(format!(
                        "AUTH method {AUTH_PSK} (a shared key) where a certificate is required"
                    ));
                }
                let key = trust.verify(&proof.certs)?;
                let own = proof.certs.first().copied().unwrap_or_default();
                if !remote.certified_by(own) {
                    return Err(format!("the certificate does not name {remote}"));
                }
                signature::verify(&key, proof.method, proof.data, &s.octets(prf))
            }
        }
    }
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
