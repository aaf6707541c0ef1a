//! The IKE_AUTH exchange (RFC 7296 section 1.2), sans IO: each side proves who it is over
//! what it sent in IKE_SA_INIT (a pre-shared key, or a certificate and a signature; `auth`),
//! and the first child SA (ESP, the traffic selectors) is agreed; its keys come from
//! prf+(SK_d, Ni | Nr), the initiator's direction first (RFC 7296 section 2.17).

use super::auth::{Auth, Proof, Signed};
use super::identity::Identity;
use super::init::InitDone;
use super::kdf::Secret;
use super::proposal::{is_choice, select, ProposalSpec};
use super::selectors::{narrow, within};
use super::sk::{self, SkError};
use super::wire::{
    Exchange, Flags, Header, Id, Message, Notify, Payload, Proposal, Protocol, TrafficSelector,
    TransformType,
};

/// RFC 7296 section 3.10.1.
pub const INITIAL_CONTACT: u16 = 16384;
pub const AUTHENTICATION_FAILED: u16 = 24;
pub const NO_PROPOSAL_CHOSEN: u16 = 14;
pub const TS_UNACCEPTABLE: u16 = 38;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Sk(#[from] SkError),
    #[error("AUTHENTICATION_FAILED")]
    AuthenticationFailed,
    /// The peer's proof of identity is refused (said to it as AUTHENTICATION_FAILED).
    #[error("AUTHENTICATION_FAILED: {0}")]
    Rejected(String),
    /// We cannot prove ours to this peer.
    #[error("cannot authenticate: {0}")]
    CannotProve(String),
    #[error("NO_PROPOSAL_CHOSEN for the child SA")]
    NoProposalChosen,
    #[error("TS_UNACCEPTABLE")]
    TsUnacceptable,
    #[error("malformed IKE_AUTH: {0}")]
    Malformed(&'static str),
}

/// One side's settings for IKE_AUTH.
pub struct AuthConfig<'a> {
    pub auth: &'a Auth,
    pub local_id: Id,
    /// Who the peer must say it is (and, with certificates, be certified as).
    pub remote_id: Identity,
    pub esp: &'a [ProposalSpec],
    /// Our side's and the peer's traffic selectors: what the initiator proposes, what the
    /// responder narrows the proposal to.
    pub local_ts: Vec<TrafficSelector>,
    pub remote_ts: Vec<TrafficSelector>,
    /// The initiator says it has no other IKE SA with the responder (RFC 7296 section 2.4).
    pub initial_contact: bool,
}

/// The responder's answer: the response, the child (or the notification that refused it:
/// the IKE SA stands without it, RFC 7296 section 1.2), and whether the initiator said
/// INITIAL_CONTACT.
pub struct Answer {
    pub response: Vec<u8>,
    pub child: Result<Child, u16>,
    pub initial_contact: bool,
}

impl AuthError {
    /// The notification that says this error to the peer.
    pub fn notify(&self) -> u16 {
        match self {
            AuthError::NoProposalChosen => NO_PROPOSAL_CHOSEN,
            AuthError::TsUnacceptable => TS_UNACCEPTABLE,
            _ => AUTHENTICATION_FAILED,
        }
    }
}

/// The child SA both sides install: SPIs, keys (key || salt) and whether it uses ESN.
pub struct Child {
    /// The SPI our peer chose: we send with it.
    pub outbound_spi: u32,
    /// The SPI we chose: we receive with it.
    pub inbound_spi: u32,
    pub outbound_key: Secret,
    pub inbound_key: Secret,
    pub esn: bool,
    pub local_ts: Vec<TrafficSelector>,
    pub remote_ts: Vec<TrafficSelector>,
    /// Which of its VPN's children it is (the IKE SA keeps the count; 0 here).
    pub slot: usize,
}

fn header(done: &InitDone, initiator: bool, response: bool) -> Header {
    Header {
        initiator_spi: done.spi_i,
        responder_spi: done.spi_r,
        exchange: Exchange::IkeAuth,
        flags: Flags {
            initiator,
            response,
            ..Default::default()
        },
        message_id: 1,
    }
}

