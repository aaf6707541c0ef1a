//! Rekeying the IKE SA (RFC 7296 sections 1.3.2 and 2.18): CREATE_CHILD_SA with an IKE
//! proposal (the new SPI in it), nonces and a new key exchange. The new IKE SA's keys come
//! from the old SA's SK_d and the new DH secret; it starts with message IDs at 0, takes over
//! the children (their SAs do not change: no packet notices), and the rekey's initiator then
//! deletes the old IKE SA. The caller gets the new SA as `Action::Rekeyed`.
//!
//! Both sides rekeying at once (RFC 7296 sections 2.8.2 and 2.25.2): each answers the other
//! as usual, and once both exchanges are done the one with the lowest of the four nonces made
//! the redundant IKE SA, which its initiator deletes; the children go to the other, whose
//! initiator deletes the old IKE SA.

use super::*;
use crate::ike::dh::{Group, KeyPair};
use crate::ike::init::{rekeyed, suite, INVALID_KE_PAYLOAD, NO_PROPOSAL_CHOSEN};
use crate::ike::proposal::{is_choice, select};
use crate::ike::wire::Protocol;
use ring::rand::SecureRandom;

/// TEMPORARY_FAILURE (RFC 7296 section 2.25): a rekey of ours is under way.
const TEMPORARY_FAILURE: u16 = 43;
const NONCE_LEN: usize = 32;

/// A peer's rekey of this IKE SA answered while ours was out: the SA it made (the children
/// stay here until ours is done) and the lower of its two nonces.
pub(super) struct IkeCollision {
    sa: Box<IkeSa>,
    nonce: Vec<u8>,
}

/// Our IKE rekey request between send and answer.
pub(super) struct IkeRekey {
    spi: u64,
    ni: Vec<u8>,
    dh: KeyPair,
}

fn random(rng: &SystemRandom, n: usize) -> Option<Vec<u8>> {
    let mut b = vec![0u8; n];
    rng.fill(&mut b).ok()?;
    Some(b)
}

fn notify(kind: u16, data: Vec<u8>) -> Vec<Payload> {
    vec![Payload::Notify(Notify {
        protocol: 0,
        kind,
        spi: Vec::new(),
        data,
    })]
}

/// Whether a CREATE_CHILD_SA request rekeys the IKE SA (its SA payload is for IKE).
pub(super) fn is_ike_rekey(payloads: &[Payload]) -> bool {
    payloads.iter().any(
        |p| matches!(p, Payload::Sa(s) if s.first().is_some_and(|p| p.protocol == Protocol::Ike)),
    )
}

impl IkeSa {
    /// A new IKE SA from a rekey (without the children: `adopt` moves them).
    fn successor(&self, role: Role, done: InitDone, now: Instant) -> IkeSa {
        let mut n = IkeSa::new(self.settings.clone(), role, self.path, now);
        n.spi_i = done.spi_i;
        n.spi_r = done.spi_r;
        n.nat = self.nat;
        n.behind_nat = self.behind_nat;
        n.done = Some(done);
        n.iv = 0;
        n.state = State::Established;
        n.established_at = Some(now);
        n.stats.ike_rekeys = self.stats.ike_rekeys + 1;
        n
    }

    /// `new` takes over this SA's children and carries on for it.
    fn adopt(&mut self, mut new: IkeSa) {
        new.children = std::mem::take(&mut self.children);
        self.succeeded = true;
        self.actions.push_back(Action::Rekeyed(Box::new(new)));
    }

    /// The redundant IKE SA of a simultaneous rekey, handed up to live until it is deleted
    /// (by us when `ours`: we made it); its end is no event.
    fn redundant(&mut self, mut sa: IkeSa, ours: bool, now: Instant) {
        sa.succeeded = true;
        if ours {
            sa.delete(now);
        }
        self.actions.push_back(Action::Redundant(Box::new(sa)));
    }

    /// Deletes this IKE SA, replaced by a rekey (its children live on in the successor).
    fn delete_replaced(&mut self, now: Instant) {
        let d = Payload::Delete {
            protocol: 1,
            spi_size: 0,
            spis: Vec::new(),
        };
        self.informational_request(now, &[d], Asking::Delete);
        self.state = State::Deleting;
    }

    /// Starts a rekey of this IKE SA; false when another request is out.
    pub fn rekey_ike(&mut self, now: Instant) -> bool {
        if self.state != State::Established || self.out.is_some() || self.succeeded {
            return false;
        }
        let group = self.done.as_ref().map(|d| d.suite.group);
        self.rekey_ike_in(now, group);
        true
    }

