//! CREATE_CHILD_SA for a child SA (RFC 7296 section 1.3.1) and its rekey (section 1.3.3),
//! sans IO: the payloads inside SK both ways, the choice, and the new child's keys
//! KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr). With a DH group in the ESP proposal (PFS) the
//! exchange carries KE payloads; a responder wanting another group answers
//! INVALID_KE_PAYLOAD. The IKE SA seals and opens the messages.

use super::dh::{Group, KeyPair};
use super::ike_auth::{Child, NO_PROPOSAL_CHOSEN, TS_UNACCEPTABLE};
use super::init::INVALID_KE_PAYLOAD;
use super::kdf::{Prf, Secret};
use super::proposal::{is_choice, select, ProposalSpec};
use super::selectors::{narrow, within};
use super::wire::{Notify, Payload, Protocol, TrafficSelector, TransformType};
use ring::rand::{SecureRandom, SystemRandom};

/// RFC 7296 section 3.10.1: the SA this exchange replaces.
pub const REKEY_SA: u16 = 16393;
/// Protocol number of ESP in notifications and deletes.
pub const PROTO_ESP: u8 = 3;
const NONCE_LEN: usize = 32;

/// What both sides use: the ESP proposals and the selectors (ours first).
pub struct ChildConfig<'a> {
    pub esp: &'a [ProposalSpec],
    pub local_ts: &'a [TrafficSelector],
    pub remote_ts: &'a [TrafficSelector],
}

/// The keys of the IKE SA that child keys come from.
pub struct Derive<'a> {
    pub prf: Prf,
    pub sk_d: &'a [u8],
}

/// The initiator's side between request and response.
pub struct Pending {
    ni: Vec<u8>,
    dh: Option<KeyPair>,
    pub our_spi: u32,
    /// The inbound SPI of the child being rekeyed, if this is a rekey.
    pub rekeys: Option<u32>,
    /// Which of its VPN's children this makes (the IKE SA sets it).
    pub slot: usize,
}

fn nonce(rng: &SystemRandom) -> Option<Vec<u8>> {
    let mut n = vec![0u8; NONCE_LEN];
    rng.fill(&mut n).ok()?;
    Some(n)
}

fn notify(kind: u16, spi: Option<u32>, data: Vec<u8>) -> Payload {
    Payload::Notify(Notify {
        protocol: if spi.is_some() { PROTO_ESP } else { 0 },
        kind,
        spi: spi.map(|s| s.to_be_bytes().to_vec()).unwrap_or_default(),
        data,
    })
}

/// The request: a new child (or the rekey of the child whose inbound SPI is `rekeys`) with
/// `our_spi`, a KE in `group` (the first proposal's PFS group when `None`).
pub fn request(
    cfg: &ChildConfig<'_>,
    rekeys: Option<u32>,
    our_spi: u32,
    group: Option<u16>,
    rng: &SystemRandom,
) -> Option<(Vec<Payload>, Pending)> {
    let group = group.or_else(|| cfg.esp.iter().find_map(ProposalSpec::dh_group));
    let dh = match group {
        Some(g) => Some(KeyPair::generate(Group::from_id(g).ok()?, rng).ok()?),
        None => None,
    };
    let ni = nonce(rng)?;
    let mut p = Vec::new();
    if let Some(old) = rekeys {
        p.push(notify(REKEY_SA, Some(old), Vec::new()));
    }
    p.push(Payload::Sa(
        cfg.esp
            .iter()
            .enumerate()
            .map(|(i, s)| s.to_wire(i as u8 + 1, Protocol::Esp, our_spi.to_be_bytes().to_vec()))
            .collect(),
    ));
    p.push(Payload::Nonce(ni.clone()));
    if let Some(k) = &dh {
        p.push(Payload::Ke {
            group: k.group().id(),
            data: k.public.clone(),
        });
    }
    p.push(Payload::TsI(cfg.local_ts.to_vec()));
    p.push(Payload::TsR(cfg.remote_ts.to_vec()));
    Some((
        p,
        Pending {
            ni,
            dh,
            our_spi,
            rekeys,
            slot: 0,
        },
    ))
}

