//! IKE in the control process: the configured VPNs, their IKE SAs, and what they mean for
//! the dataplane. Datagrams come in (punted by the dataplane, or from kernel sockets) and go
//! out as `Out::Send`; the children of every established IKE SA are an overlay on the
//! configuration's changes (the bound tunnel's NAT-T ports and selectors, its SAs), which the
//! core reconciles with the dataplane at each `Out::Sync`. Sans IO like the SAs themselves:
//! the caller owns the clock, the channel and the sockets.

use crate::ike::proposal::{parse_esp, parse_ike};
use crate::ike::sa::{
    Action, Candidates, Close, IkeSa, Path, Retransmit, Role, Settings, SpiSource, State,
};
use crate::ike::selectors::{of_prefix, prefixes};
use crate::ike::wire::{Exchange, Id, Message};
use channel::{
    Algorithm, Change, InboundSaSpec, KeyMaterial, Lifetime, Name, OutboundSaSpec, SaSpec,
};
use config::{Config, DpdAction, Establish, IkeId};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddrV4};
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
    tunnel: Name,
    local: Ipv4Addr,
    remote: Ipv4Addr,
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

/// Per-gateway counters (exchanges and failures by reason).
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct GatewayStats {
    pub gateway: String,
    pub established: u64,
    pub initiated: u64,
    pub responded: u64,
    pub rekeys: u64,
    pub dpd_timeouts: u64,
    pub deleted_by_peer: u64,
    /// Failures by reason (`AUTHENTICATION_FAILED`, `NO_PROPOSAL_CHOSEN`, `timeout`...).
    pub failures: BTreeMap<String, u64>,
}

/// An IKE SA as the operator sees it (Junos `show security ike security-associations`).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct IkeSaView {
    pub index: u64,
    pub vpn: String,
    pub gateway: String,
    pub state: String,
    pub role: String,
    pub initiator_spi: String,
    pub responder_spi: String,
    pub remote: String,
    pub local: String,
    pub nat_t: bool,
    pub established_s: Option<u64>,
    pub children: Vec<ChildView>,
    pub exchanges: u64,
    pub retransmits: u64,
    pub child_rekeys: u64,
    /// Its IKE_AUTH said INITIAL_CONTACT: the first IKE SA between the two identities.
    pub initial_contact: bool,
    /// IKE fragmentation (RFC 7383) agreed with the peer; our messages sent in fragments,
    /// and the peer's put back together.
    pub fragmentation: bool,
    pub fragmented: u64,
    pub reassembled: u64,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ChildView {
    pub inbound_spi: String,
    pub outbound_spi: String,
    pub outbound: bool,
    pub esn: bool,
    pub local_ts: Vec<String>,
    pub remote_ts: Vec<String>,
    pub age_s: u64,
    /// Seconds until it is rekeyed (none: a rekey is under way or it was replaced).
    pub rekey_in_s: Option<u64>,
    /// Seconds until it goes (its hard lifetime, or the end of a replaced SA's grace).
    pub expires_in_s: Option<u64>,
}

/// IKE as a whole, for REST, the CLI and `/metrics`.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct IkeState {
    pub security_associations: Vec<IkeSaView>,
    pub gateways: Vec<GatewayStats>,
    /// IKE datagrams dropped: unparsable, no VPN for the peer, half-open table full.
    pub dropped: u64,
    /// IKE_SA_INIT requests answered with a COOKIE (more than 1000 half-open SAs).
    pub cookies_sent: u64,
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
    by_init: HashMap<(u64, SocketAddrV4), u64>,
    /// VPNs by (our address, the peer's): a responder's candidates (the first VPN's index
    /// and all their settings).
    by_peer: HashMap<(Ipv4Addr, Ipv4Addr), (usize, Arc<Candidates>)>,
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

fn id_of(i: &IkeId) -> Id {
    match i {
        IkeId::Ipv4(a) => Id {
            kind: 1,
            data: a.octets().to_vec(),
        },
        IkeId::Fqdn(s) => Id {
            kind: 2,
            data: s.as_bytes().to_vec(),
        },
        IkeId::UserFqdn(s) => Id {
            kind: 3,
            data: s.as_bytes().to_vec(),
        },
    }
}

