//! The IKE SA (RFC 7296), sans IO: a state machine that takes datagrams and the time, and
//! says what to send and which child SAs it has. It owns the message IDs (one request of
//! ours outstanding at a time, RFC 7296 section 2.3), retransmits its request with
//! exponential back-off until the peer answers or the tries run out (section 2.1), answers a
//! repeated request from the cached response (section 2.1), checks liveness (DPD, section
//! 2.4), rekeys children make-before-break (section 2.8) and deletes (section 1.4.1).
//!
//! The message formats and keys of each exchange are in `ike::init`, `ike::ike_auth` and
//! `ike::create_child`; here `setup` drives IKE_SA_INIT and IKE_AUTH, `child` CREATE_CHILD_SA
//! for children, `informational` deletes and liveness. The caller (the IKE manager) owns sockets, the
//! clock and the dataplane: after every call it takes `actions()` in order, and must bring
//! the dataplane in line with `children()` at each `Action::Children` before it sends what
//! follows (that is how a new inbound SA is in force before the peer can use it).

mod child;
mod ike_rekey;
mod informational;
mod messages;
mod settings;
mod setup;
mod timers;

use settings::{auth_config, auth_esp};
pub use settings::{Candidates, ChildSelectors, Retransmit, Settings};

use super::auth::Auth;
use super::create_child::{self, ChildConfig, Derive, Pending as ChildPending, Refused, PROTO_ESP};
use super::fragment;
use super::identity::Identity;
use super::ike_auth::{self, AuthConfig, AuthError, Child};
use super::init::{self, Addrs, InitDone, Initiator, Refusal, Start};
use super::proposal::ProposalSpec;
use super::selectors::narrow;
use super::sk::{self, SkError};
use super::wire::{Exchange, Flags, Header, Id, Message, Notify, Payload, TrafficSelector};
use ring::rand::SystemRandom;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A NAT keepalive after this long without sending (RFC 3948 section 2.3 suggests 20 s).
pub const NATT_KEEPALIVE: Duration = Duration::from_secs(20);

/// Where IKE goes between (after NAT-T, UDP 4500 on both sides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Path {
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Initiator,
    Responder,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Our IKE_SA_INIT request is out.
    Connecting,
    /// IKE_SA_INIT is done; IKE_AUTH is under way.
    Authenticating,
    Established,
    /// Our delete is out.
    Deleting,
    Closed,
}

/// Why an IKE SA closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Close {
    /// The peer stopped answering (retransmissions ran out: DPD says dead).
    Timeout,
    /// The peer deleted it.
    DeletedByPeer,
    /// We deleted it.
    Deleted,
    /// The negotiation failed with this notification (ours or the peer's), or locally.
    Failed(String),
    /// A rekey replaced it (its successor carries on).
    Rekeyed,
}

/// What the caller does, in order.
#[derive(Debug)]
pub enum Action {
    Send {
        path: Path,
        bytes: Vec<u8>,
    },
    /// The children changed: bring the dataplane in line before the next `Send`.
    Children,
    Established,
    /// A child SA was refused (with this notification), or its rekey failed; the IKE SA
    /// stands.
    ChildFailed(String),
    /// The IKE SA was rekeyed: this is the new one, with the children; the old one goes.
    Rekeyed(Box<IkeSa>),
    /// A redundant IKE SA from a simultaneous rekey (RFC 7296 section 2.8.2): no children,
    /// kept only until it is deleted (its own delete may be in its actions).
    Redundant(Box<IkeSa>),
    Closed(Close),
}

/// A child SA as the dataplane carries it.
pub struct ChildSa {
    pub sa: Child,
    /// Our traffic leaves with this child (the newest of a rekey, once both sides have it).
    pub outbound: bool,
    pub made: Instant,
    /// Replaced by a rekey: removed at this time.
    pub retire_at: Option<Instant>,
    /// A rekey of it is under way or done.
    pub rekeyed: bool,
    /// Its soft volume lifetime ran out (the dataplane's event) while the IKE SA was busy:
    /// it is rekeyed as soon as the IKE SA is free.
    pub rekey_due: bool,
    /// Its rekey comes this fraction (0..0.05) of the rekey time early: children made
    /// together are not all rekeyed in the same instant.
    jitter: f64,
}

