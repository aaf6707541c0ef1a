//! The IKE_SA_INIT exchange (RFC 7296 section 1.2), sans IO: the initiator's request, the
//! responder's answer (its choice of proposal, its KE and nonce, NAT detection, IKE
//! fragmentation and RFC 7427 hash support), and on both sides the IKE SA's keys from the same
//! SKEYSEED (`keys`). What goes on the wire is bytes in and bytes out; the caller owns sockets
//! and clocks.

use super::dh::{DhError, Group, KeyPair};
use super::fragment::IKE_FRAGMENTATION_SUPPORTED;
use super::proposal::{is_choice, select, ProposalSpec};
use super::signature::{OUR_HASHES, SIGNATURE_HASH_ALGORITHMS};
use super::wire::{
    Exchange, Flags, Header, Message, Payload, Proposal, Protocol, TransformType, WireError,
};
use ring::rand::{SecureRandom, SystemRandom};
use std::net::{IpAddr, SocketAddr};

mod keys;
use keys::derive;
pub use keys::{rekeyed, suite, IkeKeys, Suite};

/// NAT_DETECTION_SOURCE_IP and NAT_DETECTION_DESTINATION_IP (RFC 7296 section 2.23).
const NATD_SOURCE: u16 = 16388;
const NATD_DESTINATION: u16 = 16389;
/// RFC 7296 section 3.10.1.
pub const COOKIE: u16 = 16390;
pub const INVALID_KE_PAYLOAD: u16 = 17;
pub const NO_PROPOSAL_CHOSEN: u16 = 14;

