//! IKE in the control process: the configured VPNs, their IKE SAs, and what they mean for
//! the dataplane. Datagrams come in (punted by the dataplane, or from kernel sockets) and go
//! out as `Out::Send`; the children of every established IKE SA are an overlay on the
//! configuration's changes (the bound tunnel's NAT-T ports and selectors, its SAs), which the
//! core reconciles with the dataplane at each `Out::Sync`. Sans IO like the SAs themselves:
//! the caller owns the clock, the channel and the sockets.

mod lifecycle;
mod overlay;
mod start;
mod view;
mod vpns;

pub use view::{ChildView, GatewayStats, IkeSaView, IkeState};
pub use vpns::validate;
use vpns::vpns_of;

use crate::ike::auth::Auth;
use crate::ike::identity::{Dn, Identity};
use crate::ike::pki::{load_credential, load_trust};
use crate::ike::proposal::{parse_esp, parse_ike};
use crate::ike::sa::{
    Action, Candidates, ChildSelectors, Close, IkeSa, Path, Retransmit, Role, Settings, SpiSource,
    State,
};
use crate::ike::selectors::{prefixes, prefixes6, selector};
use crate::ike::wire::{Exchange, Id, Message};
use channel::{
    Algorithm, Change, InboundSaSpec, KeyMaterial, Lifetime, Name, OutboundSaSpec, SaSpec,
};
use config::{Config, DpdAction, Establish, IkeAuth, IkeId};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a failed or dead VPN waits before it is tried again.
const RETRY: Duration = Duration::from_secs(5);
/// Inbound replay window of negotiated SAs, in packets.
const REPLAY_WINDOW: u32 = 1024;
/// Our negotiations under way at once at most: more VPNs wait their turn (10 000 VPNs
/// started at once would overflow the peer's socket and cost seconds of retransmission).
pub const MAX_CONNECTING: usize = 128;
/// A half-open SA not authenticated in this time is forgotten.
const HALF_OPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// A datagram to send, from our address and port to the peer's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub path: Path,
    pub bytes: Vec<u8>,
}

#[derive(Debug)]
pub enum Out {
    Send(Outgoing),
    /// The children changed: bring the dataplane in line before sending what follows.
    Sync,
}

/// One configured VPN and what it needs to negotiate.
struct Vpn {
    name: Name,
    gateway: Name,
    /// The tunnel each child keys, by slot.
    tunnels: Vec<Name>,
    local: IpAddr,
    remote: IpAddr,
    port: u16,
    settings: Arc<Settings>,
    establish: Establish,
    dpd_action: DpdAction,
    hard: Lifetime,
    /// When to try again after a failure (or to start, on traffic).
    start_at: Option<Instant>,
    /// Everything but the keys: an unchanged VPN keeps its SAs over a commit.
    fingerprint: String,
}

struct Entry {
    index: u64,
    vpn: Name,
    sa: IkeSa,
}

/// Our inbound SPIs: random, never 0..255 (RFC 4303 section 2.1), never two alike.
#[derive(Default)]
struct Spis {
    used: HashSet<u32>,
}

impl SpiSource for Spis {
    fn next_spi(&mut self) -> u32 {
        let rng = ring::rand::SystemRandom::new();
        loop {
            let mut b = [0u8; 4];
            if ring::rand::SecureRandom::fill(&rng, &mut b).is_err() {
                continue;
            }
            let spi = u32::from_be_bytes(b);
            if spi > 255 && self.used.insert(spi) {
                return spi;
            }
        }
    }
}