impl ChildSa {
    /// The share of its hard volume lifetime (bytes, packets) after which it is rekeyed:
    /// 90 %, up to 5 % earlier at random (fixed per child, as its time).
    pub fn soft_share(&self) -> f64 {
        0.9 - self.jitter
    }
}

/// Counters an operator reads.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct SaStats {
    pub exchanges: u64,
    pub retransmits: u64,
    pub duplicates_answered: u64,
    pub invalid: u64,
    pub child_rekeys: u64,
    /// Rekeys of the IKE SA this one descends from.
    pub ike_rekeys: u64,
    /// NAT keepalives sent.
    pub keepalives: u64,
    pub dpd_sent: u64,
    /// Our messages sent in fragments, and the peer's put back together (RFC 7383).
    pub fragmented: u64,
    pub reassembled: u64,
    /// It reached its hard lifetime unrekeyed and was deleted.
    pub expired: bool,
}

/// Our request between send and answer.
struct Outstanding {
    id: u32,
    /// The request as sent: one datagram, or its fragments.
    bytes: Vec<Vec<u8>>,
    sends: u32,
    next: Instant,
    first_sent: Instant,
    schedule: Retransmit,
    what: Asking,
}

enum Asking {
    Init(Initiator),
    Auth,
    Liveness,
    Delete,
    DeleteChild(u32),
    CreateChild(ChildPending),
    RekeyIke(ike_rekey::IkeRekey),
}

/// An encrypted message of the peer's as it arrived: one datagram (opened when needed), or
/// put back together from its fragments (opened already).
enum Incoming<'a> {
    Whole(&'a [u8]),
    Reassembled(Message),
}

/// Whether `bytes` is the first fragment of a message (RFC 7383: it alone may be answered
/// with the cached response).
fn is_first_fragment(bytes: &[u8]) -> bool {
    Message::parse(bytes)
        .is_ok_and(|m| matches!(m.payloads.last(), Some(Payload::Skf { number: 1, .. })))
}

/// A peer's rekey of a child that collided with ours (RFC 7296 section 2.8.1).
struct Collision {
    /// The child both rekey (our inbound SPI).
    old: u32,
    /// The child the peer's exchange made (our inbound SPI).
    theirs: u32,
    /// The lower of that exchange's two nonces.
    nonce: Vec<u8>,
}

/// The SPIs the caller allocates for our inbound child SAs (unique across the gateway).
pub trait SpiSource {
    fn next_spi(&mut self) -> u32;
}

pub struct IkeSa {
    settings: Arc<Settings>,
    pub role: Role,
    pub state: State,
    pub path: Path,
    pub spi_i: u64,
    pub spi_r: u64,
    /// A NAT between us (or ESP in UDP forced): the children carry ESP in UDP.
    pub nat: bool,
    /// We are behind the NAT: keepalives keep its mapping open.
    pub behind_nat: bool,
    /// When we last sent anything (a keepalive is due 20 s after).
    last_sent: Instant,
    done: Option<InitDone>,
    start: Start,
    /// Our next request's message ID, and the peer's.
    next_id: u32,
    peer_next: u32,
    cached: Option<(u32, Vec<Vec<u8>>)>,
    /// The fragments of the peer's messages under way (RFC 7383): a request's, a response's.
    reassembly: [Option<fragment::Reassembly>; 2],
    out: Option<Outstanding>,
    /// GCM IVs under our key (RFC 5282: never twice): IKE_AUTH used 1.
    iv: u64,
    children: Vec<ChildSa>,
    last_heard: Instant,
    pub made: Instant,
    pub established_at: Option<Instant>,
    actions: VecDeque<Action>,
    pub stats: SaStats,
    /// The peer said INITIAL_CONTACT: its other IKE SAs with us are stale.
    pub initial_contact: bool,
    /// Our IKE_AUTH says INITIAL_CONTACT (RFC 7296 section 2.4): only while we hold no other
    /// IKE SA with the peer's identity, or the peer would drop those as stale.
    pub send_initial_contact: bool,
    /// Our SPI offered in IKE_AUTH, until the answer.
    pending_spi: Option<u32>,
    /// A responder's possible settings until IKE_AUTH says which applies (the peer's
    /// selectors pick the VPN).
    candidates: Option<Arc<Candidates>>,
    /// A successor took over (IKE SA rekey): this one only waits to be deleted.
    succeeded: bool,
    /// When to try an IKE rekey again after one failed.
    rekey_ike_at: Option<Instant>,
    /// The peer's rekey of a child we are rekeying too, answered while ours is out.
    collision: Option<Collision>,
    /// The peer's rekey of this IKE SA, answered while ours is out.
    ike_collision: Option<ike_rekey::IkeCollision>,
    /// The VPN's children (slots, a bit each) asked for under this IKE SA.
    asked_slots: u32,
    rng: SystemRandom,
}