/// The IKE settings of every VPN of `cfg`; an error names the field (a proposal the
/// dataplane cannot carry out, or that does not parse).
fn vpns_of(cfg: &Config) -> Result<Vec<Vpn>, (String, String)> {
    let mut out = Vec::new();
    for (vi, v) in cfg.ike.vpns.iter().enumerate() {
        let Some(g) = cfg.ike.gateways.get(v.gateway) else {
            continue;
        };
        let gi = v.gateway;
        let ike = g
            .proposals
            .iter()
            .enumerate()
            .map(|(i, p)| {
                parse_ike(p)
                    .map_err(|e| (format!("ike.gateways[{gi}].proposals[{i}]"), e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let esp = v
            .esp_proposals
            .iter()
            .enumerate()
            .map(|(i, p)| {
                parse_esp(p)
                    .map_err(|e| (format!("ike.vpns[{vi}].esp_proposals[{i}]"), e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let rekey = v.lifetime_s.saturating_sub(v.rekey_margin_s);
        let settings = Settings {
            ike,
            esp,
            psk: g.psk.clone(),
            local_id: id_of(&g.local_id),
            remote_id: id_of(&g.remote_id),
            local_ts: v.local_ts.iter().map(|p| of_prefix(*p)).collect(),
            remote_ts: v.remote_ts.iter().map(|p| of_prefix(*p)).collect(),
            force_encap: g.force_encap,
            fragment_size: g.fragment_size,
            retransmit: Retransmit::default(),
            dpd: match g.dpd.action {
                DpdAction::None => None,
                _ => Some(Duration::from_secs(u64::from(g.dpd.interval_s))),
            },
            dpd_threshold: g.dpd.threshold,
            ike_rekey: Some(Duration::from_secs(u64::from(
                g.lifetime_s - g.lifetime_s / 10,
            ))),
            ike_lifetime: Some(Duration::from_secs(u64::from(g.lifetime_s))),
            child_lifetime: Some(Duration::from_secs(u64::from(v.lifetime_s))),
            child_rekey: Some(Duration::from_secs(u64::from(rekey.max(1)))),
            grace: Duration::from_secs(5),
        };
        let fingerprint = format!("{g:?} {v:?}");
        out.push(Vpn {
            name: v.name,
            gateway: g.name,
            tunnel: v.tunnel,
            local: g.local,
            remote: g.remote,
            port: g.port,
            settings: Arc::new(settings),
            establish: v.establish,
            dpd_action: g.dpd.action,
            hard: Lifetime {
                packets: v.lifetime_packets,
                bytes: v.lifetime_bytes,
            },
            start_at: None,
            fingerprint,
        });
    }
    Ok(out)
}

/// Checks what only the control can check (the proposals); `Err`: (field, reason).
pub fn validate(cfg: &Config) -> Result<(), (String, String)> {
    vpns_of(cfg).map(|_| ())
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
        let mut peers: HashMap<(Ipv4Addr, Ipv4Addr), Vec<usize>> = HashMap::new();
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

    fn start(&mut self, vi: usize, now: Instant) {
        let Some(v) = self.vpns.get_mut(vi) else {
            return;
        };
        // A dial-up peer's address is unknown: it calls in.
        if v.remote.is_unspecified() {
            v.start_at = None;
            return;
        }
        v.start_at = None;
        let path = Path {
            local: SocketAddrV4::new(v.local, 500),
            remote: SocketAddrV4::new(v.remote, v.port),
        };
        let settings = v.settings.clone();
        let vpn = v.name;
        let mut sa = IkeSa::initiate(settings.clone(), path, now);
        sa.send_initial_contact = !self.has_contact(&settings);
        if let Some(s) = self.stats_of(&vpn) {
            s.initiated += 1;
        }
        let index = self.insert(vpn, sa);
        self.pump(now, Some(index));
    }

    /// Starts `vpn` now (`espgw request security ike initiate`), unless it has an IKE SA up
    /// or under way (a second one would replace it for nothing).
    pub fn initiate(&mut self, vpn: &str, now: Instant) -> Initiate {
        let Some(vi) = self.vpns.iter().position(|v| v.name.as_str() == vpn) else {
            return Initiate::NoSuchVpn;
        };
        if self.vpns[vi].remote.is_unspecified() {
            return Initiate::DialUp;
        }
        if self.busy(&self.vpns[vi].name) {
            return Initiate::Busy;
        }
        self.start_or_defer(vi, now);
        self.pump(now, None);
        Initiate::Started
    }

    /// Whether `vpn` has an IKE SA up or being negotiated (one we are deleting does not count:
    /// the peer may have forgotten it already, and it must not hold the VPN down meanwhile).
    fn busy(&self, vpn: &Name) -> bool {
        self.sas
            .values()
            .any(|e| e.vpn == *vpn && !matches!(e.sa.state, State::Closed | State::Deleting))
    }

    /// Whether an IKE SA with `s`'s identities exists (RFC 7296 section 2.4: INITIAL_CONTACT
    /// only in the first).
    fn has_contact(&self, s: &Settings) -> bool {
        // A half-open responder SA is no contact: anyone can make one from the peer's address.
        self.sas.values().any(|e| {
            e.sa.state != State::Closed
                && !(e.sa.role == Role::Responder && e.sa.state == State::Authenticating)
                && same_identities(e.sa.settings(), s)
        })
    }

    /// Starts VPN `vi` now, or at the next tick if another VPN's first IKE SA with the same
    /// identities (the one saying INITIAL_CONTACT) is still being negotiated: were ours to
    /// be established first, the peer would take that INITIAL_CONTACT to mean ours is stale.
    fn start_or_defer(&mut self, vi: usize, now: Instant) {
        let Some(v) = self.vpns.get(vi) else { return };
        let contact_pending = self.sas.values().any(|e| {
            e.sa.send_initial_contact
                && e.sa.role == Role::Initiator
                && matches!(e.sa.state, State::Connecting | State::Authenticating)
                && same_identities(e.sa.settings(), &v.settings)
        });
        if contact_pending {
            self.vpns[vi].start_at = Some(now);
        } else {
            self.start(vi, now);
        }
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

    /// Traffic for a tunnel with no outbound SA (the dataplane's ACQUIRE).
    pub fn acquire(&mut self, tunnel: &Name, now: Instant) {
        let Some(vi) = self
            .vpns
            .iter()
            .position(|v| v.tunnel == *tunnel && v.establish == Establish::OnTraffic)
        else {
            return;
        };
        if !self.busy(&self.vpns[vi].name) && self.vpns[vi].start_at.is_none() {
            self.start_or_defer(vi, now);
            self.pump(now, None);
        }
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
    pub fn datagram(
        &mut self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        bytes: &[u8],
    ) {
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
        let local = *path.local.ip();
        let Some((vi, candidates)) = self
            .by_peer
            .get(&(local, *path.remote.ip()))
            .or_else(|| self.by_peer.get(&(local, Ipv4Addr::UNSPECIFIED)))
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

    /// Starts the VPNs `due`, but of several with the same identities and none up yet only
    /// the first (it says INITIAL_CONTACT): the others follow once it is established.
    fn start_due(&mut self, due: Vec<usize>, now: Instant) {
        let mut contact: HashSet<(Id, Id)> = HashSet::new();
        let mut pending: HashSet<(Id, Id)> = HashSet::new();
        for e in self.sas.values() {
            if e.sa.state == State::Closed
                || (e.sa.role == Role::Responder && e.sa.state == State::Authenticating)
            {
                continue;
            }
            let s = e.sa.settings();
            let ids = (s.local_id.clone(), s.remote_id.clone());
            if e.sa.send_initial_contact
                && e.sa.role == Role::Initiator
                && matches!(e.sa.state, State::Connecting | State::Authenticating)
            {
                pending.insert(ids.clone());
            }
            contact.insert(ids);
        }
        for vi in due {
            let s = &self.vpns[vi].settings;
            let ids = (s.local_id.clone(), s.remote_id.clone());
            if pending.contains(&ids) {
                continue;
            }
            if !contact.contains(&ids) {
                pending.insert(ids.clone());
                contact.insert(ids);
            }
            self.start(vi, now);
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

    fn on_established(&mut self, index: u64, now: Instant) {
        let Some(e) = self.sas.get_mut(&index) else {
            return;
        };
        // A responder knows its VPN only now: the one whose settings IKE_AUTH took.
        if e.sa.role == Role::Responder {
            let chosen = self
                .by_settings
                .get(&(Arc::as_ptr(e.sa.settings()) as usize))
                .and_then(|&i| self.vpns.get(i));
            if let Some(v) = chosen {
                e.vpn = v.name;
            }
        }
        let (vpn, initial_contact) = (e.vpn, e.sa.initial_contact);
        self.by_vpn.entry(vpn).or_default().insert(index);
        eprintln!(
            "espgw-control: IKE: {vpn}: IKE SA {:016x}_i {:016x}_r established with {} as {:?}{}; child SAs {}",
            e.sa.spi_i,
            e.sa.spi_r,
            e.sa.path.remote,
            e.sa.role,
            if e.sa.nat { ", NAT-T" } else { "" },
            e.sa
                .children()
                .iter()
                .map(|c| format!("{:08x}_i {:08x}_o", c.sa.inbound_spi, c.sa.outbound_spi))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let Some(s) = self.stats_of(&vpn) {
            s.established += 1;
        }
        // One IKE SA per VPN: the newest replaces the others (the peer restarted, or both
        // sides initiated at once). With INITIAL_CONTACT the peer has forgotten every IKE SA
        // between the two identities, of this VPN and of any other: they go without a delete.
        let mut sync = false;
        let mut others: Vec<u64> = self
            .by_vpn
            .get(&vpn)
            .map(|s| s.iter().copied().filter(|&i| i != index).collect())
            .unwrap_or_default();
        // Other VPNs' SAs only once established: one still being negotiated may be the peer's
        // next, which its INITIAL_CONTACT does not mean.
        if initial_contact {
            let mine = self.sas.get(&index).map(|e| e.sa.settings().clone());
            if let Some(mine) = mine {
                others.extend(self.sas.values().filter_map(|o| {
                    (o.index != index
                        && o.vpn != vpn
                        && o.sa.state == State::Established
                        && same_identities(o.sa.settings(), &mine))
                    .then_some(o.index)
                }));
            }
        }
        for i in others {
            let Some(o) = self.sas.get_mut(&i) else {
                continue;
            };
            // A responder not yet authenticated has no VPN yet (IKE_AUTH picks it).
            let unknown = o.sa.role == Role::Responder && o.sa.state == State::Authenticating;
            if o.sa.state != State::Closed && !unknown {
                if initial_contact || o.sa.state != State::Established {
                    sync |= !o.sa.children().is_empty();
                    o.sa.abandon();
                } else {
                    o.sa.delete(now);
                }
            }
        }
        if sync {
            self.out.push(Out::Sync);
        }
    }

    fn on_closed(&mut self, index: u64, vpn: &Name, why: Close, now: Instant) {
        eprintln!("espgw-control: IKE: {vpn}: IKE SA #{index}: {why:?}");
        if why == Close::Rekeyed {
            return;
        }
        let reason = match &why {
            Close::Timeout => Some("timeout".to_string()),
            Close::Failed(s) => Some(s.clone()),
            Close::DeletedByPeer | Close::Deleted | Close::Rekeyed => None,
        };
        if let Some(s) = self.stats_of(vpn) {
            match &why {
                Close::Timeout => s.dpd_timeouts += 1,
                Close::DeletedByPeer => s.deleted_by_peer += 1,
                _ => {}
            }
            if let Some(r) = &reason {
                *s.failures.entry(r.clone()).or_default() += 1;
            }
        }
        let vi = self.vpn_index.get(vpn).copied();
        if let Some(v) = vi.and_then(|i| self.vpns.get_mut(i)) {
            let again = match (v.establish, &why) {
                (Establish::ResponderOnly, _) => false,
                (_, Close::Timeout) => {
                    v.dpd_action == DpdAction::Restart || v.establish == Establish::Immediately
                }
                (Establish::Immediately, _) => true,
                _ => false,
            };
            if again && v.start_at.is_none() {
                v.start_at = Some(now + RETRY);
            }
        }
    }

    /// The configuration's changes with what IKE negotiated laid over them: each bound
    /// tunnel's NAT-T ports and selectors from its IKE SA, its SAs from the children.
    pub fn overlay(&self, changes: &mut Vec<Change>) {
        for e in self.sas.values() {
            if e.sa.state != State::Established || e.sa.children().is_empty() {
                continue;
            }
            let Some(v) = self.vpn(&e.vpn) else {
                continue;
            };
            let first = &e.sa.children()[0].sa;
            for c in changes.iter_mut() {
                if let Change::SetTunnel(t) = c {
                    if t.name == v.tunnel {
                        // A dial-up peer is where its IKE SA is.
                        if t.dynamic {
                            t.remote = *e.sa.path.remote.ip();
                        }
                        t.udp =
                            e.sa.nat
                                .then(|| (channel::NATT_PORT, e.sa.path.remote.port()));
                        t.local_selectors = prefixes(&first.local_ts)
                            .into_iter()
                            .take(channel::MAX_SELECTORS)
                            .collect();
                        t.remote_selectors = prefixes(&first.remote_ts)
                            .into_iter()
                            .take(channel::MAX_SELECTORS)
                            .collect();
                    }
                }
            }
            for c in e.sa.children() {
                let alg = if c.sa.outbound_key.len() == 20 {
                    Algorithm::Aes128Gcm
                } else {
                    Algorithm::Aes256Gcm
                };
                // The dataplane's soft event (bytes, packets) starts the rekey well before
                // the hard limit stops the SA.
                let share = |n: Option<u64>| n.map(|n| (n as f64 * c.soft_share()).max(1.0) as u64);
                let soft = Lifetime {
                    packets: share(v.hard.packets),
                    bytes: share(v.hard.bytes),
                };
                let spec = |spi: u32, key: &[u8]| {
                    KeyMaterial::new(alg, key).ok().map(|keys| SaSpec {
                        tunnel: v.tunnel,
                        spi,
                        keys,
                        esn: c.sa.esn,
                        soft,
                        hard: v.hard,
                    })
                };
                if let Some(sa) = spec(c.sa.inbound_spi, &c.sa.inbound_key) {
                    changes.push(Change::SetInboundSa(InboundSaSpec {
                        sa,
                        replay_window: REPLAY_WINDOW,
                        highest_seen: 0,
                        idle_after: None,
                    }));
                }
                if c.outbound {
                    if let Some(sa) = spec(c.sa.outbound_spi, &c.sa.outbound_key) {
                        changes.push(Change::SetOutboundSa(OutboundSaSpec { sa, first_seq: 1 }));
                    }
                }
            }
        }
    }

    pub fn state(&self, now: Instant) -> IkeState {
        IkeState {
            security_associations: self.view(now),
            gateways: self.stats.values().cloned().collect(),
            dropped: self.dropped,
            cookies_sent: self.cookies_sent,
        }
    }

    /// Every IKE SA, for REST and the CLI.
    pub fn view(&self, now: Instant) -> Vec<IkeSaView> {
        self.sas
            .values()
            .map(|e| {
                let v = self.vpn(&e.vpn);
                IkeSaView {
                    index: e.index,
                    vpn: e.vpn.to_string(),
                    gateway: v.map(|v| v.gateway.to_string()).unwrap_or_default(),
                    state: format!("{:?}", e.sa.state).to_lowercase(),
                    role: format!("{:?}", e.sa.role).to_lowercase(),
                    initiator_spi: format!("{:016x}", e.sa.spi_i),
                    responder_spi: format!("{:016x}", e.sa.spi_r),
                    remote: e.sa.path.remote.to_string(),
                    local: e.sa.path.local.to_string(),
                    nat_t: e.sa.nat,
                    established_s: e
                        .sa
                        .established_at
                        .map(|t| now.saturating_duration_since(t).as_secs()),
                    children: e
                        .sa
                        .children()
                        .iter()
                        .map(|c| {
                            let (rekey, expires) = e.sa.child_times(c);
                            let left = |t: Option<Instant>| {
                                t.map(|t| t.saturating_duration_since(now).as_secs())
                            };
                            ChildView {
                                rekey_in_s: left(rekey),
                                expires_in_s: left(expires),
                                inbound_spi: format!("{:08x}", c.sa.inbound_spi),
                                outbound_spi: format!("{:08x}", c.sa.outbound_spi),
                                outbound: c.outbound,
                                esn: c.sa.esn,
                                local_ts: prefixes(&c.sa.local_ts)
                                    .iter()
                                    .map(|p| p.to_string())
                                    .collect(),
                                remote_ts: prefixes(&c.sa.remote_ts)
                                    .iter()
                                    .map(|p| p.to_string())
                                    .collect(),
                                age_s: now.saturating_duration_since(c.made).as_secs(),
                            }
                        })
                        .collect(),
                    exchanges: e.sa.stats.exchanges,
                    retransmits: e.sa.stats.retransmits,
                    child_rekeys: e.sa.stats.child_rekeys,
                    fragmentation: e.sa.fragmentation(),
                    fragmented: e.sa.stats.fragmented,
                    reassembled: e.sa.stats.reassembled,
                    initial_contact: match e.sa.role {
                        Role::Initiator => e.sa.send_initial_contact,
                        Role::Responder => e.sa.initial_contact,
                    },
                }
            })
            .collect()
    }
}
