//! Proposals in strongSwan's syntax (`aes256gcm16-prfsha384-ecp384`, `aes128gcm16-esn-x25519`),
//! so that an operator can paste them from a peer's configuration; their SA-payload form; and
//! the responder's choice among a peer's proposals (RFC 7296 section 2.7: the first of the
//! peer's proposals we accept, one transform of each type from it).

use super::wire::{Attribute, Proposal, Protocol, Transform, TransformType};

/// IANA transform IDs this gateway implements.
pub mod id {
    pub const ENCR_AES_CBC: u16 = 12;
    pub const ENCR_AES_GCM_16: u16 = 20;
    pub const PRF_HMAC_SHA2_256: u16 = 5;
    pub const PRF_HMAC_SHA2_384: u16 = 6;
    pub const PRF_HMAC_SHA2_512: u16 = 7;
    pub const AUTH_HMAC_SHA2_256_128: u16 = 12;
    pub const AUTH_HMAC_SHA2_384_192: u16 = 13;
    pub const AUTH_HMAC_SHA2_512_256: u16 = 14;
    pub const MODP_2048: u16 = 14;
    pub const ECP_256: u16 = 19;
    pub const ECP_384: u16 = 20;
    pub const CURVE25519: u16 = 31;
    pub const NO_ESN: u16 = 0;
    pub const ESN: u16 = 1;
}

/// One algorithm: its transform type, ID and key length in bits (encryption only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Algo {
    pub kind: TransformType,
    pub id: u16,
    pub key_bits: Option<u16>,
}

