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
mod setup;

use super::create_child::{self, ChildConfig, Derive, Pending as ChildPending, Refused, PROTO_ESP};
use super::fragment;
use super::ike_auth::{self, AuthConfig, AuthError, Child};
use super::init::{self, Addrs, InitDone, Initiator, Refusal, Start};
use super::proposal::ProposalSpec;
use super::selectors::narrow;
use super::sk::{self, SkError};
use super::wire::{Exchange, Flags, Header, Id, Message, Notify, Payload, TrafficSelector};
use ring::rand::SystemRandom;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddrV4;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A NAT keepalive after this long without sending (RFC 3948 section 2.3 suggests 20 s).
pub const NATT_KEEPALIVE: Duration = Duration::from_secs(20);

/// What an IKE SA is configured with (one gateway and one VPN of the configuration).
pub struct Settings {
    pub ike: Vec<ProposalSpec>,
    pub esp: Vec<ProposalSpec>,
    pub psk: zeroize::Zeroizing<Vec<u8>>,
    pub local_id: Id,
    pub remote_id: Id,
    pub local_ts: Vec<TrafficSelector>,
    pub remote_ts: Vec<TrafficSelector>,
    pub force_encap: bool,
    /// IKE fragmentation (RFC 7383) offered and accepted, our fragments at most this big as
    /// IP datagrams; `None`: not offered.
    pub fragment_size: Option<u16>,
    pub retransmit: Retransmit,
    /// Check liveness after this long without a message from the peer; `None`: never.
    pub dpd: Option<Duration>,
    /// Liveness checks unanswered before the peer is dead.
    pub dpd_threshold: u32,
    /// Rekey a child this long after it was made.
    pub child_rekey: Option<Duration>,
    /// Rekey the IKE SA this long after it was made.
    pub ike_rekey: Option<Duration>,
    /// The IKE SA's hard lifetime: not rekeyed by then, it is deleted with its children (a
    /// VPN that establishes immediately negotiates again).
    pub ike_lifetime: Option<Duration>,
    /// A child's hard lifetime by time: it goes then, rekeyed or not.
    pub child_lifetime: Option<Duration>,
    /// Keep a replaced inbound SA this long (packets the peer sent before it switched).
    pub grace: Duration,
}

/// Retransmission (RFC 7296 section 2.1): `timeout * base^n` after the n-th send, `tries`
/// sends in all (strongSwan's defaults: 4 s, 1.8, 5 + 1).
#[derive(Debug, Clone, Copy)]
pub struct Retransmit {
    pub timeout: Duration,
    pub base: f64,
    pub tries: u32,
}

impl Default for Retransmit {
    fn default() -> Self {
        Retransmit {
            timeout: Duration::from_secs(4),
            base: 1.8,
            tries: 6,
        }
    }
}

/// Where IKE goes between (after NAT-T, UDP 4500 on both sides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Path {
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
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

/// The settings a responder may take with one peer (the VPNs with it), shared by every SA
/// it answers; IKE_AUTH picks one by the initiator's selectors: an exact match at once, else
/// the first whose selectors meet the proposal.
pub struct Candidates {
    list: Vec<Arc<Settings>>,
    exact: HashMap<(Id, Vec<TrafficSelector>, Vec<TrafficSelector>), usize>,
}

impl Candidates {
    pub fn new(list: Vec<Arc<Settings>>) -> Candidates {
        let mut exact = HashMap::new();
        for (i, s) in list.iter().enumerate() {
            exact
                .entry((s.remote_id.clone(), s.remote_ts.clone(), s.local_ts.clone()))
                .or_insert(i);
        }
        Candidates { list, exact }
    }

    fn first(&self) -> Option<&Arc<Settings>> {
        self.list.first()
    }