/// What a request asks, read from its payloads.
pub struct Asked<'a> {
    /// The peer's inbound SPI of the child it rekeys (our outbound one).
    pub rekeys: Option<u32>,
    sa: &'a [super::wire::Proposal],
    ni: &'a [u8],
    ke: Option<(u16, &'a [u8])>,
    pub ts_i: &'a [TrafficSelector],
    pub ts_r: &'a [TrafficSelector],
}

impl Asked<'_> {
    /// The initiator's nonce (RFC 7296 section 2.8.1 compares them).
    pub fn nonce(&self) -> &[u8] {
        self.ni
    }
}

impl Pending {
    /// Our nonce in the request.
    pub fn nonce(&self) -> &[u8] {
        &self.ni
    }
}

/// The nonce in a message's payloads.
pub fn nonce_of(payloads: &[Payload]) -> Option<&[u8]> {
    payloads.iter().find_map(|p| match p {
        Payload::Nonce(n) => Some(&n[..]),
        _ => None,
    })
}

/// Reads a CREATE_CHILD_SA request for a child; `None`: not one (an IKE SA rekey, or
/// malformed).
pub fn asked(payloads: &[Payload]) -> Option<Asked<'_>> {
    let mut rekeys = None;
    let (mut sa, mut ni, mut ke, mut ts_i, mut ts_r) = (None, None, None, None, None);
    for p in payloads {
        match p {
            Payload::Notify(n) if n.kind == REKEY_SA && n.protocol == PROTO_ESP => {
                rekeys = Some(u32::from_be_bytes(n.spi.as_slice().try_into().ok()?));
            }
            Payload::Sa(s) => sa = Some(&s[..]),
            Payload::Nonce(n) => ni = Some(&n[..]),
            Payload::Ke { group, data } => ke = Some((*group, &data[..])),
            Payload::TsI(t) => ts_i = Some(&t[..]),
            Payload::TsR(t) => ts_r = Some(&t[..]),
            _ => {}
        }
    }
    let sa = sa?;
    if sa.first()?.protocol != Protocol::Esp {
        return None;
    }
    Some(Asked {
        rekeys,
        sa,
        ni: ni?,
        ke,
        ts_i: ts_i?,
        ts_r: ts_r?,
    })
}

fn esp_key_len(p: &super::wire::Proposal) -> Option<(usize, bool)> {
    let enc = p
        .transforms
        .iter()
        .find(|t| t.kind == TransformType::Encryption)?;
    let esn = p
        .transforms
        .iter()
        .any(|t| t.kind == TransformType::Esn && t.id == 1);
    Some((usize::from(enc.key_length()?) / 8 + 4, esn))
}

fn keymat(
    d: &Derive<'_>,
    gir: Option<&Secret>,
    ni: &[u8],
    nr: &[u8],
    key_len: usize,
) -> (Secret, Secret) {
    let km = d
        .prf
        .child_keymat(d.sk_d, gir.map(|g| &g[..]), ni, nr, 2 * key_len)
        .unwrap_or_default();
    (
        zeroize::Zeroizing::new(km.get(..key_len).unwrap_or_default().to_vec()),
        zeroize::Zeroizing::new(km.get(key_len..).unwrap_or_default().to_vec()),
    )
}