/// SHA-1(SPIi | SPIr | IP | port), the NAT detection hash (RFC 7296 section 2.23).
pub fn natd_hash(spi_i: u64, spi_r: u64, addr: SocketAddr) -> [u8; 20] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(&spi_i.to_be_bytes());
    ctx.update(&spi_r.to_be_bytes());
    // The address as it is on the wire: 4 bytes, or 16 for IPv6.
    match addr.ip() {
        IpAddr::V4(a) => ctx.update(&a.octets()),
        IpAddr::V6(a) => ctx.update(&a.octets()),
    }
    ctx.update(&addr.port().to_be_bytes());
    let mut out = [0; 20];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Where a message came from and went to, for NAT detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addrs {
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

/// Nonce length we send (RFC 7296 section 2.10: at least half the PRF's key size, >= 16).
const NONCE_LEN: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("NO_PROPOSAL_CHOSEN")]
    NoProposalChosen,
    /// The peer's KE is for another group than the chosen one: INVALID_KE_PAYLOAD, with the
    /// group we want.
    #[error("INVALID_KE_PAYLOAD (want group {0})")]
    InvalidKe(u16),
    #[error(transparent)]
    Dh(#[from] DhError),
    #[error("malformed IKE_SA_INIT: {0}")]
    Malformed(&'static str),
    #[error("no randomness")]
    Random,
}

fn random<const N: usize>(rng: &SystemRandom) -> Result<[u8; N], InitError> {
    let mut b = [0u8; N];
    rng.fill(&mut b).map_err(|_| InitError::Random)?;
    Ok(b)
}

/// The initiator between its request and the response.
pub struct Initiator {
    pub spi_i: u64,
    ni: [u8; NONCE_LEN],
    dh: KeyPair,
    /// The request as sent: the initiator signs it in IKE_AUTH.
    pub request: Vec<u8>,
    addrs: Option<Addrs>,
    fragmentation: bool,
}

/// How the initiator starts.
#[derive(Debug, Clone, Default)]
pub struct Start {
    /// The KE's group; `None`: the first proposal's first group (a responder's
    /// INVALID_KE_PAYLOAD names another, RFC 7296 section 1.2).
    pub group: Option<Group>,
    /// Where the request goes from and to: NAT detection is offered.
    pub addrs: Option<Addrs>,
    /// Fake our source hash so that both sides see a NAT and carry ESP in UDP (strongSwan's
    /// `encap = yes`), for paths that drop plain ESP.
    pub force_encap: bool,
    /// A COOKIE the responder asked for (RFC 7296 section 2.6): sent first.
    pub cookie: Option<Vec<u8>>,
    /// Our SPI, kept when the request is made again (after INVALID_KE_PAYLOAD): the caller
    /// finds the answer by it.
    pub spi_i: Option<u64>,
    /// Offer IKE fragmentation (RFC 7383).
    pub fragmentation: bool,
}

/// Starts an IKE SA: the request offering `proposals`, with a KE for `start.group`.
pub fn initiate(
    proposals: &[ProposalSpec],
    start: Start,
    rng: &SystemRandom,
) -> Result<Initiator, InitError> {
    let group = match start.group {
        Some(g) => g,
        None => proposals
            .iter()
            .flat_map(|p| &p.algos)
            .find(|a| a.kind == TransformType::DhGroup)
            .map(|a| Group::from_id(a.id))
            .ok_or(InitError::Malformed("no DH group"))??,
    };
    let dh = KeyPair::generate(group, rng)?;
    let ni = random::<NONCE_LEN>(rng)?;
    let spi_i = match start.spi_i {
        Some(s) => s,
        None => u64::from_be_bytes(random::<8>(rng)?).max(1),
    };
    let mut payloads = Vec::new();
    if let Some(c) = &start.cookie {
        payloads.push(notify(COOKIE, c.clone()));
    }
    payloads.extend([
        Payload::Sa(
            proposals
                .iter()
                .enumerate()
                .map(|(i, p)| p.to_wire(i as u8 + 1, Protocol::Ike, Vec::new()))
                .collect(),
        ),
        Payload::Ke {
            group: group.id(),
            data: dh.public.clone(),
        },
        Payload::Nonce(ni.to_vec()),
    ]);
    if let Some(a) = start.addrs {
        let source = if start.force_encap {
            random::<20>(rng)?
        } else {
            natd_hash(spi_i, 0, a.local)
        };
        payloads.push(notify(NATD_SOURCE, source.to_vec()));
        payloads.push(notify(
            NATD_DESTINATION,
            natd_hash(spi_i, 0, a.remote).to_vec(),
        ));
    }
    if start.fragmentation {
        payloads.push(notify(IKE_FRAGMENTATION_SUPPORTED, Vec::new()));
    }
    payloads.push(hash_algorithms());
    let m = Message {
        header: Header {
            initiator_spi: spi_i,
            responder_spi: 0,
            exchange: Exchange::IkeSaInit,
            flags: Flags {
                initiator: true,
                ..Default::default()
            },
            message_id: 0,
        },
        payloads,
    };
    let request = m.emit();
    Ok(Initiator {
        spi_i,
        ni,
        dh,
        request,
        addrs: start.addrs,
        fragmentation: start.fragmentation,
    })
}

impl Initiator {
    /// The same request with the responder's COOKIE first (RFC 7296 section 2.6: all other
    /// payloads unchanged, so that the cookie made from them matches).
    pub fn with_cookie(mut self, cookie: Vec<u8>) -> Result<Initiator, InitError> {
        let mut m = Message::parse(&self.request)?;
        m.payloads
            .retain(|p| !matches!(p, Payload::Notify(n) if n.kind == COOKIE));
        m.payloads.insert(0, notify(COOKIE, cookie));
        self.request = m.emit();
        Ok(self)
    }
}

/// A notification about the IKE SA.
/// SIGNATURE_HASH_ALGORITHMS with the hashes we verify: sent whatever the authentication,
/// as strongSwan does (RFC 7427 section 4).
fn hash_algorithms() -> Payload {
    notify(
        SIGNATURE_HASH_ALGORITHMS,
        OUR_HASHES.iter().flat_map(|h| h.to_be_bytes()).collect(),
    )
}

/// The hashes a message's SIGNATURE_HASH_ALGORITHMS lists (empty: no RFC 7427).
fn peer_hashes(m: &Message) -> Vec<u16> {
    m.payloads
        .iter()
        .filter_map(|p| match p {
            Payload::Notify(n) if n.kind == SIGNATURE_HASH_ALGORITHMS => Some(&n.data),
            _ => None,
        })
        .flat_map(|d| d.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])))
        .collect()
}

fn notify(kind: u16, data: Vec<u8>) -> Payload {
    Payload::Notify(super::wire::Notify {
        protocol: 0,
        kind,
        spi: Vec::new(),
        data,
    })
}

/// What an IKE_SA_INIT response that is not an answer says instead (RFC 7296 sections 1.2,
/// 2.6): the initiator starts again, or gives up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// INVALID_KE_PAYLOAD: again with a KE of this group.
    InvalidKe(u16),
    /// COOKIE: again with this cookie.
    Cookie(Vec<u8>),
    /// Another error notification (NO_PROPOSAL_CHOSEN is 14).
    Error(u16),
}

