//! Forwarding like a router: interfaces, neighbors, routes, and the per-packet pipeline that
//! ties them to ESP. A `Forwarder` is one worker's private state; it changes only through
//! `Command`s applied between bursts.

pub mod arp;
mod crypto;
mod lookahead;
pub mod lpm;
pub mod neighbor;
mod spi_table;

use crate::counters::{Stat, StatBlock};
use crate::esp::crypto::{Aead, AeadOps};
use crate::esp::{self, DecapError, EncapError, Prepared};
use crate::packet::PacketBuf;
use crate::sa::{InboundSa, OutboundSa};
use crate::wire::ethernet::{self, Mac};
use crate::wire::{esp as esp_wire, ipv4, udp};
use arrayvec::ArrayVec;
use dpdk_sys::MAX_BURST;
use ipnet::Ipv4Net;
use lpm::Lpm;
use neighbor::NeighborTable;
use spi_table::{SpiEntry, SpiTable};
use std::net::Ipv4Addr;
use std::sync::Arc;

/// An interface: one IPv4 address on one DPDK port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interface {
    pub port: u16,
    pub mac: Mac,
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
    pub mtu: u16,
}

/// Where a route sends a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// On the subnet of the interface on this port: the destination is the next hop.
    Connected {
        port: u16,
    },
    Gateway {
        port: u16,
        via: Ipv4Addr,
    },
    /// Into a route-based VPN (`st0.N`).
    Tunnel {
        tunnel: u32,
    },
    /// One of the gateway's own addresses.
    Local,
}

/// A change to a worker's state, applied between bursts.
pub enum Command {
    SetInterface(Interface),
    AddRoute {
        prefix: Ipv4Net,
        target: Target,
    },
    DelRoute {
        prefix: Ipv4Net,
    },
    SetNeighbor {
        addr: Ipv4Addr,
        mac: Mac,
        permanent: bool,
    },
    AddInboundSa(Box<InboundSa>),
    DelInboundSa {
        spi: u32,
    },
    SetOutboundSa(Box<OutboundSa>),
    DelOutboundSa {
        tunnel: u32,
    },
    /// A UDP port on which ESP-in-UDP (RFC 3948) is accepted.
    AddNattPort(u16),
    /// The worker (by index) that owns a tunnel's outbound SA.
    SetTunnelOwner {
        tunnel: u32,
        worker: u16,
    },
    /// The worker (by index) that owns an inbound SPI.
    SetSpiOwner {
        spi: u32,
        worker: u16,
    },
    DelSpiOwner {
        spi: u32,
    },
}

/// Where a packet handed to its SA's owner resumes there. The packet path stops at the first
/// step that needs an SA it does not own, so the owner continues from exactly that step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// The buffer holds the outer IPv4 packet of ESP, or ESP in UDP, for us.
    EspInput,
    /// The buffer holds an inner IPv4 packet already routed (TTL decremented) into this tunnel
    /// (id below 2^30, which the configuration guarantees).
    TunnelOutput(u32),
    /// The buffer holds a frame to send on this port, from a worker with no TX queue there.
    Transmit(u16),
}

/// A `Resume` as the 32-bit tag it travels as. Verdicts carry it in this form, which keeps a
/// `Verdict` to 8 bytes: returned in a register, not through memory, at every step of the
/// pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResumeTag(pub u32);

impl From<Resume> for ResumeTag {
    #[inline]
    fn from(r: Resume) -> ResumeTag {
        ResumeTag(r.tag())
    }
}

/// Low bits of a resume tag that carry its argument; the top two say which step.
const RESUME_ARG: u32 = (1 << 30) - 1;

impl Resume {
    /// As a 32-bit tag carried in the mbuf across the handoff ring. A zero tag is none (a
    /// fresh mbuf has 0 there).
    pub fn tag(self) -> u32 {
        match self {
            Resume::EspInput => 1 << 30,
            Resume::TunnelOutput(t) => (2 << 30) | (t & RESUME_ARG),
            Resume::Transmit(p) => (3 << 30) | u32::from(p),
        }
    }

    pub fn from_tag(tag: u32) -> Option<Resume> {
        let v = tag & RESUME_ARG;
        match tag >> 30 {
            1 if v == 0 => Some(Resume::EspInput),
            2 => Some(Resume::TunnelOutput(v)),
            3 => u16::try_from(v).ok().map(Resume::Transmit),
            _ => None,
        }
    }
}

/// What to do with a packet once the pipeline is done with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Transmit the frame now in the buffer on this port.
    Tx(u16),
    /// Hand the frame (Ethernet header included) to the main lcore.
    Punt,
    /// Free it; the counter has been incremented.
    Drop(Stat),
    /// Give it to the worker (by index) that owns its SA, to resume there.
    Handoff { worker: u16, resume: ResumeTag },
    /// Parked until its SA's batch is sealed or opened: keep the buffer where it is in the
    /// burst and pass the burst to `Forwarder::complete`.
    Crypto,
}

/// A tunnel's outer next hop, as resolved (VPP would call it the SA's adjacency): the
/// egress port and its MTU, and the Ethernet addresses of the frames that leave there.
#[derive(Debug, Clone, Copy, Default)]
struct Adjacency {
    /// 0 never matches: the forwarder's generation starts at 1.
    generation: u32,
    port: u16,
    mtu: u16,
    mac: Mac,
    /// The egress interface's own MAC.
    src: Mac,
}

/// What a worker keeps per tunnel, side by side, so that a packet into the tunnel finds its
/// owner, its outer next hop and its SA through one cache line (two per line, none across two).
#[repr(align(32))]
struct TunnelSlot {
    /// The worker (by index) that owns the tunnel's outbound SA.
    owner: u16,
    adj: Adjacency,
    /// The current outbound SA, if this worker holds one.
    sa: Option<Box<OutboundSa>>,
}

impl Default for TunnelSlot {
    fn default() -> Self {
        TunnelSlot {
            owner: NO_OWNER,
            adj: Adjacency::default(),
            sa: None,
        }
    }
}

const _: () = assert!(std::mem::size_of::<TunnelSlot>() == 32);

/// Entries of the route cache.
const ROUTE_CACHE: usize = 256;

