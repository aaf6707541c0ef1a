//! X.509 for IKE (RFC 7296 sections 3.6-3.7, RFC 4945): our certificate chain and private
//! key, the CAs we trust for a peer, and the check of a peer's chain. The ASN.1 is the
//! crates': `x509-parser` reads certificates, `rustls-webpki` builds and checks the path to a
//! trust anchor (signatures, validity, basic constraints, name constraints), `sec1`/ring read
//! private keys.

use super::wire::Id;
use pki_types::pem::PemObject;
use pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use std::fmt;
use webpki::{EndEntityCert, KeyPurposeId, KeyPurposeIdIter};
use x509_parser::prelude::{FromDer, X509Certificate};
use zeroize::Zeroizing;

/// CERT and CERTREQ encoding 4: an X.509 certificate (signature), DER.
pub const X509_SIGNATURE: u8 = 4;
/// Certificates accepted from a peer in one IKE_AUTH (its own and intermediates).
pub const MAX_CHAIN: usize = 8;

/// OIDs (DER value bytes).
const OID_PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_SECP384R1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";

/// A public key's algorithm, as AUTH methods need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    P256,
    P384,
}

/// Our side: the certificate sent first, the intermediates after it, and the private key.
/// Its `Debug` shows the subject, never the key.
pub struct Credential {
    /// DER, our certificate first.
    pub chain: Vec<Vec<u8>>,
    /// Our ID when none is configured: the certificate's subject (ID_DER_ASN1_DN).
    pub subject: Id,
    pub key: SigningKey,
}

/// A private key ready to sign. ECDSA keeps both encodings' signers: RFC 4754 methods sign
/// r || s, RFC 7427 an ASN.1 signature. RSA keeps ring's signer for RFC 7427's SHA-2 and
/// OpenSSL's for AUTH method 1's SHA-1, which ring does not make (OpenSSL clears the key's
/// numbers when it frees them).
#[allow(clippy::large_enum_variant)] // one per gateway, behind an Arc: size is no matter
pub enum SigningKey {
    Rsa {
        key: RsaKeyPair,
        sha1: openssl::pkey::PKey<openssl::pkey::Private>,
    },
    Ecdsa {
        kind: KeyKind,
        fixed: EcdsaKeyPair,
        asn1: EcdsaKeyPair,
    },
}

impl SigningKey {
    pub fn kind(&self) -> KeyKind {
        match self {
            SigningKey::Rsa { .. } => KeyKind::Rsa,
            SigningKey::Ecdsa { kind, .. } => *kind,
        }
    }

    fn public_key(&self) -> &[u8] {
        match self {
            SigningKey::Rsa { key, .. } => key.public_key().as_ref(),
            SigningKey::Ecdsa { fixed, .. } => fixed.public_key().as_ref(),
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("certificates", &self.chain.len())
            .field("key", &self.key.kind())
            .finish()
    }
}

/// The CAs a peer's certificate must chain to.
#[derive(Debug)]
pub struct Trust {
    anchors: Vec<Vec<u8>>,
    /// What a CERTREQ names: the SHA-1 hash of each CA's SubjectPublicKeyInfo.
    pub certreq: Vec<u8>,
}

/// The peer's public key, from a certificate that chains to a trusted CA.
#[derive(Debug, Clone)]
pub struct PeerKey {
    pub kind: KeyKind,
    /// RSAPublicKey (DER) or the uncompressed EC point: what ring verifies with.
    pub public_key: Vec<u8>,
}

/// Every certificate of a PEM file, in order.
fn certificates(path: &str) -> Result<Vec<Vec<u8>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{path}: {e}"))?
        .map(|c| c.map(|c| c.as_ref().to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{path}: no CERTIFICATE in it"));
    }
    for c in &certs {
        X509Certificate::from_der(c).map_err(|e| format!("{path}: {e}"))?;
    }
    Ok(certs)
}

/// The key kind and public key bytes of a certificate's SubjectPublicKeyInfo.
fn public_key_of(cert_der: &[u8]) -> Result<PeerKey, String> {
    let (_, cert) = X509Certificate::from_der(cert_der).map_err(|e| e.to_string())?;
    let spki = cert.public_key();
    let kind = match spki.algorithm.algorithm.to_id_string().as_str() {
        OID_RSA_ENCRYPTION => KeyKind::Rsa,
        OID_EC_PUBLIC_KEY => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.as_bytes().to_vec());
            match curve.as_deref() {
                Some(OID_PRIME256V1) => KeyKind::P256,
                Some(OID_SECP384R1) => KeyKind::P384,
                _ => return Err("an EC key on a curve other than P-256 or P-384".into()),
            }
        }
        other => return Err(format!("a public key of algorithm {other}")),
    };
    Ok(PeerKey {
        kind,
        public_key: spki.subject_public_key.data.to_vec(),
    })
}