/// A proposal: the algorithms of each type, any of which is acceptable.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProposalSpec {
    pub algos: Vec<Algo>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposalError {
    #[error("unknown algorithm {0:?}")]
    Unknown(String),
    #[error("{0}")]
    Incomplete(&'static str),
    #[error("{0:?} is not something the dataplane does (AES-GCM-16 128 or 256 only)")]
    NotInDataplane(String),
}

fn algo(kind: TransformType, id: u16, key_bits: Option<u16>) -> Algo {
    Algo { kind, id, key_bits }
}

/// One token of the syntax.
fn token(t: &str) -> Option<Vec<Algo>> {
    use id::*;
    use TransformType as T;
    let e = |id, bits| vec![algo(T::Encryption, id, Some(bits))];
    Some(match t {
        "aes128" => e(ENCR_AES_CBC, 128),
        "aes256" => e(ENCR_AES_CBC, 256),
        "aes128gcm16" | "aes128gcm128" => e(ENCR_AES_GCM_16, 128),
        "aes256gcm16" | "aes256gcm128" => e(ENCR_AES_GCM_16, 256),
        "sha256" | "sha2_256" => vec![algo(T::Integrity, AUTH_HMAC_SHA2_256_128, None)],
        "sha384" | "sha2_384" => vec![algo(T::Integrity, AUTH_HMAC_SHA2_384_192, None)],
        "sha512" | "sha2_512" => vec![algo(T::Integrity, AUTH_HMAC_SHA2_512_256, None)],
        "prfsha256" => vec![algo(T::Prf, PRF_HMAC_SHA2_256, None)],
        "prfsha384" => vec![algo(T::Prf, PRF_HMAC_SHA2_384, None)],
        "prfsha512" => vec![algo(T::Prf, PRF_HMAC_SHA2_512, None)],
        "modp2048" => vec![algo(T::DhGroup, MODP_2048, None)],
        "ecp256" => vec![algo(T::DhGroup, ECP_256, None)],
        "ecp384" => vec![algo(T::DhGroup, ECP_384, None)],
        "x25519" | "curve25519" => vec![algo(T::DhGroup, CURVE25519, None)],
        "esn" => vec![algo(T::Esn, ESN, None)],
        "noesn" => vec![algo(T::Esn, NO_ESN, None)],
        _ => return None,
    })
}

fn is_aead(a: &Algo) -> bool {
    a.kind == TransformType::Encryption && a.id == id::ENCR_AES_GCM_16
}

fn parse_tokens(s: &str) -> Result<Vec<Algo>, ProposalError> {
    let mut out: Vec<Algo> = Vec::new();
    for t in s.split('-').map(str::trim).filter(|t| !t.is_empty()) {
        let algos = token(&t.to_ascii_lowercase()).ok_or(ProposalError::Unknown(t.into()))?;
        for a in algos {
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    Ok(out)
}

fn has(algos: &[Algo], kind: TransformType) -> bool {
    algos.iter().any(|a| a.kind == kind)
}

/// An IKE proposal: encryption, a PRF (with a non-AEAD cipher, the integrity algorithm's
/// hash when none is named, as strongSwan does), integrity for CBC, and a DH group.
pub fn parse_ike(s: &str) -> Result<ProposalSpec, ProposalError> {
    let mut algos = parse_tokens(s)?;
    if !has(&algos, TransformType::Encryption) {
        return Err(ProposalError::Incomplete(
            "an IKE proposal needs an encryption algorithm",
        ));
    }
    let aead = algos.iter().any(is_aead);
    let cbc = algos
        .iter()
        .any(|a| a.kind == TransformType::Encryption && !is_aead(a));
    if cbc && !has(&algos, TransformType::Integrity) {
        return Err(ProposalError::Incomplete(
            "AES-CBC needs an integrity algorithm (sha256...)",
        ));
    }
    if aead && !cbc && has(&algos, TransformType::Integrity) {
        return Err(ProposalError::Incomplete(
            "AES-GCM takes no integrity algorithm",
        ));
    }
    if !has(&algos, TransformType::Prf) {
        let prfs: Vec<Algo> = algos
            .iter()
            .filter(|a| a.kind == TransformType::Integrity)
            .map(|a| {
                let id = match a.id {
                    id::AUTH_HMAC_SHA2_384_192 => id::PRF_HMAC_SHA2_384,
                    id::AUTH_HMAC_SHA2_512_256 => id::PRF_HMAC_SHA2_512,
                    _ => id::PRF_HMAC_SHA2_256,
                };
                algo(TransformType::Prf, id, None)
            })
            .collect();
        if prfs.is_empty() {
            return Err(ProposalError::Incomplete(
                "an AEAD IKE proposal names its PRF (prfsha256...)",
            ));
        }
        algos.extend(prfs);
    }
    if !has(&algos, TransformType::DhGroup) {
        return Err(ProposalError::Incomplete(
            "an IKE proposal needs a DH group",
        ));
    }
    if has(&algos, TransformType::Esn) {
        return Err(ProposalError::Incomplete("ESN is for ESP proposals"));
    }
    Ok(ProposalSpec { algos })
}

/// An ESP proposal the dataplane can carry out: AES-GCM-16 with a 128 or 256-bit key, ESN on
/// or off (`noesn` when not named), and a DH group for PFS or none.
pub fn parse_esp(s: &str) -> Result<ProposalSpec, ProposalError> {
    let mut algos = parse_tokens(s)?;
    for a in &algos {
        let ok = match a.kind {
            TransformType::Encryption => is_aead(a),
            TransformType::Integrity | TransformType::Prf => false,
            _ => true,
        };
        if !ok {
            return Err(ProposalError::NotInDataplane(s.into()));
        }
    }
    if !has(&algos, TransformType::Encryption) {
        return Err(ProposalError::Incomplete(
            "an ESP proposal needs aes128gcm16 or aes256gcm16",
        ));
    }
    if !has(&algos, TransformType::Esn) {
        algos.push(algo(TransformType::Esn, id::NO_ESN, None));
    }
    Ok(ProposalSpec { algos })
}

impl ProposalSpec {
    /// As an SA payload proposal.
    pub fn to_wire(&self, number: u8, protocol: Protocol, spi: Vec<u8>) -> Proposal {
        Proposal {
            number,
            protocol,
            spi,
            transforms: self
                .algos
                .iter()
                .map(|a| Transform {
                    kind: a.kind,
                    id: a.id,
                    attributes: a
                        .key_bits
                        .map(|b| Attribute::Tv {
                            kind: super::wire::KEY_LENGTH,
                            value: b,
                        })
                        .into_iter()
                        .collect(),
                })
                .collect(),
        }
    }

    /// The proposal with no DH group: a child SA made in IKE_AUTH has no key exchange of its
    /// own (RFC 7296 section 1.2), PFS applies from its first rekey on.
    pub fn without_dh(&self) -> ProposalSpec {
        ProposalSpec {
            algos: self
                .algos
                .iter()
                .filter(|a| a.kind != TransformType::DhGroup)
                .copied()
                .collect(),
        }
    }

    /// Its first DH group, if it has one.
    pub fn dh_group(&self) -> Option<u16> {
        self.algos
            .iter()
            .find(|a| a.kind == TransformType::DhGroup)
            .map(|a| a.id)
    }

    fn accepts(&self, t: &Transform) -> bool {
        self.algos
            .iter()
            .any(|a| a.kind == t.kind && a.id == t.id && a.key_bits == t.key_length())
    }

    fn kinds(&self) -> Vec<TransformType> {
        let mut k: Vec<TransformType> = Vec::new();
        for a in &self.algos {
            if !k.contains(&a.kind) {
                k.push(a.kind);
            }
        }
        k
    }
}

/// The responder's choice: the first of the peer's proposals (for `protocol`) from which one
/// of our proposals accepts a transform of every type it has, and nothing of a type it lacks;
/// that proposal with exactly one transform per type. `None`: NO_PROPOSAL_CHOSEN.
pub fn select(ours: &[ProposalSpec], theirs: &[Proposal], protocol: Protocol) -> Option<Proposal> {
    for p in theirs.iter().filter(|p| p.protocol == protocol) {
        for o in ours {
            let kinds = o.kinds();
            if p.transforms.iter().any(|t| !kinds.contains(&t.kind)) {
                continue;
            }
            let chosen: Option<Vec<Transform>> = kinds
                .iter()
                .map(|k| {
                    p.transforms
                        .iter()
                        .find(|t| t.kind == *k && o.accepts(t))
                        .cloned()
                })
                .collect();
            if let Some(transforms) = chosen {
                return Some(Proposal {
                    number: p.number,
                    protocol: p.protocol,
                    spi: p.spi.clone(),
                    transforms,
                });
            }
        }
    }
    None
}

/// Whether `chosen`, a responder's answer, is a choice from `ours`: one transform of each
/// type one of our proposals has, each one we accept (in any order).
pub fn is_choice(ours: &[ProposalSpec], chosen: &Proposal, protocol: Protocol) -> bool {
    let key = |t: &Transform| (t.kind.to_u8(), t.id, t.key_length());
    let Some(ok) = select(ours, std::slice::from_ref(chosen), protocol) else {
        return false;
    };
    let mut a: Vec<_> = ok.transforms.iter().map(key).collect();
    let mut b: Vec<_> = chosen.transforms.iter().map(key).collect();
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strongswan_proposal_strings_parse_as_strongswan_means_them() {
        let p = parse_ike("aes256gcm16-prfsha384-ecp384").unwrap();
        assert_eq!(
            p.algos,
            [
                algo(TransformType::Encryption, 20, Some(256)),
                algo(TransformType::Prf, 6, None),
                algo(TransformType::DhGroup, 20, None),
            ]
        );
        // CBC with integrity: the PRF follows the integrity algorithm's hash.
        let p = parse_ike("aes256-sha512-modp2048").unwrap();
        assert!(p.algos.contains(&algo(TransformType::Prf, 7, None)));
        let e = parse_esp("aes128gcm16-esn-x25519").unwrap();
        assert!(e.algos.contains(&algo(TransformType::Esn, 1, None)));
        assert!(parse_esp("aes256gcm16").unwrap().algos.contains(&algo(
            TransformType::Esn,
            0,
            None
        )));
        assert_eq!(
            parse_esp("aes256-sha256"),
            Err(ProposalError::NotInDataplane("aes256-sha256".into()))
        );
        assert!(matches!(
            parse_ike("aes256gcm16-ecp256"),
            Err(ProposalError::Incomplete(_))
        ));
        assert!(matches!(
            parse_ike("aes256-ecp256"),
            Err(ProposalError::Incomplete(_))
        ));
        assert_eq!(
            parse_ike("3des-md5-modp1024"),
            Err(ProposalError::Unknown("3des".into()))
        );
    }

    #[test]
    fn the_responder_takes_the_first_acceptable_proposal_one_transform_each() {
        let ours = [parse_ike("aes128gcm16-aes256gcm16-prfsha256-x25519-ecp256").unwrap()];
        let theirs = [
            // Not acceptable: CBC.
            parse_ike("aes256-sha256-x25519")
                .unwrap()
                .to_wire(1, Protocol::Ike, vec![]),
            // Acceptable: several of each type, we take one of each, in our order of types.
            parse_ike("aes256gcm16-aes128gcm16-prfsha384-prfsha256-ecp256-x25519")
                .unwrap()
                .to_wire(2, Protocol::Ike, vec![]),
        ];
        let chosen = select(&ours, &theirs, Protocol::Ike).unwrap();
        assert_eq!(chosen.number, 2);
        let ids: Vec<(TransformType, u16, Option<u16>)> = chosen
            .transforms
            .iter()
            .map(|t| (t.kind, t.id, t.key_length()))
            .collect();
        assert_eq!(
            ids,
            [
                (TransformType::Encryption, 20, Some(256)),
                (TransformType::Prf, 5, None),
                (TransformType::DhGroup, 19, None),
            ]
        );
        // Nothing in common: no proposal chosen.
        let only_modp = [parse_ike("aes128gcm16-prfsha256-modp2048")
            .unwrap()
            .to_wire(1, Protocol::Ike, vec![])];
        assert!(select(&ours, &only_modp, Protocol::Ike).is_none());
        // ESP: the peer's SPI comes back with the choice.
        let esp = [parse_esp("aes256gcm16-noesn").unwrap()];
        let offer = [parse_esp("aes256gcm16-esn-noesn").unwrap().to_wire(
            1,
            Protocol::Esp,
            vec![1, 2, 3, 4],
        )];
        let c = select(&esp, &offer, Protocol::Esp).unwrap();
        assert_eq!(c.spi, [1, 2, 3, 4]);
        assert!(c
            .transforms
            .iter()
            .any(|t| t.kind == TransformType::Esn && t.id == 0));
    }

    /// A responder's answer in its own transform order is a choice; one with two transforms
    /// of a type (ESN and no ESN both) is not.
    #[test]
    fn a_choice_has_one_transform_of_each_type_in_any_order() {
        let ours = [parse_ike("aes256-sha256-x25519").unwrap()];
        let mut p = select(
            &ours,
            &[ours[0].to_wire(1, Protocol::Ike, vec![])],
            Protocol::Ike,
        )
        .unwrap();
        assert!(is_choice(&ours, &p, Protocol::Ike));
        p.transforms.reverse();
        assert!(is_choice(&ours, &p, Protocol::Ike));
        let esp = [parse_esp("aes128gcm16-esn-noesn").unwrap()];
        let both = esp[0].to_wire(1, Protocol::Esp, vec![1, 2, 3, 4]);
        assert!(!is_choice(&esp, &both, Protocol::Esp));
        let one = select(&esp, &[both], Protocol::Esp).unwrap();
        assert!(is_choice(&esp, &one, Protocol::Esp));
    }
}