    fn rekey_ike_in(&mut self, now: Instant, group: Option<Group>) {
        let Some(group) = group else { return };
        let (Ok(dh), Some(ni), Some(spi)) = (
            KeyPair::generate(group, &self.rng),
            random(&self.rng, NONCE_LEN),
            random(&self.rng, 8),
        ) else {
            return;
        };
        let spi = u64::from_be_bytes(spi.try_into().unwrap_or([1; 8])).max(1);
        let inner = vec![
            Payload::Sa(
                self.settings
                    .ike
                    .iter()
                    .enumerate()
                    .map(|(i, p)| p.to_wire(i as u8 + 1, Protocol::Ike, spi.to_be_bytes().to_vec()))
                    .collect(),
            ),
            Payload::Nonce(ni.clone()),
            Payload::Ke {
                group: group.id(),
                data: dh.public.clone(),
            },
        ];
        let id = self.next_id;
        if let Some(b) = self.seal(Exchange::CreateChildSa, id, false, &inner) {
            self.next_id = id.wrapping_add(1);
            self.send_request(now, id, b, Asking::RekeyIke(IkeRekey { spi, ni, dh }));
        }
    }

    /// The peer rekeys this IKE SA: the answer's payloads; the new SA is an action (or, if
    /// our own rekey is out, kept until ours is done).
    pub(super) fn answer_ike_rekey(&mut self, now: Instant, payloads: &[Payload]) -> Vec<Payload> {
        let colliding = matches!(
            self.out,
            Some(Outstanding {
                what: Asking::RekeyIke(_),
                ..
            })
        );
        // Being closed (replaced already, or deleted): the peer hears of it next.
        if self.succeeded
            || self.state != State::Established
            || (colliding && self.ike_collision.is_some())
        {
            return notify(TEMPORARY_FAILURE, Vec::new());
        }
        let (mut sa, mut ni, mut ke) = (None, None, None);
        for p in payloads {
            match p {
                Payload::Sa(s) => sa = Some(&s[..]),
                Payload::Nonce(n) => ni = Some(&n[..]),
                Payload::Ke { group, data } => ke = Some((*group, &data[..])),
                _ => {}
            }
        }
        let (Some(sa), Some(ni), Some((kg, kdata))) = (sa, ni, ke) else {
            return notify(7, Vec::new()); // INVALID_SYNTAX
        };
        let Some(chosen) = select(&self.settings.ike, sa, Protocol::Ike) else {
            return notify(NO_PROPOSAL_CHOSEN, Vec::new());
        };
        let Ok(s) = suite(&chosen) else {
            return notify(NO_PROPOSAL_CHOSEN, Vec::new());
        };
        if kg != s.group.id() {
            return notify(INVALID_KE_PAYLOAD, s.group.id().to_be_bytes().to_vec());
        }
        let Ok(peer_spi) = <[u8; 8]>::try_from(chosen.spi.as_slice()) else {
            return notify(7, Vec::new());
        };
        let (Ok(dh), Some(nr), Some(spi)) = (
            KeyPair::generate(s.group, &self.rng),
            random(&self.rng, NONCE_LEN),
            random(&self.rng, 8),
        ) else {
            return notify(TEMPORARY_FAILURE, Vec::new());
        };
        let our_spi = u64::from_be_bytes(spi.try_into().unwrap_or([1; 8])).max(1);
        let public = dh.public.clone();
        let Ok(gir) = dh.agree(kdata) else {
            return notify(INVALID_KE_PAYLOAD, s.group.id().to_be_bytes().to_vec());
        };
        let Some(old) = &self.done else {
            return notify(TEMPORARY_FAILURE, Vec::new());
        };
        let spi_i = u64::from_be_bytes(peer_spi);
        let keys = rekeyed(&old.keys, s, ni, &nr, &gir, spi_i, our_spi);
        let done = InitDone {
            spi_i,
            spi_r: our_spi,
            keys,
            suite: s,
            ni: ni.to_vec(),
            nr: nr.clone(),
            request: Vec::new(),
            response: Vec::new(),
            nat: self.nat,
            behind_nat: self.behind_nat,
            // IKE fragmentation carries over (RFC 7383 section 2.3).
            fragmentation: old.fragmentation,
            peer_hashes: old.peer_hashes.clone(),
        };
        // The peer started the rekey: it is the new SA's initiator.
        let new = self.successor(Role::Responder, done, now);
        if colliding {
            self.ike_collision = Some(IkeCollision {
                sa: Box::new(new),
                nonce: ni.min(&nr[..]).to_vec(),
            });
        } else {
            self.adopt(new);
        }
        let mut answer = chosen;
        answer.spi = our_spi.to_be_bytes().to_vec();
        vec![
            Payload::Sa(vec![answer]),
            Payload::Nonce(nr),
            Payload::Ke {
                group: s.group.id(),
                data: public,
            },
        ]
    }