/// The responder's refusal of an IKE_SA_INIT request (`request` its header): an unencrypted
/// response with one notification and no responder SPI (RFC 7296 section 2.21.1).
pub fn refuse(request: &Header, kind: u16, data: Vec<u8>) -> Vec<u8> {
    Message {
        header: Header {
            responder_spi: 0,
            flags: Flags {
                response: true,
                ..Default::default()
            },
            ..*request
        },
        payloads: vec![notify(kind, data)],
    }
    .emit()
}

/// The refusal a response carries, if it is one.
pub fn refusal(m: &Message) -> Option<Refusal> {
    m.payloads.iter().find_map(|p| match p {
        Payload::Notify(n) if n.kind == COOKIE => Some(Refusal::Cookie(n.data.clone())),
        Payload::Notify(n) if n.kind == INVALID_KE_PAYLOAD => {
            let g = n.data.get(..2)?;
            Some(Refusal::InvalidKe(u16::from_be_bytes([g[0], g[1]])))
        }
        Payload::Notify(n) if n.kind < 16384 => Some(Refusal::Error(n.kind)),
        _ => None,
    })
}

/// An IKE SA after IKE_SA_INIT, on either side: its SPIs and keys, and what IKE_AUTH signs
/// and the child SAs' keys are made from (both nonces, both messages as sent).
pub struct InitDone {
    pub spi_i: u64,
    pub spi_r: u64,
    pub keys: IkeKeys,
    pub suite: Suite,
    pub ni: Vec<u8>,
    pub nr: Vec<u8>,
    pub request: Vec<u8>,
    pub response: Vec<u8>,
    /// A NAT between the peers (RFC 7296 section 2.23): IKE floats to UDP 4500 and the child
    /// SAs carry ESP in UDP (RFC 3948).
    pub nat: bool,
    /// We are the one behind the NAT (the peer's hash of our address does not match it): we
    /// keep the NAT's mapping open with keepalives (RFC 3948 section 2.3).
    pub behind_nat: bool,
    /// Both sides said IKE_FRAGMENTATION_SUPPORTED (RFC 7383): big messages may go in
    /// fragments.
    pub fragmentation: bool,
    /// The hashes the peer verifies signatures with (RFC 7427); empty: it did not say.
    pub peer_hashes: Vec<u16>,
}

/// What a responder adds to its IKE_SA_INIT answer.
#[derive(Debug, Clone, Default)]
pub struct Answering {
    /// Agree to IKE fragmentation (RFC 7383) if the peer offers it.
    pub fragmentation: bool,
    /// Ask for a certificate from our CAs (RFC 7296 section 3.7).
    pub certreq: Option<Payload>,
}

/// Whether a message says IKE_FRAGMENTATION_SUPPORTED.
fn offers_fragmentation(m: &Message) -> bool {
    m.payloads
        .iter()
        .any(|p| matches!(p, Payload::Notify(n) if n.kind == IKE_FRAGMENTATION_SUPPORTED))
}

/// The NAT detection notifications of a message.
fn natd_of(m: &Message) -> Vec<(u16, Vec<u8>)> {
    m.payloads
        .iter()
        .filter_map(|p| match p {
            Payload::Notify(n) if n.kind == NATD_SOURCE || n.kind == NATD_DESTINATION => {
                Some((n.kind, n.data.clone()))
            }
            _ => None,
        })
        .collect()
}

/// The payloads IKE_SA_INIT carries both ways.
struct InitParts<'a> {
    sa: &'a [Proposal],
    ke_group: u16,
    ke: &'a [u8],
    nonce: &'a [u8],
}

fn parts(m: &Message) -> Result<InitParts<'_>, InitError> {
    let mut sa = None;
    let mut ke = None;
    let mut nonce = None;
    for p in &m.payloads {
        match p {
            Payload::Sa(s) => sa = Some(&s[..]),
            Payload::Ke { group, data } => ke = Some((*group, &data[..])),
            Payload::Nonce(n) => nonce = Some(&n[..]),
            _ => {}
        }
    }
    let (Some(sa), Some((ke_group, ke)), Some(nonce)) = (sa, ke, nonce) else {
        return Err(InitError::Malformed("SA, KE and nonce are required"));
    };
    if !(16..=256).contains(&nonce.len()) {
        return Err(InitError::Malformed("nonce length"));
    }
    Ok(InitParts {
        sa,
        ke_group,
        ke,
        nonce,
    })
}