pub struct IkeManager {
    vpns: Vec<Vpn>,
    vpn_index: HashMap<Name, usize>,
    /// VPN by its settings' address: the VPN a responder's IKE_AUTH chose.
    by_settings: HashMap<usize, usize>,
    /// Each VPN's IKE SAs (a responder's from its IKE_AUTH on).
    by_vpn: HashMap<Name, HashSet<u64>>,
    /// The IKE SAs by index (the operator's number for them).
    sas: BTreeMap<u64, Entry>,
    /// Our IKE SPI of each SA -> its index.
    by_spi: HashMap<u64, u64>,
    /// (the initiator's SPI, its address) of each SA we answered -> its index: a repeated
    /// IKE_SA_INIT finds the SA it made.
    by_init: HashMap<(u64, SocketAddr), u64>,
    /// VPNs by (our address, the peer's): a responder's candidates (the first VPN's index
    /// and all their settings).
    by_peer: HashMap<(IpAddr, IpAddr), (usize, Arc<Candidates>)>,
    next_index: u64,
    spis: Spis,
    out: Vec<Out>,
    cookie_secret: [u8; 32],
    /// Responder SAs not yet authenticated (counted at each tick).
    half_open: usize,
    /// COOKIEs asked for from this many half-open IKE SAs on; beyond `half_open_limit`,
    /// IKE_SA_INIT requests are dropped (the configuration's `ike` section).
    cookie_threshold: usize,
    half_open_limit: usize,
    spis_released: Instant,
    pub stats: BTreeMap<String, GatewayStats>,
    /// Requests dropped: half-open table full, no VPN for the peer, unparsable.
    pub dropped: u64,
    pub cookies_sent: u64,
}

/// Our SPI of an IKE SA: the one the peer's messages name us by.
/// Whether two IKE SAs are between the same identities (what INITIAL_CONTACT is about).
fn same_identities(a: &Settings, b: &Settings) -> bool {
    a.local_id == b.local_id && a.remote_id == b.remote_id
}

/// What `espgw request security ike initiate` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiate {
    Started,
    /// The VPN has an IKE SA up or under way.
    Busy,
    /// The VPN's peer is a dial-up one (`%any`): it calls in.
    DialUp,
    NoSuchVpn,
}

fn our_spi(sa: &IkeSa) -> u64 {
    match sa.role {
        Role::Initiator => sa.spi_i,
        Role::Responder => sa.spi_r,
    }
}

impl Default for IkeManager {
    fn default() -> Self {
        let mut cookie_secret = [0u8; 32];
        let _ =
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut cookie_secret);
        IkeManager {
            vpns: Vec::new(),
            vpn_index: HashMap::new(),
            by_settings: HashMap::new(),
            by_vpn: HashMap::new(),
            sas: BTreeMap::new(),
            by_spi: HashMap::new(),
            by_init: HashMap::new(),
            by_peer: HashMap::new(),
            next_index: 1,
            spis: Spis::default(),
            out: Vec::new(),
            cookie_secret,
            half_open: 0,
            cookie_threshold: config::DEFAULT_COOKIE_THRESHOLD as usize,
            half_open_limit: config::DEFAULT_HALF_OPEN_LIMIT as usize,
            spis_released: Instant::now(),
            stats: BTreeMap::new(),
            dropped: 0,
            cookies_sent: 0,
        }
    }
}

impl IkeManager {
    /// Takes the VPNs of `cfg` (already validated): unchanged ones keep their SAs, the SAs of
    /// changed or removed ones are deleted, new ones start as configured.
    pub fn configure(&mut self, cfg: &Config, now: Instant) {
        let Ok(mut new) = vpns_of(cfg) else { return };
        self.cookie_threshold = cfg.ike.cookie_threshold as usize;
        self.half_open_limit = cfg.ike.half_open_limit as usize;
        for v in &mut new {
            let kept = self
                .vpns
                .iter()
                .find(|o| o.name == v.name && o.fingerprint == v.fingerprint);
            v.start_at = match kept {
                Some(o) => o.start_at,
                None => (v.establish == Establish::Immediately).then_some(now),
            };
        }
        let keep: HashSet<(String, String)> = new
            .iter()
            .filter(|v| {
                self.vpns
                    .iter()
                    .any(|o| o.name == v.name && o.fingerprint == v.fingerprint)
            })
            .map(|v| (v.name.to_string(), v.fingerprint.clone()))
            .collect();
        for e in self.sas.values_mut() {
            if !keep.iter().any(|(n, _)| *n == e.vpn.to_string()) {
                e.sa.delete(now);
            }
        }
        for v in &new {
            self.stats
                .entry(v.gateway.to_string())
                .or_insert_with(|| GatewayStats {
                    gateway: v.gateway.to_string(),
                    ..Default::default()
                });
        }
        self.vpns = new;
        self.vpn_index = self
            .vpns
            .iter()
            .enumerate()
            .map(|(i, v)| (v.name, i))
            .collect();
        self.by_settings = self
            .vpns
            .iter()
            .enumerate()
            .map(|(i, v)| (Arc::as_ptr(&v.settings) as usize, i))
            .collect();
        let mut peers: HashMap<(IpAddr, IpAddr), Vec<usize>> = HashMap::new();
        for (i, v) in self.vpns.iter().enumerate() {
            peers.entry((v.local, v.remote)).or_default().push(i);
        }
        self.by_peer = peers
            .into_iter()
            .filter_map(|(k, list)| {
                let first = *list.first()?;
                let settings = list
                    .iter()
                    .map(|&i| self.vpns[i].settings.clone())
                    .collect();
                Some((k, (first, Arc::new(Candidates::new(settings)))))
            })
            .collect();
        self.pump(now, None);
    }

