//! Signature AUTH (RFC 7296 section 2.15 and 3.8; RFC 4754 ECDSA; RFC 7427 digital
//! signatures): what each side signs is the same octets a pre-shared key MACs
//! (`auth::Signed::octets`).
//!
//! With RFC 7427 (both sides sent SIGNATURE_HASH_ALGORITHMS in IKE_SA_INIT) the AUTH data
//! names its algorithm: one length octet, the ASN.1 AlgorithmIdentifier, the signature. We
//! sign that way whenever the peer can read it. Without it, ECDSA keys use methods 9/10 (r || s
//! over SHA-256/384) and RSA keys method 1, PKCS#1 v1.5 over SHA-1 (RFC 8247 keeps it a MUST):
//! ring signs no SHA-1, so that one signature is OpenSSL's (the pure-Rust RSA signer has an
//! open timing advisory, RUSTSEC-2023-0071).

use super::pki::{KeyKind, PeerKey, SigningKey};
use ring::rand::SystemRandom;
use ring::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};

/// AUTH methods (RFC 7296 section 3.8, RFC 4754, RFC 7427).
pub const AUTH_RSA: u8 = 1;
pub const AUTH_ECDSA_256: u8 = 9;
pub const AUTH_ECDSA_384: u8 = 10;
pub const AUTH_DIGITAL_SIGNATURE: u8 = 14;

/// The IKE_SA_INIT notification listing the hashes a side verifies (RFC 7427 section 4),
/// and those hashes (RFC 7427 section 7): SHA2-256, SHA2-384, SHA2-512.
pub const SIGNATURE_HASH_ALGORITHMS: u16 = 16431;
pub const HASH_SHA256: u16 = 2;
pub const HASH_SHA384: u16 = 3;
pub const HASH_SHA512: u16 = 4;
pub const OUR_HASHES: [u16; 3] = [HASH_SHA256, HASH_SHA384, HASH_SHA512];

/// AlgorithmIdentifiers as RFC 7427 Appendix A writes them (DER).
const RSA_SHA256: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00,
];
const RSA_SHA384: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c, 0x05, 0x00,
];
const RSA_SHA512: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d, 0x05, 0x00,
];
const ECDSA_SHA256: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];
const ECDSA_SHA384: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
];

/// Signs `octets` for a peer that verifies `peer_hashes` (empty: no RFC 7427): the AUTH
/// method and data.
pub fn sign(key: &SigningKey, peer_hashes: &[u16], octets: &[u8]) -> Result<(u8, Vec<u8>), String> {
    let rng = SystemRandom::new();
    let failed = |_| "signing failed".to_string();
    let rfc7427 = |alg: &[u8], signature: &[u8]| {
        let mut data = Vec::with_capacity(1 + alg.len() + signature.len());
        data.push(alg.len() as u8);
        data.extend_from_slice(alg);
        data.extend_from_slice(signature);
        (AUTH_DIGITAL_SIGNATURE, data)
    };
    match key {
        SigningKey::Rsa { key, sha1 } => {
            let (alg, padding): (&[u8], &'static dyn sig::RsaEncoding) =
                if peer_hashes.contains(&HASH_SHA256) {
                    (RSA_SHA256, &sig::RSA_PKCS1_SHA256)
                } else if peer_hashes.contains(&HASH_SHA384) {
                    (RSA_SHA384, &sig::RSA_PKCS1_SHA384)
                } else if peer_hashes.contains(&HASH_SHA512) {
                    (RSA_SHA512, &sig::RSA_PKCS1_SHA512)
                } else {
                    // No RFC 7427: AUTH method 1, PKCS#1 v1.5 over SHA-1 (RFC 7296 section 3.8).
                    return sign_sha1(sha1, octets).map(|s| (AUTH_RSA, s));
                };
            let mut s = vec![0; key.public().modulus_len()];
            key.sign(padding, &rng, octets, &mut s).map_err(failed)?;
            Ok(rfc7427(alg, &s))
        }
        SigningKey::Ecdsa { kind, fixed, asn1 } => {
            let (hash, alg, method) = match kind {
                KeyKind::P384 => (HASH_SHA384, ECDSA_SHA384, AUTH_ECDSA_384),
                _ => (HASH_SHA256, ECDSA_SHA256, AUTH_ECDSA_256),
            };
            if peer_hashes.contains(&hash) {
                let s = asn1.sign(&rng, octets).map_err(failed)?;
                Ok(rfc7427(alg, s.as_ref()))
            } else {
                let s = fixed.sign(&rng, octets).map_err(failed)?;
                Ok((method, s.as_ref().to_vec()))
            }
        }
    }
}

/// An RSA PKCS#1 v1.5 signature over SHA-1 of `octets`: OpenSSL's (blinded), which ring will
/// not make.
fn sign_sha1(
    key: &openssl::pkey::PKeyRef<openssl::pkey::Private>,
    octets: &[u8],
) -> Result<Vec<u8>, String> {
    let mut s = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha1(), key)
        .map_err(|e| format!("signing failed: {e}"))?;
    s.update(octets)
        .map_err(|e| format!("signing failed: {e}"))?;
    s.sign_to_vec().map_err(|e| format!("signing failed: {e}"))
}