/// What an operator may see of an IKE SA: never its keys.
impl std::fmt::Debug for IkeSa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IkeSa")
            .field("role", &self.role)
            .field("state", &self.state)
            .field("spi_i", &format_args!("{:016x}", self.spi_i))
            .field("spi_r", &format_args!("{:016x}", self.spi_r))
            .field("path", &self.path)
            .field("children", &self.children.len())
            .finish()
    }
}

impl IkeSa {
    fn new(settings: Arc<Settings>, role: Role, path: Path, now: Instant) -> IkeSa {
        IkeSa {
            settings,
            role,
            state: State::Connecting,
            path,
            spi_i: 0,
            spi_r: 0,
            nat: false,
            behind_nat: false,
            last_sent: now,
            done: None,
            start: Start::default(),
            next_id: 0,
            peer_next: 0,
            cached: None,
            reassembly: [None, None],
            out: None,
            iv: 2,
            children: Vec::new(),
            last_heard: now,
            made: now,
            established_at: None,
            actions: VecDeque::new(),
            stats: SaStats::default(),
            initial_contact: false,
            send_initial_contact: true,
            pending_spi: None,
            candidates: None,
            succeeded: false,
            rekey_ike_at: None,
            collision: None,
            ike_collision: None,
            asked_slots: 1,
            rng: SystemRandom::new(),
        }
    }

    /// Starts an IKE SA towards `path.remote`: the IKE_SA_INIT request is the first action.
    pub fn initiate(settings: Arc<Settings>, path: Path, now: Instant) -> IkeSa {
        let mut sa = IkeSa::new(settings, Role::Initiator, path, now);
        sa.start = Start {
            addrs: Some(Addrs {
                local: path.local,
                remote: path.remote,
            }),
            force_encap: sa.settings.force_encap,
            fragmentation: sa.settings.fragment_size.is_some(),
            ..Start::default()
        };
        sa.send_init(now);
        sa
    }

    /// Answers an IKE_SA_INIT request that came along `path` with the first of `candidates`
    /// (which share the IKE proposals and key: they are the VPNs with one gateway; IKE_AUTH
    /// picks among them). `Err`: nothing to keep (the answer, if any, is in the actions:
    /// INVALID_KE_PAYLOAD or NO_PROPOSAL_CHOSEN).
    pub fn respond(
        candidates: Arc<Candidates>,
        path: Path,
        request: &[u8],
        now: Instant,
    ) -> Result<IkeSa, Vec<Action>> {
        let Some(settings) = candidates.first().cloned() else {
            return Err(Vec::new());
        };
        let mut sa = IkeSa::new(settings, Role::Responder, path, now);
        sa.candidates = Some(candidates);
        let addrs = Addrs {
            local: path.local,
            remote: path.remote,
        };
        let answering = init::Answering {
            fragmentation: sa.settings.fragment_size.is_some(),
            certreq: sa.settings.auth.certreq(),
        };
        match init::respond(&sa.settings.ike, request, Some(addrs), &answering, &sa.rng) {
            Ok(d) => {
                sa.spi_i = d.spi_i;
                sa.spi_r = d.spi_r;
                sa.nat = d.nat || sa.settings.force_encap;
                sa.behind_nat = d.behind_nat;
                sa.cached = Some((0, vec![d.response.clone()]));
                sa.peer_next = 1;
                sa.actions.push_back(Action::Send {
                    path,
                    bytes: d.response.clone(),
                });
                sa.done = Some(d);
                sa.state = State::Authenticating;
                sa.stats.exchanges += 1;
                Ok(sa)
            }
            Err(e) => {
                let Ok(m) = Message::parse(request) else {
                    return Err(Vec::new());
                };
                let (kind, data) = match e {
                    init::InitError::InvalidKe(g) => {
                        (init::INVALID_KE_PAYLOAD, g.to_be_bytes().to_vec())
                    }
                    init::InitError::NoProposalChosen => (init::NO_PROPOSAL_CHOSEN, Vec::new()),
                    _ => return Err(Vec::new()),
                };
                Err(vec![Action::Send {
                    path,
                    bytes: init::refuse(&m.header, kind, data),
                }])
            }
        }
    }