    /// Keeps an SA, findable by our SPI (and, for a responder, by the request that made it).
    fn insert(&mut self, vpn: Name, sa: IkeSa) -> u64 {
        let index = self.next_index;
        self.next_index += 1;
        self.by_spi.insert(our_spi(&sa), index);
        if sa.role == Role::Responder {
            self.by_init.insert((sa.spi_i, sa.path.remote), index);
        }
        if sa.role == Role::Initiator || sa.state == State::Established {
            self.by_vpn.entry(vpn).or_default().insert(index);
        }
        self.sas.insert(index, Entry { index, vpn, sa });
        index
    }

    pub fn take_out(&mut self) -> Vec<Out> {
        std::mem::take(&mut self.out)
    }

    fn vpn(&self, name: &Name) -> Option<&Vpn> {
        self.vpns.get(*self.vpn_index.get(name)?)
    }

    fn stats_of(&mut self, vpn: &Name) -> Option<&mut GatewayStats> {
        let g = self.vpn(vpn)?.gateway.to_string();
        self.stats.get_mut(&g)
    }

    /// Deletes IKE SA `index` (all when `None`); how many.
    pub fn clear(&mut self, index: Option<u64>, now: Instant) -> usize {
        let mut n = 0;
        for e in self.sas.values_mut() {
            if index.is_none_or(|i| i == e.index) && e.sa.state != State::Closed {
                e.sa.delete(now);
                n += 1;
            }
        }
        self.pump(now, None);
        n
    }

    /// Rekeys IKE SA `index` now (strongSwan's `swanctl --rekey --ike`); false if there is
    /// no such SA up or it is busy.
    pub fn rekey(&mut self, index: u64, now: Instant) -> bool {
        let ok = self
            .sas
            .get_mut(&index)
            .is_some_and(|e| e.sa.rekey_ike(now));
        self.pump(now, Some(index));
        ok
    }

    /// The dataplane says an inbound SA ran out by traffic (soft: rekey it; hard: it is gone,
    /// rekey at once).
    pub fn lifetime(&mut self, spi: u32, now: Instant) {
        for e in self.sas.values_mut() {
            if e.sa
                .children()
                .iter()
                .any(|c| c.sa.inbound_spi == spi || c.sa.outbound_spi == spi)
            {
                let inbound =
                    e.sa.children()
                        .iter()
                        .find(|c| c.sa.inbound_spi == spi || c.sa.outbound_spi == spi)
                        .map(|c| c.sa.inbound_spi);
                if let Some(i) = inbound {
                    e.sa.rekey_child(now, i, &mut self.spis);
                }
            }
        }
        self.pump(now, None);
    }

    /// ESP arrived on inbound SA `spi`: its IKE SA's peer is alive.
    pub fn heard(&mut self, spi: u32, now: Instant) {
        for e in self.sas.values_mut() {
            if e.sa.children().iter().any(|c| c.sa.inbound_spi == spi) {
                e.sa.heard(now);
            }
        }
    }