/// The responder's answer (the payloads of the response) and the child it installs; `Err`:
/// the notification (with its data) that refuses the request.
pub fn respond(
    d: &Derive<'_>,
    cfg: &ChildConfig<'_>,
    a: &Asked<'_>,
    our_spi: u32,
    rng: &SystemRandom,
) -> Result<(Vec<Payload>, Child), (u16, Vec<u8>)> {
    let chosen = select(cfg.esp, a.sa, Protocol::Esp).ok_or((NO_PROPOSAL_CHOSEN, Vec::new()))?;
    let group = chosen
        .transforms
        .iter()
        .find(|t| t.kind == TransformType::DhGroup && t.id != 0)
        .map(|t| t.id);
    let (dh, gir) = match (group, a.ke) {
        (None, _) => (None, None),
        (Some(g), Some((kg, data))) if kg == g => {
            let k = KeyPair::generate(
                Group::from_id(g).map_err(|_| (NO_PROPOSAL_CHOSEN, vec![]))?,
                rng,
            )
            .map_err(|_| (NO_PROPOSAL_CHOSEN, vec![]))?;
            let public = k.public.clone();
            let gir = k.agree(data).map_err(|_| (NO_PROPOSAL_CHOSEN, vec![]))?;
            (Some((g, public)), Some(gir))
        }
        (Some(g), _) => return Err((INVALID_KE_PAYLOAD, g.to_be_bytes().to_vec())),
    };
    let remote_ts = narrow(a.ts_i, cfg.remote_ts);
    let local_ts = narrow(a.ts_r, cfg.local_ts);
    if remote_ts.is_empty() || local_ts.is_empty() {
        return Err((TS_UNACCEPTABLE, Vec::new()));
    }
    let peer_spi = u32::from_be_bytes(
        chosen
            .spi
            .as_slice()
            .try_into()
            .map_err(|_| (NO_PROPOSAL_CHOSEN, vec![]))?,
    );
    let (key_len, esn) = esp_key_len(&chosen).ok_or((NO_PROPOSAL_CHOSEN, vec![]))?;
    let nr = nonce(rng).ok_or((NO_PROPOSAL_CHOSEN, vec![]))?;
    let (i_to_r, r_to_i) = keymat(d, gir.as_ref(), a.ni, &nr, key_len);
    let mut answer = chosen;
    answer.spi = our_spi.to_be_bytes().to_vec();
    let mut p = Vec::new();
    if let Some(old) = a.rekeys {
        // Echoed, as strongSwan does; harmless to others.
        p.push(notify(REKEY_SA, Some(old), Vec::new()));
    }
    p.push(Payload::Sa(vec![answer]));
    p.push(Payload::Nonce(nr));
    if let Some((g, data)) = dh {
        p.push(Payload::Ke { group: g, data });
    }
    p.push(Payload::TsI(remote_ts.clone()));
    p.push(Payload::TsR(local_ts.clone()));
    Ok((
        p,
        Child {
            outbound_spi: peer_spi,
            inbound_spi: our_spi,
            outbound_key: r_to_i,
            inbound_key: i_to_r,
            esn,
            local_ts,
            remote_ts,
            slot: 0,
        },
    ))
}

/// Why the initiator got no child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// INVALID_KE_PAYLOAD: ask again with this group.
    InvalidKe(u16),
    /// Another notification, or an answer we cannot accept.
    Error(u16),
}