    /// Those to try for a peer that says it is `id` and proposes `ts_i` and `ts_r`, best
    /// first: its own VPNs (several dial-up peers share one address and may share selectors),
    /// an exact match of selectors at once, else those whose selectors meet the proposal;
    /// then its first VPN, else the first candidate (their answer, should nothing fit).
    fn for_proposal(
        &self,
        id: Option<&Id>,
        ts_i: &[TrafficSelector],
        ts_r: &[TrafficSelector],
    ) -> Vec<Arc<Settings>> {
        let mut out = Vec::new();
        let theirs = |s: &&Arc<Settings>| id.is_none_or(|id| s.remote_id == *id);
        let exact = id.and_then(|id| self.exact.get(&(id.clone(), ts_i.to_vec(), ts_r.to_vec())));
        if let Some(&i) = exact {
            out.extend(self.list.get(i).cloned());
        } else {
            out.extend(
                self.list
                    .iter()
                    .filter(theirs)
                    .filter(|s| {
                        !narrow(ts_i, &s.remote_ts).is_empty()
                            && !narrow(ts_r, &s.local_ts).is_empty()
                    })
                    .take(8)
                    .cloned(),
            );
        }
        out.extend(self.list.iter().find(theirs).or(self.first()).cloned());
        out
    }
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
        let fragmentation = sa.settings.fragment_size.is_some();
        match init::respond(
            &sa.settings.ike,
            request,
            Some(addrs),
            fragmentation,
            &sa.rng,
        ) {
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

    /// When `tick` next has something to do.
    pub fn next_timer(&self) -> Option<Instant> {
        let mut t = self.out.as_ref().map(|o| o.next);
        let mut at = |x: Instant| t = Some(t.map_or(x, |t: Instant| t.min(x)));
        if self.state == State::Established {
            if let Some(d) = self.settings.dpd {
                at(self.last_heard + d);
                if let Some(o) = &self.out {
                    at(o.first_sent + d * self.settings.dpd_threshold);
                }
            }
            if let Some(t) = self.ike_rekey_due() {
                at(t);
            }
            if let Some(t) = self.ike_expires() {
                at(t);
            }
            if self.behind_nat {
                at(self.last_sent + NATT_KEEPALIVE);
            }
            for c in &self.children {
                if let Some(r) = c.retire_at {
                    at(r);
                }
                if let (Some(k), false) = (self.settings.child_rekey, c.rekeyed) {
                    at(c.made + self.rekey_after(k, c.jitter));
                }
                if c.rekey_due && !c.rekeyed {
                    at(c.made);
                }
                if let (Some(l), None) = (self.settings.child_lifetime, c.retire_at) {
                    at(c.made + l);
                }
            }
        }
        t
    }

    /// Something arrived from the peer's side without IKE (its ESP, per the dataplane's
    /// counters): the peer is alive, no DPD needed.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = self.last_heard.max(now);
    }

    fn our_key(&self) -> Result<sk::SkKey, SkError> {
        match &self.done {
            Some(d) => d.keys.sk(self.role == Role::Initiator),
            None => Err(SkError::NotEncrypted),
        }
    }

    fn peer_key(&self) -> Result<sk::SkKey, SkError> {
        match &self.done {
            Some(d) => d.keys.sk(self.role != Role::Initiator),
            None => Err(SkError::NotEncrypted),
        }
    }

    /// The message with its Encrypted payload checked and opened under the peer's key.
    fn open(&self, bytes: &[u8]) -> Option<Message> {
        sk::open(bytes, &self.peer_key().ok()?).ok()
    }

    /// An encrypted message of the peer's, opened (and checked) if it is not yet.
    fn open_incoming(&self, body: Incoming<'_>) -> Option<Message> {
        match body {
            Incoming::Whole(bytes) => self.open(bytes),
            Incoming::Reassembled(m) => Some(m),
        }
    }

    /// The largest IKE message we send whole, once both sides agreed to IKE fragmentation:
    /// the fragment size less the IP and UDP headers and the non-ESP marker.
    fn fragment_max(&self) -> Option<usize> {
        let agreed = self.fragmentation();
        let size = usize::from(self.settings.fragment_size.filter(|_| agreed)?);
        Some(size.saturating_sub(fragment::IP_UDP_MARKER))
    }

    /// A message sealed whole elsewhere (IKE_AUTH), in fragments if it is too big.
    fn outgoing(&mut self, whole: Vec<u8>) -> Vec<Vec<u8>> {
        let Some(max) = self.fragment_max().filter(|&m| whole.len() > m) else {
            return vec![whole];
        };
        let Ok(key) = self.our_key() else {
            return vec![whole];
        };
        let sealed = sk::open(&whole, &key).and_then(|m| {
            fragment::seal(
                &m.header,
                &m.payloads,
                &key,
                &mut self.iv,
                &self.rng,
                Some(max),
            )
        });
        match sealed {
            Ok(frags) => {
                self.stats.fragmented += 1;
                frags
            }
            Err(_) => vec![whole],
        }
    }