/// Answers an IKE_SA_INIT request with the first of its proposals `ours` accepts.
/// With `addrs` (how the request arrived), NAT detection: when the request carries NAT-D
/// notifications, the response carries ours, and `InitDone::nat` says whether the peer's
/// hashes match the addresses we see.
pub fn respond(
    ours: &[ProposalSpec],
    request: &[u8],
    addrs: Option<Addrs>,
    answering: &Answering,
    rng: &SystemRandom,
) -> Result<InitDone, InitError> {
    let m = Message::parse(request)?;
    if m.header.exchange != Exchange::IkeSaInit || m.header.flags.response {
        return Err(InitError::Malformed("not an IKE_SA_INIT request"));
    }
    let InitParts {
        sa,
        ke_group,
        ke,
        nonce: ni,
    } = parts(&m)?;
    let chosen = select(ours, sa, Protocol::Ike).ok_or(InitError::NoProposalChosen)?;
    let s = suite(&chosen)?;
    if ke_group != s.group.id() {
        return Err(InitError::InvalidKe(s.group.id()));
    }
    let dh = KeyPair::generate(s.group, rng)?;
    let public = dh.public.clone();
    let gir = dh.agree(ke)?;
    let nr = random::<NONCE_LEN>(rng)?;
    let spi_r = u64::from_be_bytes(random::<8>(rng)?).max(1);
    let spi_i = m.header.initiator_spi;
    let keys = derive(s, ni, &nr, &gir, spi_i, spi_r);
    let natd = natd_of(&m);
    // The peer's source hashes name where it sent from; its destination hash where it sent
    // to. A mismatch with what we see: a NAT (or a peer forcing ESP in UDP, as strongSwan's
    // `encap = yes` and libipsec do).
    let mut nat = false;
    let mut behind_nat = false;
    let mut nat_payloads = Vec::new();
    if let (Some(a), false) = (addrs, natd.is_empty()) {
        let theirs = natd_hash(spi_i, 0, a.remote);
        let mine = natd_hash(spi_i, 0, a.local);
        let src_ok = natd
            .iter()
            .any(|(k, d)| *k == NATD_SOURCE && d[..] == theirs);
        let dst_ok = natd
            .iter()
            .any(|(k, d)| *k == NATD_DESTINATION && d[..] == mine);
        nat = !(src_ok && dst_ok);
        behind_nat = !dst_ok;
        for (kind, addr) in [(NATD_SOURCE, a.local), (NATD_DESTINATION, a.remote)] {
            nat_payloads.push(Payload::Notify(super::wire::Notify {
                protocol: 0,
                kind,
                spi: Vec::new(),
                data: natd_hash(spi_i, spi_r, addr).to_vec(),
            }));
        }
    }
    let mut payloads = vec![
        Payload::Sa(vec![chosen]),
        Payload::Ke {
            group: s.group.id(),
            data: public,
        },
        Payload::Nonce(nr.to_vec()),
    ];
    payloads.extend(nat_payloads);
    let fragmentation = answering.fragmentation && offers_fragmentation(&m);
    if fragmentation {
        payloads.push(notify(IKE_FRAGMENTATION_SUPPORTED, Vec::new()));
    }
    payloads.push(hash_algorithms());
    payloads.extend(answering.certreq.clone());
    let response = Message {
        header: Header {
            initiator_spi: spi_i,
            responder_spi: spi_r,
            exchange: Exchange::IkeSaInit,
            flags: Flags {
                response: true,
                ..Default::default()
            },
            message_id: 0,
        },
        payloads,
    }
    .emit();
    Ok(InitDone {
        spi_i,
        spi_r,
        keys,
        suite: s,
        ni: ni.to_vec(),
        nr: nr.to_vec(),
        request: request.to_vec(),
        response,
        nat,
        behind_nat,
        fragmentation,
        peer_hashes: peer_hashes(&m),
    })
}