/// Fibonacci hashing (Knuth): the top `bits` bits (1 to 63) of `key` times 2^64 over the
/// golden ratio, which every bit of the key moves. The one hash of every table the forwarder
/// indexes by a key: the route cache, the SPI table, and a burst's SAs.
#[inline(always)]
fn fibonacci(key: u64, bits: u32) -> usize {
    (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize
}

/// A destination's entry in the route cache. (Hosts with the same last octet in many subnets,
/// such as each subnet's .1 or .10, are a common pattern; an xor of shifted address bits
/// mapped 32 such subnets to two entries.)
#[inline(always)]
fn route_slot(addr: u32) -> usize {
    const _: () = assert!(ROUTE_CACHE.is_power_of_two() && ROUTE_CACHE > 1);
    fibonacci(u64::from(addr), ROUTE_CACHE.trailing_zeros())
}

/// A destination's forwarding as last resolved, as a FIB entry leads to its adjacency (VPP's
/// ip4-lookup to the adjacency holding the rewrite): the route, and for a next hop on a port
/// the Ethernet addresses of the frames to it once the neighbor is known.
#[derive(Debug, Clone, Copy)]
struct CachedRoute {
    /// 0 never matches: the forwarder's generation starts at 1.
    generation: u32,
    addr: u32,
    target: Target,
    /// For `Connected` and `Gateway`: the next hop's MAC and the egress interface's.
    rewrite: Option<(Mac, Mac)>,
}

const _: () = assert!(std::mem::size_of::<CachedRoute>() <= 32);

/// The packets of a burst parked for batched crypto, in arrival order, kept field by field:
/// writing each field in place (rather than moving a built struct in) spares the store
/// forwarding stalls a per-packet struct copy costs.
struct Parked {
    len: usize,
    prep: [Prepared; MAX_BURST],
    /// `AfterCrypto` taken apart: seal or open, the tunnel or inbound slot, the egress port,
    /// and the inner length (seal) or ESP offset (open).
    seal: [bool; MAX_BURST],
    sa: [u32; MAX_BURST],
    port: [u16; MAX_BURST],
    extra: [u32; MAX_BURST],
}

impl Default for Parked {
    fn default() -> Self {
        Parked {
            len: 0,
            prep: [Prepared {
                offset: 0,
                len: 0,
                seq: 0,
            }; MAX_BURST],
            seal: [false; MAX_BURST],
            sa: [0; MAX_BURST],
            port: [0; MAX_BURST],
            extra: [0; MAX_BURST],
        }
    }
}

impl Parked {
    /// Parks one more packet; false when the burst is full.
    #[inline(always)]
    fn push(&mut self, prep: Prepared, step: AfterCrypto) -> bool {
        let i = self.len;
        if i >= MAX_BURST {
            return false;
        }
        let p = &mut self.prep[i];
        p.offset = prep.offset;
        p.len = prep.len;
        p.seq = prep.seq;
        match step {
            AfterCrypto::Seal {
                tunnel,
                port,
                inner_len,
            } => {
                self.seal[i] = true;
                self.sa[i] = tunnel;
                self.port[i] = port;
                self.extra[i] = inner_len;
            }
            AfterCrypto::Open { slot, esp_off } => {
                self.seal[i] = false;
                self.sa[i] = slot;
                self.extra[i] = u32::from(esp_off);
            }
        }
        self.len = i + 1;
        true
    }
    #[inline]
    fn len(&self) -> usize {
        self.len
    }
    #[inline]
    fn is_empty(&self) -> bool {
        self.len == 0
    }
    #[inline]
    fn clear(&mut self) {
        self.len = 0;
    }
    /// One value per SA, so a batch can be grouped by SA.
    #[inline]
    fn sa_key(&self, j: usize) -> u64 {
        (u64::from(self.seal[j]) << 32) | u64::from(self.sa[j])
    }
    /// How the parked packets spread over SAs, in branch-free passes: whether they are under
    /// more than one, and if so a lower bound on how many (each SA sets one bit of a 64-bit
    /// filter by its hash; SAs whose hashes collide count once). Enough to send a burst spread
    /// over many tunnels to the queue pair without grouping it first.
    #[inline(always)]
    fn spread(&self) -> (bool, u32) {
        let n = self.len.min(MAX_BURST);
        if n == 0 {
            return (false, 0);
        }
        let mixed = (0..n).fold(0, |d, j| {
            d | (self.sa[j] ^ self.sa[0]) | u32::from(self.seal[j] ^ self.seal[0])
        });
        if mixed == 0 {
            return (false, 1);
        }
        let seen = (0..n).fold(0u64, |seen, j| seen | 1 << fibonacci(self.sa_key(j), 6));
        (true, seen.count_ones())
    }
    /// The parked packets grouped by SA, in order of first appearance: each group's first
    /// packet and the set of its packets (bit j = packet j). A packet of the same SA as the
    /// one before joins its group at once (a burst is usually one SA, or runs of one); any
    /// other is looked up in a small open-addressed table from SA to group, so a burst spread
    /// over many tunnels costs one probe sequence per packet, not a rescan of the burst per SA.
    fn groups(&self) -> ArrayVec<(usize, u32), MAX_BURST> {
        const SLOTS: usize = 2 * MAX_BURST;
        const EMPTY: u8 = u8::MAX;
        // The u32 member sets, the u8 group numbers and the hash's shift rely on these.
        const _: () = assert!(MAX_BURST.is_power_of_two() && MAX_BURST <= 32);
        let mut groups: ArrayVec<(usize, u32), MAX_BURST> = ArrayVec::new();
        let mut table = [EMPTY; SLOTS];
        let mut last: Option<(u64, usize)> = None;
        for j in 0..self.len.min(MAX_BURST) {
            let key = self.sa_key(j);
            if let Some((k, g)) = last {
                if k == key {
                    groups[g].1 |= 1 << j;
                    continue;
                }
            }
            let mut h = fibonacci(key, SLOTS.trailing_zeros());
            let g = loop {
                let g = usize::from(table[h]);
                if table[h] == EMPTY {
                    // At most MAX_BURST packets, so at most MAX_BURST groups.
                    table[h] = groups.len() as u8;
                    let _ = groups.try_push((j, 0));
                    break groups.len() - 1;
                }
                if self.sa_key(groups[g].0) == key {
                    break g;
                }
                h = (h + 1) % SLOTS;
            };
            groups[g].1 |= 1 << j;
            last = Some((key, g));
        }
        groups
    }
    #[inline]
    fn step(&self, j: usize) -> AfterCrypto {
        if self.seal[j] {
            AfterCrypto::Seal {
                tunnel: self.sa[j],
                port: self.port[j],
                inner_len: self.extra[j],
            }
        } else {
            AfterCrypto::Open {
                slot: self.sa[j],
                esp_off: self.extra[j] as u16,
            }
        }
    }
}

/// A parked packet: its prepared AEAD job and what follows the crypto.
#[derive(Debug, Clone, Copy)]
struct Pending {
    prep: Prepared,
    step: AfterCrypto,
}

#[derive(Debug, Clone, Copy)]
enum AfterCrypto {
    /// Sealed: count and send the frame (Ethernet header already written) on `port`.
    Seal {
        tunnel: u32,
        port: u16,
        inner_len: u32,
    },
    /// Opened: finish the decapsulation of the ESP at `esp_off` with the inbound SA in
    /// `slot`, then route the inner packet.
    Open { slot: u32, esp_off: u16 },
}

/// Where an IPv4 packet entering `ip_input` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Received in a frame: the headroom still holds its Ethernet header.
    Wire,
    /// Just decapsulated: its header and checksum are already verified.
    Decrypted,
    /// Originated by the gateway (the main lcore).
    Local,
}