/// Loads our certificate (and the intermediates after it in the same file) and the private
/// key (PKCS#8, PKCS#1 RSA or SEC1 EC; a file only its owner can read), and checks that the
/// key is the certificate's.
pub fn load_credential(cert_path: &str, key_path: &str) -> Result<Credential, String> {
    let chain = certificates(cert_path)?;
    let ours = chain
        .first()
        .ok_or_else(|| format!("{cert_path}: no certificate"))?;
    let subject =
        super::identity::subject_id(ours).ok_or_else(|| format!("{cert_path}: no subject"))?;
    let pem = Zeroizing::new(std::fs::read(key_path).map_err(|e| format!("{key_path}: {e}"))?);
    let der = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| format!("{key_path}: {e}"))?;
    let key = signing_key(&der).map_err(|e| format!("{key_path}: {e}"))?;
    let cert_key = public_key_of(ours).map_err(|e| format!("{cert_path}: {e}"))?;
    if cert_key.kind != key.kind() || cert_key.public_key != key.public_key() {
        return Err(format!(
            "{key_path} is not the private key of the certificate in {cert_path}"
        ));
    }
    Ok(Credential {
        chain,
        subject,
        key,
    })
}

fn signing_key(der: &PrivateKeyDer<'_>) -> Result<SigningKey, String> {
    let rng = SystemRandom::new();
    let ecdsa =
        |kind, load: &dyn Fn(&'static signature::EcdsaSigningAlgorithm) -> Option<EcdsaKeyPair>| {
            let (fixed, asn1) = match kind {
                KeyKind::P384 => (
                    &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
                    &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                ),
                _ => (
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                ),
            };
            Some(SigningKey::Ecdsa {
                kind,
                fixed: load(fixed)?,
                asn1: load(asn1)?,
            })
        };
    match der {
        PrivateKeyDer::Pkcs1(k) => {
            let d = k.secret_pkcs1_der();
            let key = RsaKeyPair::from_der(d).map_err(|e| format!("RSA key: {e}"))?;
            let sha1 = openssl::rsa::Rsa::private_key_from_der(d)
                .and_then(openssl::pkey::PKey::from_rsa)
                .map_err(|e| format!("RSA key: {e}"))?;
            Ok(SigningKey::Rsa { key, sha1 })
        }
        PrivateKeyDer::Pkcs8(k) => {
            let d = k.secret_pkcs8_der();
            if let Ok(key) = RsaKeyPair::from_pkcs8(d) {
                let sha1 = openssl::pkey::PKey::private_key_from_pkcs8(d)
                    .map_err(|e| format!("RSA key: {e}"))?;
                return Ok(SigningKey::Rsa { key, sha1 });
            }
            [KeyKind::P256, KeyKind::P384]
                .into_iter()
                .find_map(|kind| ecdsa(kind, &|alg| EcdsaKeyPair::from_pkcs8(alg, d, &rng).ok()))
                .ok_or_else(|| "a PKCS#8 key that is not RSA, P-256 or P-384".into())
        }
        PrivateKeyDer::Sec1(k) => {
            use sec1::der::Decode;
            let ec = sec1::EcPrivateKey::from_der(k.secret_sec1_der())
                .map_err(|e| format!("EC key: {e}"))?;
            let curve = ec
                .parameters
                .and_then(|p| p.named_curve())
                .map(|o| o.as_bytes().to_vec());
            let kind = match curve.as_deref() {
                Some(OID_PRIME256V1) => KeyKind::P256,
                Some(OID_SECP384R1) => KeyKind::P384,
                _ => return Err("an EC key on a curve other than P-256 or P-384".into()),
            };
            let public = ec
                .public_key
                .ok_or("an EC key without its public key (write it as PKCS#8)")?;
            ecdsa(kind, &|alg| {
                EcdsaKeyPair::from_private_key_and_public_key(alg, ec.private_key, public, &rng)
                    .ok()
            })
            .ok_or_else(|| "an EC key ring refuses".into())
        }
        _ => Err("an unsupported private key format".into()),
    }
}