    /// A datagram from the wire for IKE (`local`: our address and port it came to).
    pub fn datagram(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr, bytes: &[u8]) {
        let Ok(m) = Message::parse(bytes) else {
            self.dropped += 1;
            return;
        };
        let h = m.header;
        let path = Path { local, remote };
        // Which side we are is in the I flag the peer set.
        let ours = if h.flags.initiator {
            h.responder_spi
        } else {
            h.initiator_spi
        };
        let index = if ours == 0 {
            // A repeated IKE_SA_INIT: the SA it already made.
            self.by_init.get(&(h.initiator_spi, remote))
        } else {
            self.by_spi.get(&ours)
        };
        let found = index
            .copied()
            .and_then(|i| self.sas.get_mut(&i))
            .filter(|e| e.sa.spi_i == h.initiator_spi);
        if let Some(e) = found {
            let index = e.index;
            e.sa.handle(now, path, bytes, &mut self.spis);
            self.pump(now, Some(index));
            return;
        }
        if ours != 0 || h.exchange != Exchange::IkeSaInit || h.flags.response {
            self.dropped += 1;
            return;
        }
        self.new_responder(now, path, bytes, &m);
    }

    fn new_responder(&mut self, now: Instant, path: Path, bytes: &[u8], m: &Message) {
        // Every VPN with this peer, else every dial-up VPN on this address: IKE_AUTH picks
        // one by the identity and the selectors.
        let local = path.local.ip();
        let Some((vi, candidates)) = self
            .by_peer
            .get(&(local, path.remote.ip()))
            .or_else(|| self.by_peer.get(&(local, config::unspecified_like(local))))
            .cloned()
        else {
            self.dropped += 1;
            return;
        };
        let half_open = self.half_open;
        if half_open >= self.half_open_limit {
            self.dropped += 1;
            return;
        }
        if half_open >= self.cookie_threshold {
            let want = self.cookie(m, path);
            if crate::ike::cookie::carried(m) != Some(&want[..]) {
                self.cookies_sent += 1;
                self.out.push(Out::Send(Outgoing {
                    path,
                    bytes: crate::ike::init::refuse(&m.header, crate::ike::init::COOKIE, want),
                }));
                return;
            }
        }
        let v = &self.vpns[vi];
        let vpn = v.name;
        match IkeSa::respond(candidates, path, bytes, now) {
            Ok(sa) => {
                if let Some(s) = self.stats_of(&vpn) {
                    s.responded += 1;
                }
                self.half_open += 1;
                let index = self.insert(vpn, sa);
                self.pump(now, Some(index));
            }
            Err(actions) => {
                for a in actions {
                    if let Action::Send { path, bytes } = a {
                        self.out.push(Out::Send(Outgoing { path, bytes }));
                    }
                }
            }
        }
    }

    fn cookie(&self, m: &Message, path: Path) -> Vec<u8> {
        crate::ike::cookie::make(&self.cookie_secret, m, path.remote)
    }

    /// Timers of every SA, VPNs to start, half-open SAs to forget.
    pub fn tick(&mut self, now: Instant) {
        let mut live = HashSet::new();
        let mut half_open = 0;
        let mut connecting = 0;
        for e in self.sas.values_mut() {
            if e.sa.role == Role::Initiator
                && matches!(e.sa.state, State::Connecting | State::Authenticating)
            {
                connecting += 1;
            }
            if e.sa.next_timer().is_some_and(|t| now >= t) {
                e.sa.tick(now, &mut self.spis);
            }
            if e.sa.state == State::Authenticating && e.sa.role == Role::Responder {
                half_open += 1;
                if now >= e.sa.made + HALF_OPEN_TIMEOUT {
                    e.sa.delete(now);
                }
            }
            if !matches!(e.sa.state, State::Closed | State::Deleting) {
                live.insert(e.vpn);
            }
        }
        self.half_open = half_open;
        let due: Vec<usize> = (0..self.vpns.len())
            .filter(|&i| self.vpns[i].start_at.is_some_and(|t| now >= t))
            .filter(|&i| !live.contains(&self.vpns[i].name))
            .take(MAX_CONNECTING.saturating_sub(connecting))
            .collect();
        if !due.is_empty() {
            self.start_due(due, now);
        }
        self.pump(now, None);
        if now >= self.spis_released + Duration::from_secs(1) {
            self.spis_released = now;
            self.release_spis();
        }
    }