/// Checks the peer's AUTH (`method`, `data`) over `octets` with the key of its certificate.
pub fn verify(peer: &PeerKey, method: u8, data: &[u8], octets: &[u8]) -> Result<(), String> {
    let (alg, signature): (&'static dyn VerificationAlgorithm, &[u8]) = match (method, peer.kind) {
        (AUTH_RSA, KeyKind::Rsa) => (&sig::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, data),
        (AUTH_ECDSA_256, KeyKind::P256) => (&sig::ECDSA_P256_SHA256_FIXED, data),
        (AUTH_ECDSA_384, KeyKind::P384) => (&sig::ECDSA_P384_SHA384_FIXED, data),
        (AUTH_DIGITAL_SIGNATURE, kind) => {
            let (&len, rest) = data.split_first().ok_or("empty AUTH data")?;
            let (alg_id, signature) = rest
                .split_at_checked(usize::from(len))
                .ok_or("AUTH data shorter than its algorithm")?;
            (rfc7427_algorithm(alg_id, kind)?, signature)
        }
        (m, kind) => return Err(format!("AUTH method {m} with a {kind:?} key")),
    };
    UnparsedPublicKey::new(alg, &peer.public_key)
        .verify(octets, signature)
        .map_err(|_| "the signature does not verify".to_string())
}

/// The verification an RFC 7427 AlgorithmIdentifier names for a key of `kind`. RSA's may
/// come without the NULL parameters some implementations leave out.
fn rfc7427_algorithm(
    alg_id: &[u8],
    kind: KeyKind,
) -> Result<&'static dyn VerificationAlgorithm, String> {
    let rsa = |full: &[u8]| {
        alg_id == full || (alg_id.len() == 13 && alg_id[2..] == full[2..13] && alg_id[1] == 0x0b)
    };
    Ok(match kind {
        KeyKind::Rsa if rsa(RSA_SHA256) => &sig::RSA_PKCS1_2048_8192_SHA256,
        KeyKind::Rsa if rsa(RSA_SHA384) => &sig::RSA_PKCS1_2048_8192_SHA384,
        KeyKind::Rsa if rsa(RSA_SHA512) => &sig::RSA_PKCS1_2048_8192_SHA512,
        KeyKind::P256 if alg_id == ECDSA_SHA256 => &sig::ECDSA_P256_SHA256_ASN1,
        KeyKind::P256 if alg_id == ECDSA_SHA384 => &sig::ECDSA_P256_SHA384_ASN1,
        KeyKind::P384 if alg_id == ECDSA_SHA256 => &sig::ECDSA_P384_SHA256_ASN1,
        KeyKind::P384 if alg_id == ECDSA_SHA384 => &sig::ECDSA_P384_SHA384_ASN1,
        _ => {
            return Err(format!(
                "signature algorithm {} with a {kind:?} key",
                hex::encode(alg_id)
            ))
        }
    })
}