/// Loads the trusted CAs (every certificate in each file).
pub fn load_trust(paths: &[String]) -> Result<Trust, String> {
    let mut anchors = Vec::new();
    let mut certreq = Vec::new();
    for p in paths {
        for a in certificates(p)? {
            let c = CertificateDer::from(a.as_slice());
            webpki::anchor_from_trusted_cert(&c).map_err(|e| format!("{p}: {e:?}"))?;
            let (_, cert) = X509Certificate::from_der(&a).map_err(|e| format!("{p}: {e}"))?;
            let h = ring::digest::digest(
                &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
                cert.public_key().raw,
            );
            certreq.extend_from_slice(h.as_ref());
            anchors.push(a);
        }
    }
    Ok(Trust { anchors, certreq })
}

/// The certificate uses IKE accepts (RFC 4945 section 5.1.3.12): none said, or IKE, any
/// purpose, or the TLS ones CAs often issue gateway certificates for.
struct IkeUsage;

const EKU_OK: &[&[u8]] = &[
    &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x11], // id-kp-ipsecIKE
    &[0x55, 0x1d, 0x25, 0x00],                         // anyExtendedKeyUsage
    &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01], // serverAuth
    &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02], // clientAuth
];

impl webpki::ExtendedKeyUsageValidator for IkeUsage {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let mut present = Vec::new();
        for id in iter {
            let id = id?;
            if EKU_OK.iter().any(|ok| id == KeyPurposeId::new(ok)) {
                return Ok(());
            }
            present.push(id.to_decoded_oid());
        }
        if present.is_empty() {
            return Ok(());
        }
        Err(webpki::Error::RequiredEkuNotFoundContext(
            webpki::RequiredEkuNotFoundContext {
                required: webpki::KeyUsage::required(EKU_OK[0]),
                present,
            },
        ))
    }
}

/// Signature algorithms accepted on certificates.
static CERT_ALGS: &[&dyn pki_types::SignatureVerificationAlgorithm] = &[
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P256_SHA384,
    webpki::ring::ECDSA_P384_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::ED25519,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512,
    webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
];

impl Trust {
    /// The peer's key, if `chain` (its certificate first, then intermediates in any order)
    /// leads to one of our CAs and every certificate on the way is valid now.
    pub fn verify(&self, chain: &[&[u8]]) -> Result<PeerKey, String> {
        let Some((ee, intermediates)) = chain.split_first() else {
            return Err("no certificate".into());
        };
        if chain.len() > MAX_CHAIN {
            return Err(format!("{} certificates", chain.len()));
        }
        let anchors = self
            .anchors
            .iter()
            .map(|a| CertificateDer::from(a.as_slice()))
            .collect::<Vec<_>>();
        let anchors = anchors
            .iter()
            .filter_map(|c| webpki::anchor_from_trusted_cert(c).ok())
            .collect::<Vec<_>>();
        let ee_der = CertificateDer::from(*ee);
        let cert = EndEntityCert::try_from(&ee_der).map_err(|e| format!("{e:?}"))?;
        let inter = intermediates
            .iter()
            .map(|c| CertificateDer::from(*c))
            .collect::<Vec<_>>();
        cert.verify_for_usage(
            CERT_ALGS,
            &anchors,
            &inter,
            UnixTime::now(),
            IkeUsage,
            None,
            None,
        )
        .map_err(|e| format!("certificate not trusted: {e:?}"))?;
        public_key_of(ee)
    }
}