/// Our AUTH payload over `signed`, and the CERT payloads that go before it.
fn proof(
    done: &InitDone,
    cfg: &AuthConfig<'_>,
    signed: &Signed<'_>,
) -> Result<(Payload, Vec<Payload>), AuthError> {
    let mut ps = cfg
        .auth
        .prove(done.keys.prf, signed, &done.peer_hashes)
        .map_err(AuthError::CannotProve)?;
    let auth = ps.pop().ok_or(AuthError::CannotProve(String::new()))?;
    Ok((auth, ps))
}

/// The peer is who we expect (`id` is its ID payload) and proved it over `signed`.
fn check(
    done: &InitDone,
    cfg: &AuthConfig<'_>,
    id: &Id,
    signed: &Signed<'_>,
    proof: &Proof<'_>,
) -> Result<(), AuthError> {
    match Identity::from_wire(id) {
        Some(i) if i == cfg.remote_id => {}
        Some(i) => {
            return Err(AuthError::Rejected(format!(
                "the peer says it is {i}, not {}",
                cfg.remote_id
            )))
        }
        None => {
            return Err(AuthError::Rejected(format!(
                "an identity of type {} espgw does not match",
                id.kind
            )))
        }
    }
    cfg.auth
        .check(done.keys.prf, signed, proof, &cfg.remote_id)
        .map_err(AuthError::Rejected)
}

/// The chosen ESP proposal's key length in bytes (key + 4-byte salt) and ESN.
fn esp_suite(p: &Proposal) -> Result<(usize, bool), AuthError> {
    let enc = p
        .transforms
        .iter()
        .find(|t| t.kind == TransformType::Encryption)
        .ok_or(AuthError::NoProposalChosen)?;
    let bits = enc.key_length().ok_or(AuthError::NoProposalChosen)?;
    let esn = p
        .transforms
        .iter()
        .any(|t| t.kind == TransformType::Esn && t.id == 1);
    Ok((usize::from(bits) / 8 + 4, esn))
}

fn spi4(spi: &[u8]) -> Result<u32, AuthError> {
    let b: [u8; 4] = spi
        .try_into()
        .map_err(|_| AuthError::Malformed("ESP SPI size"))?;
    Ok(u32::from_be_bytes(b))
}

/// KEYMAT for the child: initiator-to-responder key first, then the other way.
fn child_keys(done: &InitDone, key_len: usize) -> (Secret, Secret) {
    let km = done
        .keys
        .prf
        .child_keymat(&done.keys.sk_d, None, &done.ni, &done.nr, 2 * key_len)
        .unwrap_or_default();
    let i_to_r = zeroize::Zeroizing::new(km.get(..key_len).unwrap_or_default().to_vec());
    let r_to_i = zeroize::Zeroizing::new(km.get(key_len..).unwrap_or_default().to_vec());
    (i_to_r, r_to_i)
}

/// The initiator's IKE_AUTH request (message ID 1), offering `cfg.esp` with `our_spi`.
pub fn request(done: &InitDone, cfg: &AuthConfig<'_>, our_spi: u32) -> Result<Vec<u8>, AuthError> {
    let signed = Signed {
        real_message: &done.request,
        peer_nonce: &done.nr,
        sk_p: &done.keys.sk_pi,
        id: &cfg.local_id,
    };
    let (auth, certs) = proof(done, cfg, &signed)?;
    // RFC 7296 section 1.2's order: IDi, [CERT+], [N(INITIAL_CONTACT)], [CERTREQ], [IDr], AUTH.
    let mut inner = vec![Payload::IdI(cfg.local_id.clone())];
    inner.extend(certs);
    if cfg.initial_contact {
        inner.push(Payload::Notify(Notify {
            protocol: 0,
            kind: INITIAL_CONTACT,
            spi: Vec::new(),
            data: Vec::new(),
        }));
    }
    inner.extend(cfg.auth.certreq());
    inner.extend(cfg.remote_id.to_wire().map(Payload::IdR));
    inner.extend([
        auth,
        Payload::Sa(
            cfg.esp
                .iter()
                .enumerate()
                .map(|(i, p)| p.to_wire(i as u8 + 1, Protocol::Esp, our_spi.to_be_bytes().to_vec()))
                .collect(),
        ),
        Payload::TsI(cfg.local_ts.clone()),
        Payload::TsR(cfg.remote_ts.clone()),
    ]);
    let rng = ring::rand::SystemRandom::new();
    Ok(sk::seal(
        &header(done, true, false),
        &inner,
        &done.keys.sk(true)?,
        1,
        &rng,
    )?)
}