    /// Sends `datagrams` (a message or its fragments) along `path`.
    fn send_all(&mut self, path: Path, datagrams: &[Vec<u8>]) {
        for bytes in datagrams {
            self.actions.push_back(Action::Send {
                path,
                bytes: bytes.clone(),
            });
        }
    }

    fn header(&self, exchange: Exchange, id: u32, response: bool) -> Header {
        Header {
            initiator_spi: self.spi_i,
            responder_spi: self.spi_r,
            exchange,
            flags: Flags {
                initiator: self.role == Role::Initiator,
                response,
                ..Default::default()
            },
            message_id: id,
        }
    }

    /// Encrypts `inner` under our key: one datagram, or its fragments (RFC 7383) when both
    /// sides agreed to them and it is too big.
    fn seal(
        &mut self,
        exchange: Exchange,
        id: u32,
        response: bool,
        inner: &[Payload],
    ) -> Option<Vec<Vec<u8>>> {
        let key = self.our_key().ok()?;
        let h = self.header(exchange, id, response);
        let max = self.fragment_max();
        let out = fragment::seal(&h, inner, &key, &mut self.iv, &self.rng, max).ok()?;
        if out.len() > 1 {
            self.stats.fragmented += 1;
        }
        Some(out)
    }

    fn send_request(&mut self, now: Instant, id: u32, bytes: Vec<Vec<u8>>, what: Asking) {
        self.last_sent = now;
        self.send_all(self.path, &bytes);
        // A liveness check is sent again each interval, `threshold` times in all (Junos'
        // `dead-peer-detection interval N threshold M`); everything else backs off.
        let schedule = match (&what, self.settings.dpd) {
            (Asking::Liveness, Some(d)) => Retransmit {
                timeout: d,
                base: 1.0,
                tries: self.settings.dpd_threshold,
            },
            _ => self.settings.retransmit,
        };
        self.out = Some(Outstanding {
            id,
            bytes,
            sends: 1,
            next: now + schedule.timeout,
            first_sent: now,
            schedule,
            what,
        });
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

    /// A fragment (RFC 7383) of the message due from the peer: kept once it verifies; the
    /// message handled once whole. A fragment of a request already answered sends the
    /// answer again (on its first fragment, so once per retransmission).
    fn fragment_in(
        &mut self,
        now: Instant,
        path: Path,
        bytes: &[u8],
        h: Header,
        spis: &mut dyn SpiSource,
    ) {
        let agreed = self.fragmentation();
        let due = if h.flags.response {
            self.out.as_ref().is_some_and(|o| o.id == h.message_id)
        } else {
            if let Some((id, resp)) = &self.cached {
                if *id == h.message_id {
                    if is_first_fragment(bytes) {
                        let resp = resp.clone();
                        self.stats.duplicates_answered += 1;
                        self.send_all(path, &resp);
                    }
                    return;
                }
            }
            h.message_id == self.peer_next
        };
        let Ok(key) = self.peer_key() else {
            self.stats.invalid += 1;
            return;
        };
        if !agreed || !due {
            self.stats.invalid += 1;
            return;
        }
        let slot = &mut self.reassembly[usize::from(h.flags.response)];
        match fragment::reassemble(slot, bytes, &key) {
            Err(_) => self.stats.invalid += 1,
            Ok(None) => self.last_heard = self.last_heard.max(now),
            Ok(Some(m)) => {
                self.stats.reassembled += 1;
                if h.flags.response {
                    self.handle_response(now, path, h, Incoming::Reassembled(m), spis);
                } else {
                    self.handle_request(now, path, Incoming::Reassembled(m), h, spis);
                }
            }
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

    /// When this IKE SA reaches its hard lifetime (none once a successor took over).
    fn ike_expires(&self) -> Option<Instant> {
        if self.succeeded {
            return None;
        }
        Some(self.established_at? + self.settings.ike_lifetime?)
    }

    /// When this IKE SA is to be rekeyed (its initiator first, as for children).
    fn ike_rekey_due(&self) -> Option<Instant> {
        if self.succeeded {
            return None;
        }
        if let Some(t) = self.rekey_ike_at {
            return Some(t);
        }
        let k = self.settings.ike_rekey?;
        Some(self.established_at? + self.rekey_after(k, 0.0))
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

    /// Timers: retransmission, liveness, child rekeys and the end of replaced inbound SAs.
    pub fn tick(&mut self, now: Instant, spis: &mut dyn SpiSource) {
        // With DPD, any request unanswered (and nothing else heard) for interval x threshold
        // means a dead peer, whatever the request's own schedule (a rekey backs off longer).
        if let (Some(o), Some(d), State::Established) = (&self.out, self.settings.dpd, self.state) {
            let limit = d * self.settings.dpd_threshold;
            if now >= o.first_sent + limit && now >= self.last_heard + limit {
                return self.close(Close::Timeout);
            }
        }
        if let Some(o) = &mut self.out {
            if now >= o.next {
                let r = o.schedule;
                if o.sends >= r.tries {
                    let deleting = self.state == State::Deleting;
                    return self.close(if deleting {
                        Close::Deleted
                    } else {
                        Close::Timeout
                    });
                }
                o.sends += 1;
                o.next = now + r.timeout.mul_f64(r.base.powi(o.sends as i32 - 1));
                self.stats.retransmits += 1;
                let bytes = o.bytes.clone();
                self.send_all(self.path, &bytes);
            }
        }
        if self.state != State::Established {
            return;
        }
        // RFC 3948 section 2.3: one 0xff byte on the NAT-T port every 20 s of silence keeps
        // the NAT's mapping (and so the peer's way to us) open.
        if self.behind_nat && now >= self.last_sent + NATT_KEEPALIVE {
            self.last_sent = now;
            self.stats.keepalives += 1;
            self.actions.push_back(Action::Send {
                path: self.path,
                bytes: vec![0xff],
            });
        }
        if self.ike_expires().is_some_and(|t| now >= t) {
            self.stats.expired = true;
            return self.delete(now);
        }
        let before = self.children.len();
        self.children
            .retain(|c| c.retire_at.is_none_or(|t| now < t));
        // A child at the end of its hard lifetime (its rekey never came through) goes; the
        // peer is told when nothing else is out.
        let expired: Vec<u32> = match self.settings.child_lifetime {
            Some(l) => self
                .children
                .iter()
                .filter(|c| c.retire_at.is_none() && now >= c.made + l)
                .map(|c| c.sa.inbound_spi)
                .collect(),
            None => Vec::new(),
        };
        self.children
            .retain(|c| !expired.contains(&c.sa.inbound_spi));
        if self.children.len() != before {
            self.actions.push_back(Action::Children);
        }
        if let (Some(&spi), None) = (expired.first(), &self.out) {
            self.delete_child(now, spi);
        }
        if self.out.is_some() {
            return;
        }
        if self.ike_rekey_due().is_some_and(|t| now >= t) {
            self.rekey_ike_at = None;
            if self.rekey_ike(now) {
                return;
            }
        }
        let due = |c: &ChildSa| {
            c.rekey_due
                || self
                    .settings
                    .child_rekey
                    .is_some_and(|k| now >= c.made + self.rekey_after(k, c.jitter))
        };
        if let Some(c) = self
            .children
            .iter()
            .find(|c| !c.rekeyed && c.retire_at.is_none() && due(c))
        {
            let spi = c.sa.inbound_spi;
            self.rekey_child(now, spi, spis);
            return;
        }
        if let Some(d) = self.settings.dpd {
            if now >= self.last_heard + d {
                self.stats.dpd_sent += 1;
                self.informational_request(now, &[], Asking::Liveness);
            }
        }
    }
}

/// The IKE_AUTH settings of an SA (`esp` without DH groups: IKE_AUTH makes no PFS child).
fn auth_config<'a>(
    s: &'a Settings,
    esp: &'a [ProposalSpec],
    initial_contact: bool,
) -> AuthConfig<'a> {
    AuthConfig {
        psk: &s.psk,
        local_id: s.local_id.clone(),
        remote_id: s.remote_id.clone(),
        esp,
        local_ts: s.local_ts.clone(),
        remote_ts: s.remote_ts.clone(),
        initial_contact,
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
mod tests;