    /// The answer to our IKE rekey: the new SA, then the delete of this one.
    pub(super) fn ike_rekey_answered(&mut self, now: Instant, r: IkeRekey, payloads: &[Payload]) {
        let (mut sa, mut nr, mut ke) = (None, None, None);
        for p in payloads {
            match p {
                Payload::Notify(n) if n.kind == INVALID_KE_PAYLOAD => {
                    let g = n.data.get(..2).map(|g| u16::from_be_bytes([g[0], g[1]]));
                    let group = g.and_then(|g| Group::from_id(g).ok());
                    if group.is_some() && group != Some(r.dh.group()) {
                        return self.rekey_ike_in(now, group);
                    }
                    return self.ike_rekey_failed(now, "INVALID_KE_PAYLOAD");
                }
                Payload::Notify(n) if n.kind < 16384 => {
                    return self.ike_rekey_failed(now, &notify_name(n.kind));
                }
                Payload::Sa(s) => sa = Some(&s[..]),
                Payload::Nonce(n) => nr = Some(&n[..]),
                Payload::Ke { group, data } => ke = Some((*group, &data[..])),
                _ => {}
            }
        }
        let (Some([chosen]), Some(nr), Some((kg, kdata))) = (sa, nr, ke) else {
            return self.ike_rekey_failed(now, "a malformed answer");
        };
        let mut offered = chosen.clone();
        offered.spi = r.spi.to_be_bytes().to_vec();
        let Ok(s) = suite(chosen) else {
            return self.ike_rekey_failed(now, "NO_PROPOSAL_CHOSEN");
        };
        if !is_choice(&self.settings.ike, &offered, Protocol::Ike)
            || kg != r.dh.group().id()
            || s.group != r.dh.group()
        {
            return self.ike_rekey_failed(now, "NO_PROPOSAL_CHOSEN");
        }
        let Ok(peer_spi) = <[u8; 8]>::try_from(chosen.spi.as_slice()) else {
            return self.ike_rekey_failed(now, "a malformed answer");
        };
        let Ok(gir) = r.dh.agree(kdata) else {
            return self.ike_rekey_failed(now, "a bad KE");
        };
        let Some(old) = &self.done else { return };
        let spi_r = u64::from_be_bytes(peer_spi);
        let keys = rekeyed(&old.keys, s, &r.ni, nr, &gir, r.spi, spi_r);
        let mine = r.ni.as_slice().min(nr).to_vec();
        let done = InitDone {
            spi_i: r.spi,
            spi_r,
            keys,
            suite: s,
            ni: r.ni,
            nr: nr.to_vec(),
            request: Vec::new(),
            response: Vec::new(),
            nat: self.nat,
            behind_nat: self.behind_nat,
            // IKE fragmentation carries over (RFC 7383 section 2.3).
            fragmentation: old.fragmentation,
            peer_hashes: old.peer_hashes.clone(),
        };
        let new = self.successor(Role::Initiator, done, now);
        match self.ike_collision.take() {
            None => {
                // The old SA goes; its children live on in the new one.
                self.adopt(new);
                self.delete_replaced(now);
            }
            // Ours made the redundant SA: we delete it, the peer deletes the old one.
            Some(c) if mine < c.nonce => {
                self.adopt(*c.sa);
                self.redundant(new, true, now);
            }
            // The peer's did: it deletes that one, and we the old.
            Some(c) => {
                self.adopt(new);
                self.redundant(*c.sa, false, now);
                self.delete_replaced(now);
            }
        }
    }

    /// The IKE SA stays as it is; the next try comes at the next timer. If the peer's rekey
    /// crossed ours, it alone replaces this SA (the peer deletes this one).
    fn ike_rekey_failed(&mut self, now: Instant, why: &str) {
        if let Some(c) = self.ike_collision.take() {
            self.adopt(*c.sa);
            return;
        }
        self.rekey_ike_at = Some(now + self.settings.retransmit.timeout * 4);
        self.actions
            .push_back(Action::ChildFailed(format!("IKE SA rekey: {why}")));
    }
}