/// The responder: checks the initiator's AUTH, chooses the child SA (with `our_spi`) and
/// narrows its selectors, and answers. A wrong key or ID is an error (the caller answers
/// AUTHENTICATION_FAILED and drops the IKE SA); a child it cannot accept is answered with the
/// notification, and the IKE SA stands.
/// `req` is the request opened (`sk::open`, or put back together from its fragments).
pub fn respond(
    done: &InitDone,
    cfg: &AuthConfig<'_>,
    req: &Message,
    our_spi: u32,
) -> Result<Answer, AuthError> {
    let m = req;
    let mut id_i = None;
    let mut sa = None;
    let mut ts_i = None;
    let mut ts_r = None;
    let mut initial_contact = false;
    for p in &m.payloads {
        match p {
            Payload::IdI(id) => id_i = Some(id),
            Payload::Sa(s) => sa = Some(s),
            Payload::TsI(t) => ts_i = Some(t),
            Payload::TsR(t) => ts_r = Some(t),
            Payload::Notify(n) if n.kind == INITIAL_CONTACT => initial_contact = true,
            _ => {}
        }
    }
    let (Some(id_i), Some(proof_i), Some(sa), Some(ts_i), Some(ts_r)) =
        (id_i, Proof::of(&m.payloads), sa, ts_i, ts_r)
    else {
        return Err(AuthError::Malformed(
            "IDi, AUTH, SA, TSi and TSr are required",
        ));
    };
    // The peer must be who we expect, and prove it over its IKE_SA_INIT request.
    let signed = Signed {
        real_message: &done.request,
        peer_nonce: &done.nr,
        sk_p: &done.keys.sk_pi,
        id: id_i,
    };
    check(done, cfg, id_i, &signed, &proof_i)?;
    let (auth, certs) = proof(
        done,
        cfg,
        &Signed {
            real_message: &done.response,
            peer_nonce: &done.ni,
            sk_p: &done.keys.sk_pr,
            id: &cfg.local_id,
        },
    )?;
    let mut inner = vec![Payload::IdR(cfg.local_id.clone())];
    inner.extend(certs);
    inner.push(auth);
    let child = accept_child(done, cfg, sa, ts_i, ts_r, our_spi);
    match &child {
        Ok((child, answer)) => inner.extend([
            Payload::Sa(vec![answer.clone()]),
            Payload::TsI(child.remote_ts.clone()),
            Payload::TsR(child.local_ts.clone()),
        ]),
        Err(e) => inner.push(Payload::Notify(Notify {
            protocol: 0,
            kind: e.notify(),
            spi: Vec::new(),
            data: Vec::new(),
        })),
    }
    let rng = ring::rand::SystemRandom::new();
    let response = sk::seal(
        &header(done, false, true),
        &inner,
        &done.keys.sk(false)?,
        1,
        &rng,
    )?;
    Ok(Answer {
        response,
        child: child.map(|(c, _)| c).map_err(|e| e.notify()),
        initial_contact,
    })
}

/// The child the responder accepts from the initiator's SA and selectors, and the proposal
/// it answers with.
fn accept_child(
    done: &InitDone,
    cfg: &AuthConfig<'_>,
    sa: &[Proposal],
    ts_i: &[TrafficSelector],
    ts_r: &[TrafficSelector],
    our_spi: u32,
) -> Result<(Child, Proposal), AuthError> {
    let chosen = select(cfg.esp, sa, Protocol::Esp).ok_or(AuthError::NoProposalChosen)?;
    let remote_ts = narrow(ts_i, &cfg.remote_ts);
    let local_ts = narrow(ts_r, &cfg.local_ts);
    if remote_ts.is_empty() || local_ts.is_empty() {
        return Err(AuthError::TsUnacceptable);
    }
    let peer_spi = spi4(&chosen.spi)?;
    let (key_len, esn) = esp_suite(&chosen)?;
    let (i_to_r, r_to_i) = child_keys(done, key_len);
    let mut answer = chosen;
    answer.spi = our_spi.to_be_bytes().to_vec();
    Ok((
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
        answer,
    ))
}