/// Below this many SAs held (outbound and inbound), the SAs and their sessions stay in the
/// caches, and the look ahead over a burst (`prefetch_sas`) costs more than it saves: about
/// 4 ns a packet over 32 tunnels, for nothing.
const LOOKAHEAD_MIN_SAS: usize = 256;

/// No worker owns this tunnel or SPI (yet).
const NO_OWNER: u16 = u16::MAX;
/// This worker holds no SA for the SPI.
const NO_SLOT: u32 = u32::MAX;

/// Most resolution requests one burst can queue for the main lcore.
pub const MAX_RESOLVE_PER_BURST: usize = 32;

pub struct Forwarder {
    /// This worker's index: SAs owned by another index are handed off.
    me: u16,
    /// Inbound SPIs: the owning worker, and where this worker keeps the SA if it owns it.
    spis: SpiTable,
    /// By port id; one interface per port.
    ifaces: Vec<Option<Interface>>,
    /// The interfaces' addresses, for the local check before the route lookup.
    own: Vec<Ipv4Addr>,
    routes: Lpm,
    /// Next hops by LPM index, and the index of each, so that a route add is O(1).
    targets: Vec<Target>,
    target_index: std::collections::HashMap<Target, u32>,
    neighbors: NeighborTable,
    /// By tunnel id: owner, outer next hop, outbound SA.
    tunnels: Vec<TunnelSlot>,
    /// Inbound SAs by slot; `spis` says which slot. Free slots are reused.
    inbound: Vec<Option<Box<InboundSa>>>,
    free_slots: Vec<u32>,
    natt_ports: Vec<u16>,
    pub stats: Arc<StatBlock>,
    /// Milliseconds on the worker's clock, set once per burst.
    pub now_ms: u64,
    /// Next hops to resolve, as (port, address), drained by the worker after each burst.
    pub resolve: Vec<(u16, Ipv4Addr)>,
    /// Recent destinations' routes, and their next hops' Ethernet addresses.
    route_cache: Box<[CachedRoute; ROUTE_CACHE]>,
    /// Bumped by every change of interfaces, routes or neighbors.
    generation: u32,
    /// Packets parked for batched crypto, in arrival order.
    pending: Parked,
    /// This worker's queue pair on the crypto device, for bursts spread over many SAs.
    queue: Option<Box<dpdk_sys::AeadQueue>>,
    /// Park packets that need crypto (`Verdict::Crypto`) instead of running it one by one.
    batching: bool,
    /// The SAs (outbound and inbound) this worker holds.
    sas: usize,
    /// The last burst's parked packets were under more than one SA, of more SAs than the
    /// caches hold: the next burst's SAs are worth prefetching (`prefetch_sas`).
    spread: bool,
}

impl Forwarder {
    /// The state of worker number `me` (its index in `dataplane.workers`).
    pub fn new(me: u16, stats: Arc<StatBlock>) -> Forwarder {
        Forwarder {
            me,
            spis: SpiTable::default(),
            ifaces: Vec::new(),
            own: Vec::new(),
            routes: Lpm::new(),
            targets: Vec::new(),
            target_index: Default::default(),
            neighbors: NeighborTable::default(),
            tunnels: Vec::new(),
            inbound: Vec::new(),
            free_slots: Vec::new(),
            natt_ports: Vec::new(),
            stats,
            now_ms: 0,
            resolve: Vec::with_capacity(MAX_RESOLVE_PER_BURST),
            route_cache: Box::new(
                [CachedRoute {
                    generation: 0,
                    addr: 0,
                    target: Target::Local,
                    rewrite: None,
                }; ROUTE_CACHE],
            ),
            generation: 1,
            pending: Parked::default(),
            queue: None,
            batching: false,
            sas: 0,
            spread: false,
        }
    }

    /// With batching on, packets that need crypto come back as `Verdict::Crypto` and the caller
    /// runs them with `complete` after the burst (the workers do). Off, crypto runs per packet.
    /// Gives the worker its queue pair on the crypto device (bursts spread over many SAs go
    /// through it in one trip).
    pub fn set_crypto_queue(&mut self, q: dpdk_sys::AeadQueue) {
        self.queue = Some(Box::new(q));
    }

    pub fn set_batching(&mut self, on: bool) {
        self.batching = on;
    }