    /// Whether IKE fragmentation was agreed with the peer.
    pub fn fragmentation(&self) -> bool {
        self.done.as_ref().is_some_and(|d| d.fragmentation)
    }

    pub fn settings(&self) -> &Arc<Settings> {
        &self.settings
    }

    pub fn children(&self) -> &[ChildSa] {
        &self.children
    }

    /// When child `c` is due for its rekey (none once under way or replaced) and when it
    /// goes (replaced: at the end of its grace; otherwise its hard lifetime by time).
    pub fn child_times(&self, c: &ChildSa) -> (Option<Instant>, Option<Instant>) {
        let rekey = match (
            self.settings.child_rekey,
            c.rekeyed || c.retire_at.is_some(),
        ) {
            (Some(k), false) => Some(c.made + self.rekey_after(k, c.jitter)),
            _ => None,
        };
        let expires = c
            .retire_at
            .or_else(|| self.settings.child_lifetime.map(|l| c.made + l));
        (rekey, expires)
    }

    pub fn actions(&mut self) -> impl Iterator<Item = Action> + '_ {
        self.actions.drain(..)
    }

    /// Something arrived from the peer's side without IKE (its ESP, per the dataplane's
    /// counters): the peer is alive, no DPD needed.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = self.last_heard.max(now);
    }

    fn close(&mut self, why: Close) {
        if self.state == State::Closed {
            return;
        }
        // After a rekey this SA's end is no event: its successor carries on.
        let why = if self.succeeded { Close::Rekeyed } else { why };
        self.state = State::Closed;
        self.out = None;
        if !self.children.is_empty() {
            self.children.clear();
            self.actions.push_back(Action::Children);
        }
        self.actions.push_back(Action::Closed(why));
    }

    /// A datagram for this IKE SA (its SPIs matched) arrived along `path`.
    pub fn handle(&mut self, now: Instant, path: Path, bytes: &[u8], spis: &mut dyn SpiSource) {
        let Ok(m) = Message::parse(bytes) else {
            self.stats.invalid += 1;
            return;
        };
        let h = m.header;
        if matches!(m.payloads.last(), Some(Payload::Skf { .. })) {
            return self.fragment_in(now, path, bytes, h, spis);
        }
        if h.flags.response {
            self.handle_response(now, path, h, Incoming::Whole(bytes), spis);
        } else {
            self.handle_request(now, path, Incoming::Whole(bytes), h, spis);
        }
    }

    fn handle_response(
        &mut self,
        now: Instant,
        path: Path,
        h: Header,
        body: Incoming<'_>,
        spis: &mut dyn SpiSource,
    ) {
        let Some(out) = self.out.take() else {
            self.stats.invalid += 1;
            return;
        };
        if h.message_id != out.id || h.flags.initiator == (self.role == Role::Initiator) {
            self.stats.invalid += 1;
            self.out = Some(out);
            return;
        }
        match out.what {
            Asking::Init(i) => match body {
                Incoming::Whole(bytes) => match Message::parse(bytes) {
                    Ok(m) => self.init_answered(now, bytes, &m, i, spis),
                    Err(_) => self.stats.invalid += 1,
                },
                // IKE_SA_INIT is never fragmented.
                Incoming::Reassembled(_) => {
                    self.stats.invalid += 1;
                    self.out = Some(Outstanding {
                        what: Asking::Init(i),
                        ..out
                    });
                }
            },
            Asking::Auth => self.auth_answered(now, path, body, out),
            what => {
                let Some(inner) = self.open_incoming(body) else {
                    self.stats.invalid += 1;
                    self.out = Some(Outstanding { what, ..out });
                    return;
                };
                self.stats.exchanges += 1;
                self.last_heard = now;
                self.path = path;
                self.answered(now, what, &inner.payloads, spis);
            }
        }
    }

    /// The answer to our request.
    fn answered(
        &mut self,
        now: Instant,
        what: Asking,
        payloads: &[Payload],
        spis: &mut dyn SpiSource,
    ) {
        match what {
            Asking::Init(_) | Asking::Auth => {}
            Asking::Liveness => {}
            Asking::Delete => self.close(Close::Deleted),
            Asking::DeleteChild(inbound) => {
                // The old inbound SA stays for the grace period: packets already on the way.
                if let Some(c) = self
                    .children
                    .iter_mut()
                    .find(|c| c.sa.inbound_spi == inbound)
                {
                    c.retire_at = Some(now + self.settings.grace);
                    c.outbound = false;
                }
            }
            Asking::CreateChild(pending) => self.child_answered(now, pending, payloads, spis),
            Asking::RekeyIke(r) => self.ike_rekey_answered(now, r, payloads),
        }
    }

    fn established(&mut self, now: Instant) {
        self.state = State::Established;
        self.established_at = Some(now);
        self.last_heard = now;
        self.actions.push_back(Action::Established);
    }

    fn add_child(&mut self, c: Child, now: Instant, outbound: bool) {
        self.children.push(ChildSa {
            sa: c,
            outbound,
            made: now,
            retire_at: None,
            rekeyed: false,
            rekey_due: false,
            jitter: {
                let mut b = [0u8; 2];
                let _ = ring::rand::SecureRandom::fill(&self.rng, &mut b);
                f64::from(u16::from_be_bytes(b)) / f64::from(u16::MAX) * 0.05
            },
        });
        self.actions.push_back(Action::Children);
    }

    /// The peer's request: answered once (a repeat from the cache), in order.
    fn handle_request(
        &mut self,
        now: Instant,
        path: Path,
        body: Incoming<'_>,
        h: Header,
        spis: &mut dyn SpiSource,
    ) {
        if h.flags.initiator == (self.role == Role::Initiator) {
            self.stats.invalid += 1;
            return;
        }
        if let Some((id, resp)) = &self.cached {
            if h.message_id == *id {
                let resp = resp.clone();
                self.stats.duplicates_answered += 1;
                self.send_all(path, &resp);
                return;
            }
        }
        if h.message_id != self.peer_next {
            self.stats.invalid += 1;
            return;
        }
        if h.exchange == Exchange::IkeAuth
            && self.state == State::Authenticating
            && self.role == Role::Responder
        {
            return self.answer_auth(now, path, body, spis);
        }
        if self.state != State::Established && self.state != State::Deleting {
            self.stats.invalid += 1;
            return;
        }
        let Some(m) = self.open_incoming(body) else {
            // Not from the peer, or mangled: changes nothing (RFC 7296 section 2.21).
            self.stats.invalid += 1;
            return;
        };
        self.stats.exchanges += 1;
        self.last_heard = now;
        // RFC 7296 section 2.23: an authenticated message says where the peer is now.
        self.path = path;
        self.peer_next = h.message_id.wrapping_add(1);
        let (inner, closes) = match h.exchange {
            Exchange::Informational => self.informational(now, &m.payloads),
            Exchange::CreateChildSa => (self.create_child(now, &m.payloads, spis), false),
            _ => (Vec::new(), false),
        };
        let Some(resp) = self.seal(h.exchange, h.message_id, true, &inner) else {
            return;
        };
        self.last_sent = now;
        self.send_all(path, &resp);
        self.cached = Some((h.message_id, resp));
        if closes {
            self.close(Close::DeletedByPeer);
        }
    }

    /// Whether a request of ours is waiting for its answer.
    pub fn busy(&self) -> bool {
        self.out.is_some()
    }

    /// Forgets the IKE SA and its children without a word to the peer (it has forgotten
    /// them: INITIAL_CONTACT, or a newer SA replaced this one before it was up).
    pub fn abandon(&mut self) {
        self.close(Close::Deleted);
    }
}

/// A notification's name as RFC 7296 section 3.10.1 gives it.
pub fn notify_name(n: u16) -> String {
    match n {
        7 => "INVALID_SYNTAX".into(),
        14 => "NO_PROPOSAL_CHOSEN".into(),
        17 => "INVALID_KE_PAYLOAD".into(),
        24 => "AUTHENTICATION_FAILED".into(),
        34 => "SINGLE_PAIR_REQUIRED".into(),
        35 => "NO_ADDITIONAL_SAS".into(),
        38 => "TS_UNACCEPTABLE".into(),
        43 => "TEMPORARY_FAILURE".into(),
        44 => "CHILD_SA_NOT_FOUND".into(),
        n => format!("notification {n}"),
    }
}

#[cfg(test)]
mod children_tests;
#[cfg(test)]
mod rekey_tests;
#[cfg(test)]
mod tests;