/// The initiator: checks the responder's AUTH and its choice for the child. `Err`: the IKE
/// SA failed; `Ok(Err(n))`: the IKE SA stands, the child was refused with notification `n`.
/// `resp` is the response opened (`sk::open`, or put back together from its fragments).
pub fn complete(
    done: &InitDone,
    cfg: &AuthConfig<'_>,
    resp: &Message,
    our_spi: u32,
) -> Result<Result<Child, u16>, AuthError> {
    let m = resp;
    let mut id_r = None;
    let mut sa = None;
    let mut ts = (None, None);
    let mut refused = None;
    for p in &m.payloads {
        match p {
            Payload::IdR(id) => id_r = Some(id),
            Payload::Sa(s) => sa = Some(s),
            Payload::TsI(t) => ts.0 = Some(t),
            Payload::TsR(t) => ts.1 = Some(t),
            Payload::Notify(n) if n.kind < 16384 => refused = Some(n.kind),
            _ => {}
        }
    }
    let (Some(id_r), Some(proof_r)) = (id_r, Proof::of(&m.payloads)) else {
        return match refused {
            Some(AUTHENTICATION_FAILED) | None => Err(AuthError::AuthenticationFailed),
            Some(_) => Err(AuthError::Malformed("IDr and AUTH are required")),
        };
    };
    let signed = Signed {
        real_message: &done.response,
        peer_nonce: &done.ni,
        sk_p: &done.keys.sk_pr,
        id: id_r,
    };
    check(done, cfg, id_r, &signed, &proof_r)?;
    if let Some(n) = refused {
        return Ok(Err(n));
    }
    let (Some([chosen]), (Some(ts_i), Some(ts_r))) = (sa.map(|s| &s[..]), ts) else {
        return Err(AuthError::Malformed(
            "one SA proposal, TSi and TSr are required",
        ));
    };
    // The choice must be one of ours (with the responder's SPI in place of ours), and the
    // selectors within what we proposed.
    let mut offered = chosen.clone();
    offered.spi = our_spi.to_be_bytes().to_vec();
    if !is_choice(cfg.esp, &offered, Protocol::Esp) {
        return Err(AuthError::NoProposalChosen);
    }
    if !within(ts_i, &cfg.local_ts) || !within(ts_r, &cfg.remote_ts) {
        return Err(AuthError::TsUnacceptable);
    }
    let (key_len, esn) = esp_suite(chosen)?;
    let (i_to_r, r_to_i) = child_keys(done, key_len);
    Ok(Ok(Child {
        outbound_spi: spi4(&chosen.spi)?,
        inbound_spi: our_spi,
        outbound_key: i_to_r,
        inbound_key: r_to_i,
        esn,
        local_ts: ts_i.clone(),
        remote_ts: ts_r.clone(),
        slot: 0,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ike::init::{initiate, respond as respond_init};
    use crate::ike::proposal::{parse_esp, parse_ike};
    use crate::ike::wire::TS_IPV4_ADDR_RANGE;
    use ring::rand::SystemRandom;

    fn ts(a: [u8; 4], b: [u8; 4]) -> Vec<TrafficSelector> {
        vec![TrafficSelector {
            kind: TS_IPV4_ADDR_RANGE,
            protocol: 0,
            start_port: 0,
            end_port: 65535,
            start: a.to_vec(),
            end: b.to_vec(),
        }]
    }

    /// A message opened under the key of the side that sent it.
    fn opened(done: &InitDone, bytes: &[u8], from_initiator: bool) -> Message {
        sk::open(bytes, &done.keys.sk(from_initiator).unwrap()).unwrap()
    }

    fn id(s: &str) -> Id {
        Id {
            kind: 2,
            data: s.as_bytes().to_vec(),
        }
    }

    fn fqdn(s: &str) -> Identity {
        Identity::Fqdn(s.into())
    }

    fn psk(k: &[u8]) -> Auth {
        Auth::Psk(zeroize::Zeroizing::new(k.to_vec()))
    }

    /// Two cores from nothing to a child SA: IKE_SA_INIT, then IKE_AUTH with a pre-shared
    /// key; each side's outbound key is the other's inbound one.
    #[test]
    fn two_cores_agree_on_a_child_sa() {
        // The IKE SA under AES-GCM, and under AES-CBC with each HMAC.
        for ike in [
            "aes256gcm16-prfsha256-x25519",
            "aes128gcm16-prfsha384-ecp256",
            "aes256-sha256-x25519",
            "aes128-sha384-ecp384",
            "aes256-sha512-ecp256",
        ] {
            agree(ike);
        }
    }

    fn agree(ike: &str) {
        let rng = SystemRandom::new();
        let ike = [parse_ike(ike).unwrap()];
        let esp = [parse_esp("aes128gcm16").unwrap()];
        let (net1, net2) = (
            ts([10, 1, 0, 0], [10, 1, 255, 255]),
            ts([10, 2, 0, 0], [10, 2, 255, 255]),
        );
        let (shared, another) = (psk(b"shared secret"), psk(b"another secret"));
        let gw1 = AuthConfig {
            auth: &shared,
            local_id: id("gw1.example"),
            remote_id: fqdn("gw2.example"),
            esp: &esp,
            local_ts: net1.clone(),
            remote_ts: net2.clone(),
            initial_contact: true,
        };
        let gw2 = AuthConfig {
            auth: &shared,
            local_id: id("gw2.example"),
            remote_id: fqdn("gw1.example"),
            esp: &esp,
            local_ts: net2.clone(),
            remote_ts: net1.clone(),
            initial_contact: false,
        };
        let i = initiate(&ike, Default::default(), &rng).unwrap();
        let r_done = respond_init(&ike, &i.request, None, &Default::default(), &rng).unwrap();
        let i_done = i.complete(&ike, &r_done.response).unwrap();

        let req = request(&i_done, &gw1, 0xc1c1_0001).unwrap();
        let a = respond(&r_done, &gw2, &opened(&r_done, &req, true), 0xc2c2_0002).unwrap();
        assert!(a.initial_contact);
        let r_child = a.child.unwrap();
        let i_child = complete(
            &i_done,
            &gw1,
            &opened(&i_done, &a.response, false),
            0xc1c1_0001,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (i_child.outbound_spi, i_child.inbound_spi),
            (0xc2c2_0002, 0xc1c1_0001)
        );
        assert_eq!(
            (r_child.outbound_spi, r_child.inbound_spi),
            (0xc1c1_0001, 0xc2c2_0002)
        );
        assert_eq!(i_child.outbound_key.len(), 20, "AES-128 key and salt");
        assert_eq!(*i_child.outbound_key, *r_child.inbound_key);
        assert_eq!(*i_child.inbound_key, *r_child.outbound_key);
        assert_ne!(*i_child.outbound_key, *i_child.inbound_key);
        assert!(!i_child.esn);
        assert_eq!(r_child.local_ts, net2);

        // A wrong key on either side: AUTHENTICATION_FAILED.
        let bad = AuthConfig {
            auth: &another,
            ..gw2
        };
        assert!(matches!(
            respond(&r_done, &bad, &opened(&r_done, &req, true), 2),
            Err(AuthError::Rejected(e)) if e == "wrong pre-shared key"
        ));
        let impostor = AuthConfig {
            auth: &another,
            local_id: gw1.local_id.clone(),
            remote_id: gw1.remote_id.clone(),
            local_ts: gw1.local_ts.clone(),
            remote_ts: gw1.remote_ts.clone(),
            ..gw1
        };
        let req2 = request(&i_done, &impostor, 1).unwrap();
        let gw2 = AuthConfig {
            auth: &shared,
            ..bad
        };
        assert!(matches!(
            respond(&r_done, &gw2, &opened(&r_done, &req2, true), 2),
            Err(AuthError::Rejected(e)) if e == "wrong pre-shared key"
        ));

        // Selectors with nothing in common: the IKE SA stands, the child is refused with
        // TS_UNACCEPTABLE, and the initiator learns exactly that.
        let elsewhere = AuthConfig {
            remote_ts: ts([192, 168, 0, 0], [192, 168, 0, 255]),
            ..gw2
        };
        let req = request(&i_done, &gw1, 7).unwrap();
        let a = respond(&r_done, &elsewhere, &opened(&r_done, &req, true), 8).unwrap();
        assert_eq!(a.child.err(), Some(TS_UNACCEPTABLE));
        assert_eq!(
            complete(&i_done, &gw1, &opened(&i_done, &a.response, false), 7)
                .unwrap()
                .err(),
            Some(TS_UNACCEPTABLE)
        );
        // A wider policy: narrowed to the proposal.
        let wide = AuthConfig {
            remote_ts: ts([10, 0, 0, 0], [10, 255, 255, 255]),
            ..elsewhere
        };
        let a = respond(&r_done, &wide, &opened(&r_done, &req, true), 8).unwrap();
        let Ok(c) = a.child else { panic!("refused") };
        assert_eq!(c.remote_ts, net1);
    }
}