    pub fn apply(&mut self, cmd: Command) {
        if matches!(
            cmd,
            Command::SetInterface(_)
                | Command::AddRoute { .. }
                | Command::DelRoute { .. }
                | Command::SetNeighbor { .. }
        ) {
            self.generation = self.generation.wrapping_add(1).max(1);
        }
        match cmd {
            Command::SetInterface(i) => {
                let p = usize::from(i.port);
                if self.ifaces.len() <= p {
                    self.ifaces.resize(p + 1, None);
                }
                if let Some(old) = self.ifaces[p].replace(i) {
                    self.own.retain(|a| *a != old.addr);
                }
                self.own.push(i.addr);
            }
            Command::AddRoute { prefix, target } => {
                // Routes sharing a next hop share its entry, so the table grows with next hops.
                let next = self.targets.len() as u32;
                let nh = *self.target_index.entry(target).or_insert(next);
                if nh == next {
                    self.targets.push(target);
                }
                // The config layer bounds the number of routes far below 2^24 next hops.
                let _ = self.routes.insert(prefix.addr(), prefix.prefix_len(), nh);
            }
            Command::DelRoute { prefix } => {
                self.routes.remove(prefix.addr(), prefix.prefix_len());
            }
            Command::SetNeighbor {
                addr,
                mac,
                permanent,
            } => self.neighbors.set(addr, mac, permanent),
            Command::AddInboundSa(sa) => {
                let mut e = self.spis.get(sa.spi).unwrap_or(SpiEntry {
                    owner: NO_OWNER,
                    slot: NO_SLOT,
                });
                if e.slot == NO_SLOT {
                    e.slot = match self.free_slots.pop() {
                        Some(s) => s,
                        None => {
                            self.inbound.push(None);
                            (self.inbound.len() - 1) as u32
                        }
                    };
                    self.spis.set(sa.spi, e);
                }
                if self.inbound[e.slot as usize].replace(sa).is_none() {
                    self.sas += 1;
                }
            }
            Command::DelInboundSa { spi } => {
                if let Some(mut e) = self.spis.get(spi) {
                    if e.slot != NO_SLOT {
                        if self.inbound[e.slot as usize].take().is_some() {
                            self.sas -= 1;
                        }
                        self.free_slots.push(e.slot);
                        e.slot = NO_SLOT;
                    }
                    if e.owner == NO_OWNER {
                        self.spis.remove(spi);
                    } else {
                        self.spis.set(spi, e);
                    }
                }
            }
            Command::SetOutboundSa(sa) => {
                let t = self.tunnel_slot(sa.tunnel);
                // The new SA may have another peer: resolve its next hop afresh.
                t.adj.generation = 0;
                if t.sa.replace(sa).is_none() {
                    self.sas += 1;
                }
            }
            Command::DelOutboundSa { tunnel } => {
                if let Some(t) = self.tunnels.get_mut(tunnel as usize) {
                    if t.sa.take().is_some() {
                        self.sas -= 1;
                    }
                }
            }
            Command::AddNattPort(p) => {
                if !self.natt_ports.contains(&p) {
                    self.natt_ports.push(p);
                }
            }
            Command::SetTunnelOwner { tunnel, worker } => self.tunnel_slot(tunnel).owner = worker,
            Command::SetSpiOwner { spi, worker } => {
                let slot = self.spis.get(spi).map_or(NO_SLOT, |e| e.slot);
                self.spis.set(
                    spi,
                    SpiEntry {
                        owner: worker,
                        slot,
                    },
                );
            }
            Command::DelSpiOwner { spi } => {
                if let Some(e) = self.spis.get(spi) {
                    if e.slot == NO_SLOT {
                        self.spis.remove(spi);
                    } else {
                        self.spis.set(
                            spi,
                            SpiEntry {
                                owner: NO_OWNER,
                                slot: e.slot,
                            },
                        );
                    }
                }
            }
        }
    }

    /// A tunnel's slot, made if it is not there yet.
    fn tunnel_slot(&mut self, tunnel: u32) -> &mut TunnelSlot {
        let t = tunnel as usize;
        if self.tunnels.len() <= t {
            self.tunnels.resize_with(t + 1, TunnelSlot::default);
        }
        &mut self.tunnels[t]
    }

    /// Continues a packet another worker handed to this one, which owns its SA.
    pub fn resume<B: PacketBuf>(&mut self, buf: &mut B, r: Resume) -> Verdict {
        match r {
            Resume::Transmit(port) => Verdict::Tx(port),
            Resume::TunnelOutput(tunnel) => self.tunnel_output(buf, tunnel),
            Resume::EspInput => {
                let (dst, ihl, proto) = match ipv4::Packet::new_checked(buf.data()) {
                    Ok(p) => (p.dst(), p.header_len(), p.protocol()),
                    Err(_) => return self.drop(Stat::Malformed),
                };
                let udp = proto == ipv4::PROTO_UDP;
                let esp_off = if udp { ihl + udp::HEADER_LEN } else { ihl };
                self.esp_input(buf, dst, esp_off, udp)
            }
        }
    }

    #[inline]
    fn drop(&self, s: Stat) -> Verdict {
        self.stats.inc(s);
        Verdict::Drop(s)
    }

    /// Runs one received frame through the pipeline, in place.
    #[inline]
    pub fn receive<B: PacketBuf>(&mut self, port: u16, buf: &mut B) -> Verdict {
        let Some(Some(iface)) = self.ifaces.get(usize::from(port)) else {
            return self.drop(Stat::NotForUs);
        };
        let Some(h) = buf.data().first_chunk::<{ ethernet::HEADER_LEN }>() else {
            return self.drop(Stat::Malformed);
        };
        // IPv4 unicast to us, as a router takes it: the frame's first 6 bytes are our MAC.
        if h[..6] == iface.mac.0 && h[12..] == ethernet::ETHERTYPE_IPV4.to_be_bytes() {
            buf.adj(ethernet::HEADER_LEN);
            return self.ip_input(buf, Origin::Wire);
        }
        let dst = ethernet::Mac([h[0], h[1], h[2], h[3], h[4], h[5]]);
        let ethertype = u16::from_be_bytes([h[12], h[13]]);
        self.receive_other(iface.mac, dst, ethertype)
    }

    /// Frames other than IPv4 to our MAC: ARP may be broadcast; anything routed must be
    /// unicast to us, as a router does.
    #[cold]
    fn receive_other(&self, ours: Mac, dst: Mac, ethertype: u16) -> Verdict {
        match ethertype {
            ethernet::ETHERTYPE_ARP if dst == ours || dst.is_broadcast() => self.punt(),
            ethernet::ETHERTYPE_ARP | ethernet::ETHERTYPE_IPV4 => self.drop(Stat::NotForUs),
            _ => self.drop(Stat::UnsupportedEthertype),
        }
    }

    /// Routes an IPv4 packet that fills `buf` (no Ethernet header), as for packets the main
    /// lcore originates (ICMP replies).
    pub fn output_ip<B: PacketBuf>(&mut self, buf: &mut B) -> Verdict {
        self.ip_input(buf, Origin::Local)
    }

    fn punt(&self) -> Verdict {
        self.stats.inc(Stat::Punted);
        Verdict::Punt
    }