impl Initiator {
    /// The IKE SA's keys from the responder's answer (which must choose one of our proposals).
    pub fn complete(self, ours: &[ProposalSpec], response: &[u8]) -> Result<InitDone, InitError> {
        let m = Message::parse(response)?;
        if !m.header.flags.response || m.header.initiator_spi != self.spi_i {
            return Err(InitError::Malformed("not the response to our request"));
        }
        let InitParts {
            sa,
            ke_group,
            ke,
            nonce: nr,
        } = parts(&m)?;
        let [chosen] = sa else {
            return Err(InitError::Malformed(
                "the response must choose one proposal",
            ));
        };
        // The choice must be one we offered, one transform of each type.
        if !is_choice(ours, chosen, Protocol::Ike) {
            return Err(InitError::NoProposalChosen);
        }
        let s = suite(chosen)?;
        if ke_group != s.group.id() {
            return Err(InitError::InvalidKe(s.group.id()));
        }
        let gir = self.dh.agree(ke)?;
        let spi_r = m.header.responder_spi;
        // The responder's hashes against what we see: its source against where the answer
        // came from, its destination against our address. No hashes: no NAT-T.
        let (nat, behind_nat) = match self.addrs {
            None => (false, false),
            Some(a) => {
                let natd = natd_of(&m);
                let src_ok = natd.iter().any(|(k, d)| {
                    *k == NATD_SOURCE && d[..] == natd_hash(self.spi_i, spi_r, a.remote)
                });
                let dst_ok = natd.iter().any(|(k, d)| {
                    *k == NATD_DESTINATION && d[..] == natd_hash(self.spi_i, spi_r, a.local)
                });
                // No hashes at all: the responder does no NAT-T.
                let hashes = !natd.is_empty();
                let matched = src_ok && dst_ok;
                (hashes && !matched, hashes && !dst_ok)
            }
        };
        Ok(InitDone {
            spi_i: self.spi_i,
            spi_r,
            keys: derive(s, &self.ni, nr, &gir, self.spi_i, spi_r),
            suite: s,
            ni: self.ni.to_vec(),
            nr: nr.to_vec(),
            request: self.request,
            response: response.to_vec(),
            nat,
            behind_nat,
            fragmentation: self.fragmentation && offers_fragmentation(&m),
            peer_hashes: peer_hashes(&m),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ike::proposal::parse_ike;

    #[test]
    fn both_sides_derive_the_same_keys() {
        let rng = SystemRandom::new();
        let ours = [
            parse_ike("aes256gcm16-prfsha384-ecp384").unwrap(),
            parse_ike("aes128gcm16-prfsha256-x25519").unwrap(),
        ];
        let theirs = [parse_ike("aes128gcm16-prfsha256-x25519").unwrap()];
        // The initiator offers two; the responder accepts only the second.
        let i = initiate(&ours, Start::default(), &rng).unwrap();
        // Its KE is for the first proposal's group: the responder asks for another.
        assert!(matches!(
            respond(&theirs, &i.request, None, &Default::default(), &rng),
            Err(InitError::InvalidKe(31))
        ));
        let i = initiate(&theirs, Start::default(), &rng).unwrap();
        let r = respond(&theirs, &i.request, None, &Default::default(), &rng).unwrap();
        let done = i.complete(&theirs, &r.response).unwrap();
        let keys = &done.keys;
        assert_eq!(done.spi_r, r.spi_r);
        assert_eq!(done.suite, r.suite);
        assert_eq!(done.suite.sk_e_len, 20);
        assert_eq!((&done.ni, &done.nr), (&r.ni, &r.nr));
        for (a, b) in [
            (&keys.sk_d, &r.keys.sk_d),
            (&keys.sk_ei, &r.keys.sk_ei),
            (&keys.sk_er, &r.keys.sk_er),
            (&keys.sk_pi, &r.keys.sk_pi),
            (&keys.sk_pr, &r.keys.sk_pr),
        ] {
            assert_eq!(**a, **b);
            assert!(a.iter().any(|&x| x != 0));
        }
        assert_ne!(*keys.sk_ei, *keys.sk_er);
    }

    /// Our responder answers the request strongSwan 5.9.8 sent (fixtures/): it picks
    /// strongSwan's proposal, answers with a Curve25519 KE, and the answer parses.
    #[test]
    fn the_responder_answers_strongswans_request() {
        let rng = SystemRandom::new();
        let hex = include_str!("../wire/fixtures/strongswan-5.9-ike-sa-init.hex");
        let req = hex::decode(hex.trim()).unwrap();
        let ours = [parse_ike("aes256gcm16-prfsha256-x25519").unwrap()];
        let r = respond(&ours, &req, None, &Default::default(), &rng).unwrap();
        assert_eq!(r.suite.group, Group::Curve25519);
        assert_eq!(r.suite.sk_e_len, 36);
        let m = Message::parse(&r.response).unwrap();
        assert!(m.header.flags.response && m.header.responder_spi == r.spi_r);
        assert!(matches!(m.payloads[1], Payload::Ke { group: 31, ref data } if data.len() == 32));
        // Nothing in common: NO_PROPOSAL_CHOSEN.
        let other = [parse_ike("aes128gcm16-prfsha512-ecp256").unwrap()];
        assert!(matches!(
            respond(&other, &req, None, &Default::default(), &rng),
            Err(InitError::NoProposalChosen)
        ));
    }
}