/// The initiator's child from the response's payloads.
pub fn complete(
    d: &Derive<'_>,
    cfg: &ChildConfig<'_>,
    pending: Pending,
    payloads: &[Payload],
) -> Result<Child, Refused> {
    let (mut sa, mut nr, mut ke, mut ts_i, mut ts_r) = (None, None, None, None, None);
    for p in payloads {
        match p {
            Payload::Notify(n) if n.kind == INVALID_KE_PAYLOAD => {
                let g = n.data.get(..2).ok_or(Refused::Error(INVALID_KE_PAYLOAD))?;
                return Err(Refused::InvalidKe(u16::from_be_bytes([g[0], g[1]])));
            }
            Payload::Notify(n) if n.kind < 16384 => return Err(Refused::Error(n.kind)),
            Payload::Sa(s) => sa = Some(&s[..]),
            Payload::Nonce(n) => nr = Some(&n[..]),
            Payload::Ke { group, data } => ke = Some((*group, &data[..])),
            Payload::TsI(t) => ts_i = Some(&t[..]),
            Payload::TsR(t) => ts_r = Some(&t[..]),
            _ => {}
        }
    }
    let bad = Refused::Error(NO_PROPOSAL_CHOSEN);
    let (Some([chosen]), Some(nr), Some(ts_i), Some(ts_r)) = (sa, nr, ts_i, ts_r) else {
        return Err(bad);
    };
    let mut offered = chosen.clone();
    offered.spi = pending.our_spi.to_be_bytes().to_vec();
    if !is_choice(cfg.esp, &offered, Protocol::Esp) {
        return Err(bad);
    }
    if !within(ts_i, cfg.local_ts) || !within(ts_r, cfg.remote_ts) {
        return Err(Refused::Error(TS_UNACCEPTABLE));
    }
    let group = chosen
        .transforms
        .iter()
        .find(|t| t.kind == TransformType::DhGroup && t.id != 0)
        .map(|t| t.id);
    let gir = match (group, pending.dh, ke) {
        (None, _, _) => None,
        (Some(g), Some(k), Some((kg, data))) if kg == g && k.group().id() == g => {
            Some(k.agree(data).map_err(|_| bad.clone())?)
        }
        _ => return Err(bad),
    };
    let peer_spi = u32::from_be_bytes(chosen.spi.as_slice().try_into().map_err(|_| bad.clone())?);
    let (key_len, esn) = esp_key_len(chosen).ok_or(bad)?;
    let (i_to_r, r_to_i) = keymat(d, gir.as_ref(), &pending.ni, nr, key_len);
    Ok(Child {
        outbound_spi: peer_spi,
        inbound_spi: pending.our_spi,
        outbound_key: i_to_r,
        inbound_key: r_to_i,
        esn,
        local_ts: ts_i.to_vec(),
        remote_ts: ts_r.to_vec(),
        slot: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ike::proposal::parse_esp;
    use crate::ike::selectors::of_prefix;

    /// A rekey with PFS between two sides: same keys crosswise, the KE retried in the group
    /// the responder wants, and a responder without PFS refusing a proposal with it.
    #[test]
    fn two_sides_rekey_a_child_with_pfs() {
        let rng = SystemRandom::new();
        let sk_d = [7u8; 32];
        let d = Derive {
            prf: Prf::HmacSha256,
            sk_d: &sk_d,
        };
        let (a, b) = (
            vec![of_prefix("10.1.0.0/16".parse::<ipnet::IpNet>().unwrap())],
            vec![of_prefix("10.2.0.0/16".parse::<ipnet::IpNet>().unwrap())],
        );
        let esp_i = [parse_esp("aes256gcm16-ecp256-x25519").unwrap()];
        let esp_r = [parse_esp("aes256gcm16-x25519").unwrap()];
        let ci = ChildConfig {
            esp: &esp_i,
            local_ts: &a,
            remote_ts: &b,
        };
        let cr = ChildConfig {
            esp: &esp_r,
            local_ts: &b,
            remote_ts: &a,
        };
        // The initiator's KE is ECP-256; the responder wants Curve25519.
        let (req, _) = request(&ci, Some(0x1111), 0x2222, None, &rng).unwrap();
        let asked_ = asked(&req).unwrap();
        assert_eq!(asked_.rekeys, Some(0x1111));
        let Err((kind, data)) = respond(&d, &cr, &asked_, 0x3333, &rng) else {
            panic!("answered a KE in the wrong group")
        };
        assert_eq!(
            (kind, data),
            (INVALID_KE_PAYLOAD, 31u16.to_be_bytes().to_vec())
        );
        let (req, pending) = request(&ci, Some(0x1111), 0x2222, Some(31), &rng).unwrap();
        let (resp, rc) = respond(&d, &cr, &asked(&req).unwrap(), 0x3333, &rng).unwrap();
        let ic = complete(&d, &ci, pending, &resp).unwrap();
        assert_eq!((ic.outbound_spi, rc.outbound_spi), (0x3333, 0x2222));
        assert_eq!(*ic.outbound_key, *rc.inbound_key);
        assert_eq!(*ic.inbound_key, *rc.outbound_key);
        assert_eq!(ic.outbound_key.len(), 36);
        // Without the KE, other keys (the DH secret is in them).
        let no_pfs = [parse_esp("aes256gcm16").unwrap()];
        let cn = ChildConfig { esp: &no_pfs, ..ci };
        let crn = ChildConfig { esp: &no_pfs, ..cr };
        let (req, pending) = request(&cn, None, 0x4444, None, &rng).unwrap();
        assert!(!req.iter().any(|p| matches!(p, Payload::Ke { .. })));
        let (resp, rc2) = respond(&d, &crn, &asked(&req).unwrap(), 0x5555, &rng).unwrap();
        let ic2 = complete(&d, &cn, pending, &resp).unwrap();
        assert_eq!(*ic2.outbound_key, *rc2.inbound_key);
        assert_ne!(*ic2.outbound_key, *ic.outbound_key);
        // PFS asked, none offered back: refused.
        let (req, _) = request(&cn, None, 1, None, &rng).unwrap();
        assert!(matches!(
            respond(&d, &cr, &asked(&req).unwrap(), 2, &rng),
            Err((NO_PROPOSAL_CHOSEN, _))
        ));
    }
}