    /// IPv4 input (VPP's ip4-input): the header checked, Ethernet padding cut, then routed.
    fn ip_input<B: PacketBuf>(&mut self, buf: &mut B, origin: Origin) -> Verdict {
        let (h, total) = match ipv4::Packet::new_checked(buf.data()) {
            Ok(p) if !p.verify_checksum() => return self.drop(Stat::BadIpChecksum),
            Ok(p) => (p.summary(), p.total_len()),
            Err(_) => return self.drop(Stat::Malformed),
        };
        buf.truncate(total); // Ethernet padding
        self.ip_lookup(buf, h, origin)
    }

    /// Routes a packet whose header is checked and which fills `buf` exactly: to a tunnel, a
    /// next hop, or the gateway itself (VPP's ip4-lookup and local delivery).
    #[inline(always)]
    fn ip_lookup<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        h: ipv4::Summary,
        origin: Origin,
    ) -> Verdict {
        let from_wire = origin == Origin::Wire;
        let dst = h.dst;
        if dst.is_broadcast() || dst.is_multicast() {
            return self.drop(Stat::NotForUs);
        }
        let Some((target, slot)) = self.route(dst) else {
            return self.drop(Stat::NoRoute);
        };
        if target != Target::Local {
            return self.forward(buf, target, h.ttl, slot);
        }
        if h.fragment {
            return self.drop(Stat::Fragments);
        }
        let ihl = h.header_len();
        match h.protocol {
            ipv4::PROTO_ESP => self.esp_input(buf, dst, ihl, false),
            ipv4::PROTO_UDP => self.udp_input(buf, dst, ihl, from_wire),
            _ => self.punt_local(buf, from_wire),
        }
    }

    fn udp_input<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        dst: Ipv4Addr,
        ihl: usize,
        from_wire: bool,
    ) -> Verdict {
        let (dport, udp_len, kind) = match udp::Datagram::new_checked(&buf.data()[ihl..]) {
            Ok(d) => (d.dst_port(), d.len(), classify_udp(d.payload())),
            Err(_) => return self.drop(Stat::Malformed),
        };
        if self.natt_ports.contains(&dport) {
            match kind {
                UdpKind::Keepalive => return self.drop(Stat::NattKeepalives),
                UdpKind::NonEspMarker => {
                    self.stats.inc(Stat::IkePackets);
                    return self.punt_local(buf, from_wire);
                }
                UdpKind::Esp => {
                    buf.truncate(ihl + udp_len);
                    return self.esp_input(buf, dst, ihl + udp::HEADER_LEN, true);
                }
            }
        }
        if dport == udp::PORT_IKE {
            self.stats.inc(Stat::IkePackets);
        }
        self.punt_local(buf, from_wire)
    }

    /// Gives a packet for the gateway itself to the main lcore, as an Ethernet frame.
    fn punt_local<B: PacketBuf>(&mut self, buf: &mut B, from_wire: bool) -> Verdict {
        let Some(h) = buf.prepend(ethernet::HEADER_LEN) else {
            return self.drop(Stat::NoBufferRoom);
        };
        if !from_wire {
            // Decrypted or originated packets have no frame of their own: give them a blank one.
            if let Some(h) = h.first_chunk_mut() {
                ethernet::Repr {
                    dst: Mac::default(),
                    src: Mac::default(),
                    ethertype: ethernet::ETHERTYPE_IPV4,
                }
                .emit(h);
            }
        }
        self.punt()
    }

    #[inline(always)]
    fn esp_input<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        dst: Ipv4Addr,
        esp_off: usize,
        udp: bool,
    ) -> Verdict {
        let many = self.sas > LOOKAHEAD_MIN_SAS;
        let spi = match esp_wire::Packet::new_checked(&buf.data()[esp_off..]) {
            Ok(p) => p.spi(),
            Err(_) => return self.drop(Stat::BadHeaders),
        };
        // One lookup per packet: the owner, and the SA's slot if it is ours.
        let slot = match self.spis.get(spi) {
            None => return self.drop(Stat::InvalidSpi),
            Some(e) if e.owner == NO_OWNER => return self.drop(Stat::InvalidSpi),
            Some(e) if e.owner != self.me => {
                return Verdict::Handoff {
                    worker: e.owner,
                    resume: Resume::EspInput.into(),
                };
            }
            Some(e) => e.slot,
        };
        let Some(sa) = self.inbound_at(slot) else {
            return self.drop(Stat::InvalidSpi);
        };
        if sa.local != dst {
            return self.drop(Stat::InvalidSpi);
        }
        if sa.udp_encap != udp {
            return self.drop(Stat::BadHeaders);
        }
        let prep = match esp::decap::prepare(sa, buf, esp_off) {
            Ok(p) => p,
            Err(e) => return self.decap_failed(slot, e),
        };
        if many {
            // Opened and counted with the batch (`decap::finish`): with this many SAs, ask
            // for those lines now.
            crate::prefetch::line(Arc::as_ptr(&sa.counters));
            sa.cipher.prefetch_key();
        }
        // esp_off is within a frame, far below 2^16.
        let step = AfterCrypto::Open {
            slot,
            esp_off: esp_off as u16,
        };
        self.park_or_run(buf, Pending { prep, step })
    }

    /// Counts a decapsulation failure (per SA where the SA is at fault) and drops.
    #[cold]
    fn decap_failed(&mut self, slot: u32, e: DecapError) -> Verdict {
        let c = self
            .inbound
            .get(slot as usize)
            .and_then(|s| s.as_deref())
            .map(|sa| &sa.counters);
        let stat = match e {
            DecapError::BadHeader => Stat::BadHeaders,
            DecapError::Replay(_) => {
                c.inspect(|c| c.replay_errors.inc());
                Stat::ReplayErrors
            }
            DecapError::Auth => {
                c.inspect(|c| c.auth_failures.inc());
                Stat::EspAuthFailures
            }
            DecapError::BadTrailer => {
                c.inspect(|c| c.bad_trailers.inc());
                Stat::BadTrailers
            }
            DecapError::Dummy => Stat::DummyPackets,
            DecapError::BadInner => Stat::BadInnerPackets,
            DecapError::TsCheckFail => {
                c.inspect(|c| c.ts_check_fail.inc());
                Stat::TsCheckFail
            }
        };
        self.drop(stat)
    }

    /// Parks a prepared packet for its SA's batch, or, when not batching (or the batch is
    /// full), runs its crypto now.
    #[inline(always)]
    fn park_or_run<B: PacketBuf>(&mut self, buf: &mut B, p: Pending) -> Verdict {
        if self.batching && self.pending.push(p.prep, p.step) {
            return Verdict::Crypto;
        }
        self.run_now(buf, p)
    }

    /// The crypto of one packet, at once (not batching, or the batch is full).
    #[inline(never)]
    fn run_now<B: PacketBuf>(&mut self, buf: &mut B, p: Pending) -> Verdict {
        let ok = self.keying(p.step).is_some_and(|k| {
            let mut ops = AeadOps::new();
            p.prep.push(buf.data_mut(), &k, &mut ops).is_some() && {
                k.cipher.process(&mut ops);
                ops.ok(0)
            }
        });
        if let (
            AfterCrypto::Seal {
                tunnel, inner_len, ..
            },
            true,
        ) = (p.step, ok)
        {
            self.count_sealed(tunnel, 1, u64::from(inner_len));
        }
        self.after_crypto(buf, p, ok)
    }

    /// Counts packets sealed under a tunnel's SA, per SA and globally, once per batch.
    #[inline]
    fn count_sealed(&self, tunnel: u32, packets: u64, bytes: u64) {
        if let Some(sa) = self.outbound_sa(tunnel) {
            sa.counters.carried(packets, bytes);
        }
        self.count_encrypted(packets, bytes);
    }

    /// The worker's totals of sealed packets and their inner bytes.
    #[inline]
    fn count_encrypted(&self, packets: u64, bytes: u64) {
        self.stats.add(Stat::EncryptedPackets, packets);
        self.stats.add(Stat::EncryptedBytes, bytes);
    }

    /// The keys of the SA a parked packet belongs to.
    #[inline]
    fn keying(&self, step: AfterCrypto) -> Option<esp::Keying<'_>> {
        match step {
            AfterCrypto::Seal { tunnel, .. } => self.outbound_sa(tunnel).map(|s| s.keying()),
            AfterCrypto::Open { slot, .. } => self
                .inbound
                .get(slot as usize)
                .and_then(|s| s.as_deref())
                .map(|s| s.keying()),
        }
    }

    /// Whether packets are parked, waiting for `complete`.
    #[inline]
    pub fn has_parked(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Runs the crypto of every packet parked since the last call, one backend call per SA,
    /// then finishes each in the order parked. `bufs` and `verdicts` are the whole burst: the
    /// k-th `Verdict::Crypto` in `verdicts` is the k-th packet parked, and is replaced by its
    /// final verdict.
    pub fn complete<B: PacketBuf>(&mut self, bufs: &mut [B], verdicts: &mut [Verdict]) {
        let n = self.pending.len();
        // The k-th `Crypto` verdict is the k-th parked packet.
        let k = verdicts
            .iter()
            .take(bufs.len())
            .filter(|v| **v == Verdict::Crypto)
            .count();
        if k != n {
            // A caller bug; never a crash, and no packet goes out unprocessed.
            for v in verdicts.iter_mut().filter(|v| **v == Verdict::Crypto) {
                *v = self.drop(Stat::CryptoErrors);
            }
            self.pending.clear();
            return;
        }
        let (mixed, sas) = self.pending.spread();
        self.spread = mixed && self.sas > LOOKAHEAD_MIN_SAS;
        let ok = if !mixed {
            // One SA (the usual burst): one CPU-crypto call.
            self.run_one_sa(bufs, verdicts)
        } else {
            // Spread over many SAs, the burst goes through the worker's queue pair in one
            // trip; otherwise one CPU-crypto call per SA (see `esp::cryptodev` for the costs).
            // The filter's count settles most bursts; the groups settle the rest.
            let groups = (sas as usize * 3 <= n).then(|| self.pending.groups());
            let many = groups.as_ref().is_none_or(|g| g.len() * 3 > n);
            let queued = if many {
                self.queue.take().and_then(|mut q| {
                    let ok = self.run_queued(&mut q, bufs, verdicts);
                    // A device that kept operations gets no more (a PMD bug; never seen).
                    if q.is_stuck() {
                        Box::leak(q);
                    } else {
                        self.queue = Some(q);
                    }
                    ok
                })
            } else {
                None
            };
            match queued {
                Some(ok) => ok,
                None => {
                    let groups = groups.unwrap_or_else(|| self.pending.groups());
                    let slot = parked_slots(verdicts, bufs.len());
                    self.run_per_sa(bufs, &slot[..n], &groups)
                }
            }
        };
        // What follows the crypto may need crypto again (a decrypted packet routed into a
        // tunnel): that runs at once, not in a batch.
        self.batching = false;
        for (j, b, v) in parked(bufs, verdicts.iter_mut()) {
            let ok = ok & (1 << j) != 0;
            // Sealed packets are counted with their batch (`count_sealed`).
            *v = match (self.pending.seal[j], ok) {
                (true, true) => Verdict::Tx(self.pending.port[j]),
                (true, false) => self.drop(Stat::CryptoErrors),
                (false, _) => {
                    let (slot, esp_off) = (self.pending.sa[j], self.pending.extra[j] as u16);
                    self.opened(b, slot, esp_off, self.pending.prep[j].seq, ok)
                }
            };
        }
        self.batching = true;
        self.pending.clear();
    }

    /// A packet after its crypto, outside a batch (`run_now`).
    #[inline]
    fn after_crypto<B: PacketBuf>(&mut self, buf: &mut B, p: Pending, ok: bool) -> Verdict {
        match p.step {
            AfterCrypto::Seal { port, .. } if ok => Verdict::Tx(port),
            AfterCrypto::Seal { .. } => self.drop(Stat::CryptoErrors),
            AfterCrypto::Open { slot, esp_off } => self.opened(buf, slot, esp_off, p.prep.seq, ok),
        }
    }

    /// An opened packet (`ok`: its ICV verified): decapsulated, then routed.
    #[inline(never)]
    fn opened<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        slot: u32,
        esp_off: u16,
        seq: u64,
        ok: bool,
    ) -> Verdict {
        if !ok {
            return self.decap_failed(slot, DecapError::Auth);
        }
        let Some(sa) = self.inbound_at(slot) else {
            return self.drop(Stat::InvalidSpi);
        };
        let inner = match esp::decap::finish(sa, buf, usize::from(esp_off), seq) {
            Ok(h) => h,
            Err(e) => return self.decap_failed(slot, e),
        };
        self.stats.inc(Stat::DecryptedPackets);
        self.stats.add(Stat::DecryptedBytes, buf.len() as u64);
        // Checked by the decapsulation, its checksum authenticated by the ICV.
        self.ip_lookup(buf, inner, Origin::Decrypted)
    }

    /// Forwards a routed packet (`slot`: its destination's entry in the route cache, just
    /// looked up): into a tunnel, or to a next hop with the rewrite the entry keeps.
    #[inline(always)]
    fn forward<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        target: Target,
        ttl: u8,
        slot: usize,
    ) -> Verdict {
        if ttl <= 1 {
            return self.drop(Stat::TtlExceeded);
        }
        // ip_input validated the header.
        match buf.data_mut().first_chunk_mut() {
            Some(h) => ipv4::decrement_ttl(h),
            None => return self.drop(Stat::Malformed),
        }
        let port = match target {
            Target::Tunnel { tunnel } => return self.tunnel_output(buf, tunnel),
            Target::Connected { port } | Target::Gateway { port, .. } => port,
            Target::Local => return self.drop(Stat::NoRoute),
        };
        let (dst, src) = match self.route_cache.get(slot).and_then(|e| e.rewrite) {
            Some(r) => r,
            None => match self.resolve_rewrite(target, slot) {
                Ok(r) => r,
                Err(s) => return self.drop(s),
            },
        };
        let Some(h) = buf
            .prepend(ethernet::HEADER_LEN)
            .and_then(|h| h.first_chunk_mut())
        else {
            return self.drop(Stat::NoBufferRoom);
        };
        ethernet::Repr {
            dst,
            src,
            ethertype: ethernet::ETHERTYPE_IPV4,
        }
        .emit(h);
        self.stats.inc(Stat::ForwardedPackets);
        Verdict::Tx(port)
    }

    /// The Ethernet addresses for a route to a next hop (the destination itself on a connected
    /// subnet), kept in the destination's route-cache entry once the neighbor is known.
    #[cold]
    fn resolve_rewrite(&mut self, target: Target, slot: usize) -> Result<(Mac, Mac), Stat> {
        let addr = self.route_cache.get(slot).ok_or(Stat::NoRoute)?.addr;
        let (port, next_hop) = match target {
            Target::Connected { port } => (port, Ipv4Addr::from(addr)),
            Target::Gateway { port, via } => (port, via),
            Target::Tunnel { .. } | Target::Local => return Err(Stat::NoRoute),
        };
        let (mac, iface) = self.next_hop(port, next_hop)?;
        if let Some(e) = self.route_cache.get_mut(slot) {
            e.rewrite = Some((mac, iface.mac));
        }
        Ok((mac, iface.mac))
    }

    /// The route to `dst` and its slot in the route cache: a small direct-mapped cache of
    /// recent destinations (our own addresses among them) in front of the trie (whose host
    /// routes take three dependent loads), valid until the next change of interfaces, routes
    /// or neighbors.
    #[inline(always)]
    fn route(&mut self, dst: Ipv4Addr) -> Option<(Target, usize)> {
        let a = u32::from(dst);
        let slot = route_slot(a);
        let e = self.route_cache[slot];
        if e.generation == self.generation && e.addr == a {
            return Some((e.target, slot));
        }
        // Our own addresses before the trie: every ESP packet is for one of them, and their
        // /32 routes are the deepest (three levels) there.
        let target = if self.own.contains(&dst) {
            Target::Local
        } else {
            self.routes
                .lookup(dst)
                .and_then(|i| self.targets.get(i as usize).copied())?
        };
        self.route_cache[slot] = CachedRoute {
            generation: self.generation,
            addr: a,
            target,
            rewrite: None,
        };
        Some((target, slot))
    }

    #[inline(always)]
    fn tunnel_output<B: PacketBuf>(&mut self, buf: &mut B, tunnel: u32) -> Verdict {
        let (me, generation, many) = (self.me, self.generation, self.sas > LOOKAHEAD_MIN_SAS);
        let Some(t) = self.tunnels.get_mut(tunnel as usize) else {
            return self.drop(Stat::NoSa);
        };
        if t.owner != me {
            return match t.owner {
                NO_OWNER => self.drop(Stat::NoSa),
                w => Verdict::Handoff {
                    worker: w,
                    resume: Resume::TunnelOutput(tunnel).into(),
                },
            };
        }
        // Resolve the outer next hop first: no crypto for a packet that cannot leave.
        if t.adj.generation != generation {
            return self.resolve_and_output(buf, tunnel);
        }
        let adj = t.adj;
        let Some(sa) = t.sa.as_deref_mut() else {
            return self.drop(Stat::NoSa);
        };
        let inner_len = buf.len() as u32;
        // The frame in one step: ESP, then the Ethernet header in front of it.
        let prep = match esp::encap::prepare(sa, buf, ethernet::HEADER_LEN, adj.mtu.into()) {
            Ok(p) => p,
            Err(e) => {
                if e == EncapError::SeqExhausted {
                    sa.counters.seq_exhausted.inc();
                }
                return self.encap_failed(e);
            }
        };
        if many {
            // Sealed and counted with the batch (`count_sealed`): with this many SAs, ask for
            // those lines now.
            crate::prefetch::line(Arc::as_ptr(&sa.counters));
            sa.cipher.prefetch_key();
        }
        // `prepare` left the link header's room in front.
        let Some(h) = buf.data_mut().first_chunk_mut() else {
            return self.drop(Stat::NoBufferRoom);
        };
        ethernet::Repr {
            dst: adj.mac,
            src: adj.src,
            ethertype: ethernet::ETHERTYPE_IPV4,
        }
        .emit(h);
        let step = AfterCrypto::Seal {
            tunnel,
            port: adj.port,
            inner_len,
        };
        self.park_or_run(buf, Pending { prep, step })
    }

    /// `tunnel_output` once the tunnel's outer next hop is resolved again (after a change of
    /// routes, neighbors or interfaces).
    #[cold]
    #[inline(never)]
    fn resolve_and_output<B: PacketBuf>(&mut self, buf: &mut B, tunnel: u32) -> Verdict {
        match self.resolve_tunnel(tunnel) {
            Ok(_) => self.tunnel_output(buf, tunnel),
            Err(s) => self.drop(s),
        }
    }

    #[cold]
    fn encap_failed(&self, e: EncapError) -> Verdict {
        self.drop(match e {
            EncapError::SeqExhausted => Stat::SeqExhausted,
            EncapError::ExceedsMtu => Stat::ExceedsTunnelMtu,
            EncapError::NoRoom => Stat::NoBufferRoom,
            EncapError::NotIpv4 => Stat::Malformed,
            EncapError::Crypto => Stat::CryptoErrors,
        })
    }

    /// Where a tunnel's ESP leaves: the outer route to its peer, the next hop's MAC and the
    /// egress MTU. Remembered until the next change of routes, neighbors or interfaces.
    fn resolve_tunnel(&mut self, tunnel: u32) -> Result<Adjacency, Stat> {
        let remote = self
            .outbound_sa(tunnel)
            .map(|s| s.encap.remote)
            .ok_or(Stat::NoSa)?;
        let (port, next_hop) = match self
            .routes
            .lookup(remote)
            .and_then(|i| self.targets.get(i as usize))
        {
            Some(Target::Connected { port }) => (*port, remote),
            Some(Target::Gateway { port, via }) => (*port, *via),
            _ => return Err(Stat::NoRoute),
        };
        let (mac, iface) = self.next_hop(port, next_hop)?;
        let adj = Adjacency {
            generation: self.generation,
            port,
            mtu: iface.mtu,
            mac,
            src: iface.mac,
        };
        self.tunnel_slot(tunnel).adj = adj;
        Ok(adj)
    }

    /// A next hop on a port: its MAC (or a resolution request and `NoNeighbor` while it is not
    /// known) and the interface frames to it leave by (`NoRoute` if the port has none).
    fn next_hop(&mut self, port: u16, next_hop: Ipv4Addr) -> Result<(Mac, Interface), Stat> {
        let mac = self.neighbor(port, next_hop).ok_or(Stat::NoNeighbor)?;
        let iface = self.interface(port).ok_or(Stat::NoRoute)?;
        Ok((mac, iface))
    }

    fn neighbor(&mut self, port: u16, ip: Ipv4Addr) -> Option<Mac> {
        let (mac, ask) = self.neighbors.lookup(ip, self.now_ms);
        if ask && self.resolve.len() < MAX_RESOLVE_PER_BURST {
            self.resolve.push((port, ip));
        }
        mac
    }

    /// The interface on a port.
    pub fn interface(&self, port: u16) -> Option<Interface> {
        self.ifaces.get(usize::from(port)).copied().flatten()
    }

    /// The outbound SA of a tunnel, if this worker holds it.
    #[inline]
    fn outbound_sa(&self, tunnel: u32) -> Option<&OutboundSa> {
        self.tunnels
            .get(tunnel as usize)
            .and_then(|t| t.sa.as_deref())
    }

    /// The same, to change (sequence numbers); a test and tooling hook too.
    #[inline]
    pub fn outbound_sa_mut(&mut self, tunnel: u32) -> Option<&mut OutboundSa> {
        self.tunnels
            .get_mut(tunnel as usize)
            .and_then(|t| t.sa.as_deref_mut())
    }

    /// Test and tooling hook: an inbound SA by SPI.
    pub fn inbound_sa_mut(&mut self, spi: u32) -> Option<&mut InboundSa> {
        let slot = self.spis.get(spi)?.slot;
        self.inbound_at(slot)
    }

    /// The inbound SA in a slot.
    #[inline]
    fn inbound_at(&mut self, slot: u32) -> Option<&mut InboundSa> {
        self.inbound
            .get_mut(slot as usize)
            .and_then(|s| s.as_deref_mut())
    }
}

