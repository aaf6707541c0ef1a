//! The IKE SA's keys (RFC 7296 sections 2.13, 2.14, 2.18): what the chosen proposal means
//! (`Suite`), SKEYSEED and the seven keys from prf+, and the keys of a rekeyed IKE SA.

use super::InitError;
use crate::ike::dh::Group;
use crate::ike::kdf::{Prf, Secret};
use crate::ike::sk::{Integrity, SkError, SkKey};
use crate::ike::wire::{Proposal, TransformType};

/// The keys of an IKE SA (RFC 7296 section 2.14); SK_ai and SK_ar are empty with AES-GCM.
pub struct IkeKeys {
    pub prf: Prf,
    pub integrity: Option<Integrity>,
    pub sk_d: Secret,
    pub sk_ai: Secret,
    pub sk_ar: Secret,
    pub sk_ei: Secret,
    pub sk_er: Secret,
    pub sk_pi: Secret,
    pub sk_pr: Secret,
}

impl IkeKeys {
    /// The Encrypted payload's keys for what the initiator (`true`) or the responder sends.
    pub fn sk(&self, from_initiator: bool) -> Result<SkKey, SkError> {
        let (e, a) = if from_initiator {
            (&self.sk_ei, &self.sk_ai)
        } else {
            (&self.sk_er, &self.sk_ar)
        };
        match self.integrity {
            None => SkKey::new(e),
            Some(i) => SkKey::cbc(e, i, a),
        }
    }
}

/// What the chosen proposal says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suite {
    pub prf: Prf,
    pub group: Group,
    /// HMAC for AES-CBC; `None` with AES-GCM.
    pub integrity: Option<Integrity>,
    /// Bytes of SK_e: the AES key (and the 4-byte salt with GCM).
    pub sk_e_len: usize,
}

/// What an IKE proposal the responder chose means.
pub fn suite(p: &Proposal) -> Result<Suite, InitError> {
    use crate::ike::proposal::id;
    let find = |k: TransformType| p.transforms.iter().find(|t| t.kind == k);
    let enc = find(TransformType::Encryption).ok_or(InitError::Malformed("no cipher"))?;
    let bits = enc
        .key_length()
        .ok_or(InitError::Malformed("no key length"))?;
    if !(bits == 128 || bits == 256) {
        return Err(InitError::NoProposalChosen);
    }
    let integ = find(TransformType::Integrity).map(|t| Integrity::from_id(t.id));
    let (integrity, sk_e_len) = match (enc.id, integ) {
        (id::ENCR_AES_GCM_16, None) => (None, usize::from(bits) / 8 + 4),
        (id::ENCR_AES_CBC, Some(Some(i))) => (Some(i), usize::from(bits) / 8),
        _ => return Err(InitError::NoProposalChosen),
    };
    let prf = find(TransformType::Prf)
        .and_then(|t| Prf::from_id(t.id))
        .ok_or(InitError::NoProposalChosen)?;
    let group = find(TransformType::DhGroup)
        .map(|t| Group::from_id(t.id))
        .ok_or(InitError::Malformed("no DH group"))??;
    Ok(Suite {
        prf,
        group,
        integrity,
        sk_e_len,
    })
}

pub(super) fn derive(
    s: Suite,
    ni: &[u8],
    nr: &[u8],
    gir: &[u8],
    spi_i: u64,
    spi_r: u64,
) -> IkeKeys {
    let skeyseed = s.prf.skeyseed(ni, nr, gir);
    keys_from(s, &skeyseed, ni, nr, spi_i, spi_r)
}

/// The keys of an IKE SA made by rekeying `old` (RFC 7296 section 2.18): SKEYSEED =
/// prf(SK_d (old), g^ir (new) | Ni | Nr) with the old SA's PRF (the rekey belongs to it),
/// then the new SA's keys from it with the new SA's suite and SPIs.
pub fn rekeyed(
    old: &IkeKeys,
    s: Suite,
    ni: &[u8],
    nr: &[u8],
    gir: &[u8],
    spi_i: u64,
    spi_r: u64,
) -> IkeKeys {
    let skeyseed = old.prf.rekey_skeyseed(&old.sk_d, gir, ni, nr);
    keys_from(s, &skeyseed, ni, nr, spi_i, spi_r)
}

fn keys_from(s: Suite, skeyseed: &[u8], ni: &[u8], nr: &[u8], spi_i: u64, spi_r: u64) -> IkeKeys {
    let p = s.prf.output_len();
    let a = s.integrity.map_or(0, |i| i.key_len());
    let len = 3 * p + 2 * a + 2 * s.sk_e_len;
    // prf+ never refuses these few blocks.
    let km = s
        .prf
        .ike_keys(skeyseed, ni, nr, spi_i, spi_r, len)
        .unwrap_or_default();
    let mut at = 0;
    let mut take = |n: usize| {
        let v = secret(km.get(at..at + n).unwrap_or_default());
        at += n;
        v
    };
    IkeKeys {
        prf: s.prf,
        integrity: s.integrity,
        sk_d: take(p),
        sk_ai: take(a),
        sk_ar: take(a),
        sk_ei: take(s.sk_e_len),
        sk_er: take(s.sk_e_len),
        sk_pi: take(p),
        sk_pr: take(p),
    }
}

fn secret(b: &[u8]) -> Secret {
    zeroize::Zeroizing::new(b.to_vec())
}