    /// Forgets the SPIs of children that are gone (not while one offered in a request may
    /// still become a child).
    fn release_spis(&mut self) {
        if self
            .sas
            .values()
            .any(|e| e.sa.busy() || e.sa.state == State::Authenticating)
        {
            return;
        }
        let live: HashSet<u32> = self
            .sas
            .values()
            .flat_map(|e| e.sa.children().iter().map(|c| c.sa.inbound_spi))
            .collect();
        self.spis.used.retain(|s| live.contains(s));
    }

    /// Moves the actions of SA `only` (every SA's when `None`) out, in order, and follows
    /// what closes, establishes and is rekeyed.
    fn pump(&mut self, now: Instant, only: Option<u64>) {
        let mut closed = Vec::new();
        let mut established = Vec::new();
        let mut child_failed = Vec::new();
        let mut rekeyed: Vec<(Name, Box<IkeSa>)> = Vec::new();
        let mut redundant: Vec<(Name, Box<IkeSa>)> = Vec::new();
        let entries: Vec<&mut Entry> = match only {
            Some(i) => self.sas.get_mut(&i).into_iter().collect(),
            None => self.sas.values_mut().collect(),
        };
        for e in entries {
            for a in e.sa.actions() {
                match a {
                    Action::Send { path, bytes } => {
                        self.out.push(Out::Send(Outgoing { path, bytes }))
                    }
                    Action::Children => {
                        if !matches!(self.out.last(), Some(Out::Sync)) {
                            self.out.push(Out::Sync);
                        }
                    }
                    Action::Established => established.push(e.index),
                    Action::ChildFailed(why) => child_failed.push((e.vpn, why)),
                    Action::Rekeyed(sa) => rekeyed.push((e.vpn, sa)),
                    Action::Redundant(sa) => redundant.push((e.vpn, sa)),
                    Action::Closed(why) => closed.push((e.index, e.vpn, why)),
                }
            }
        }
        for index in established {
            self.on_established(index, now);
        }
        for (vpn, sa) in rekeyed {
            eprintln!(
                "espgw-control: IKE: {vpn}: IKE SA rekeyed: now {:016x}_i {:016x}_r",
                sa.spi_i, sa.spi_r
            );
            if let Some(s) = self.stats_of(&vpn) {
                s.rekeys += 1;
            }
            self.insert(vpn, *sa);
        }
        for (vpn, sa) in redundant {
            eprintln!(
                "espgw-control: IKE: {vpn}: simultaneous IKE SA rekey: {:016x}_i {:016x}_r is redundant",
                sa.spi_i, sa.spi_r
            );
            let index = self.insert(vpn, *sa);
            self.pump(now, Some(index));
        }
        for (vpn, why) in child_failed {
            eprintln!("espgw-control: IKE: {vpn}: {why}");
            if let Some(s) = self.stats_of(&vpn) {
                *s.failures.entry(why).or_default() += 1;
            }
        }
        for (index, vpn, why) in closed {
            self.on_closed(index, &vpn, why, now);
        }
        let gone: Vec<u64> = match only {
            Some(i) => vec![i],
            None => self.sas.keys().copied().collect(),
        };
        for i in gone {
            if self
                .sas
                .get(&i)
                .is_some_and(|e| e.sa.state == State::Closed)
            {
                if let Some(e) = self.sas.remove(&i) {
                    self.by_spi.remove(&our_spi(&e.sa));
                    self.by_init.remove(&(e.sa.spi_i, e.sa.path.remote));
                    if let Some(set) = self.by_vpn.get_mut(&e.vpn) {
                        set.remove(&i);
                    }
                }
            }
        }
    }
}