/// The parked packets of a burst, each with its index among them: the k-th `Crypto` verdict
/// is parked packet k (at most `MAX_BURST`). The verdicts come as `&Verdict` to be read, or as
/// `&mut Verdict` to be given each packet's final one.
#[inline(always)]
fn parked<B, V: std::ops::Deref<Target = Verdict>>(
    bufs: &mut [B],
    verdicts: impl IntoIterator<Item = V>,
) -> impl Iterator<Item = (usize, &mut B, V)> {
    ParkedIter {
        frames: bufs.iter_mut().zip(verdicts),
        j: 0,
    }
}

/// `parked`'s iterator: a plain loop, which the adapters' chain (filter, take, enumerate)
/// compiled 30 to 43 instructions a packet worse than (callgrind, scale replay).
struct ParkedIter<I> {
    frames: I,
    j: usize,
}

impl<'a, B: 'a, V, I> Iterator for ParkedIter<I>
where
    V: std::ops::Deref<Target = Verdict>,
    I: Iterator<Item = (&'a mut B, V)>,
{
    type Item = (usize, &'a mut B, V);
    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        for (b, v) in self.frames.by_ref() {
            if *v == Verdict::Crypto && self.j < MAX_BURST {
                self.j += 1;
                return Some((self.j - 1, b, v));
            }
        }
        None
    }
}

/// Where each parked packet sits in a burst, for the groups' random access (`parked` in
/// order): the k-th `Crypto` verdict is parked packet k.
/// Branch-free, since parked and other packets interleave unpredictably; the entry past a full
/// burst takes the writes of any surplus (which `complete` refuses before this runs).
fn parked_slots(verdicts: &[Verdict], len: usize) -> [u8; MAX_BURST + 1] {
    let mut slot = [0u8; MAX_BURST + 1];
    let mut k = 0;
    for (i, v) in verdicts.iter().enumerate().take(len) {
        slot[k.min(MAX_BURST)] = i as u8;
        k += usize::from(*v == Verdict::Crypto);
    }
    slot
}

enum UdpKind {
    Esp,
    /// RFC 3948 section 2.3: a single 0xff byte.
    Keepalive,
    /// RFC 3948 section 2.2: four zero bytes in front of an IKE message.
    NonEspMarker,
}

fn classify_udp(payload: &[u8]) -> UdpKind {
    match payload {
        [0xff] => UdpKind::Keepalive,
        [0, 0, 0, 0, ..] => UdpKind::NonEspMarker,
        _ => UdpKind::Esp,
    }
}

// A verdict fits a register (see `ResumeTag`).
const _: () = assert!(std::mem::size_of::<Verdict>() <= 8);

#[cfg(test)]
mod tests;
