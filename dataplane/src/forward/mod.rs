//! Forwarding like a router: interfaces, neighbors, routes, and the per-packet pipeline that
//! ties them to ESP. A `Forwarder` is one worker's private state; it changes only through
//! `Command`s applied between bursts.

pub mod arp;
pub mod lpm;
pub mod neighbor;

use crate::counters::{Stat, StatBlock};
use crate::esp::{self, DecapError, EncapError};
use crate::packet::PacketBuf;
use crate::sa::{InboundSa, OutboundSa};
use crate::wire::ethernet::{self, Mac};
use crate::wire::{esp as esp_wire, ipv4, udp};
use ipnet::Ipv4Net;
use lpm::Lpm;
use neighbor::{IdMap, NeighborTable};
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
        tunnel: u16,
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
        tunnel: u16,
    },
    /// A UDP port on which ESP-in-UDP (RFC 3948) is accepted.
    AddNattPort(u16),
    /// The worker (by index) that owns a tunnel's outbound SA.
    SetTunnelOwner {
        tunnel: u16,
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
    /// The buffer holds an inner IPv4 packet already routed (TTL decremented) into this tunnel.
    TunnelOutput(u16),
    /// The buffer holds a frame to send on this port, from a worker with no TX queue there.
    Transmit(u16),
}

impl Resume {
    /// As a 32-bit tag carried in the mbuf across the handoff ring.
    pub fn tag(self) -> u32 {
        match self {
            Resume::EspInput => 1 << 16,
            Resume::TunnelOutput(t) => (2 << 16) | u32::from(t),
            Resume::Transmit(p) => (3 << 16) | u32::from(p),
        }
    }

    pub fn from_tag(tag: u32) -> Option<Resume> {
        let v = tag as u16;
        match tag >> 16 {
            1 => Some(Resume::EspInput),
            2 => Some(Resume::TunnelOutput(v)),
            3 => Some(Resume::Transmit(v)),
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
    Handoff { worker: u16, resume: Resume },
}

/// No worker owns this tunnel (yet).
const NO_OWNER: u16 = u16::MAX;

/// Most resolution requests one burst can queue for the main lcore.
pub const MAX_RESOLVE_PER_BURST: usize = 32;

pub struct Forwarder {
    /// This worker's index: SAs owned by another index are handed off.
    me: u16,
    tunnel_owner: Vec<u16>,
    spi_owner: IdMap<u32, u16>,
    /// By port id; one interface per port.
    ifaces: Vec<Option<Interface>>,
    routes: Lpm,
    /// Next hops by LPM index, and the index of each, so that a route add is O(1).
    targets: Vec<Target>,
    target_index: std::collections::HashMap<Target, u32>,
    neighbors: NeighborTable,
    /// Current outbound SA by tunnel id.
    tunnels: Vec<Option<Box<OutboundSa>>>,
    inbound: IdMap<u32, Box<InboundSa>>,
    natt_ports: Vec<u16>,
    pub stats: Arc<StatBlock>,
    /// Milliseconds on the worker's clock, set once per burst.
    pub now_ms: u64,
    /// Next hops to resolve, as (port, address), drained by the worker after each burst.
    pub resolve: Vec<(u16, Ipv4Addr)>,
}

impl Forwarder {
    /// The state of worker number `me` (its index in `dataplane.workers`).
    pub fn new(me: u16, stats: Arc<StatBlock>) -> Forwarder {
        Forwarder {
            me,
            tunnel_owner: Vec::new(),
            spi_owner: IdMap::default(),
            ifaces: Vec::new(),
            routes: Lpm::new(),
            targets: Vec::new(),
            target_index: Default::default(),
            neighbors: NeighborTable::default(),
            tunnels: Vec::new(),
            inbound: IdMap::default(),
            natt_ports: Vec::new(),
            stats,
            now_ms: 0,
            resolve: Vec::with_capacity(MAX_RESOLVE_PER_BURST),
        }
    }

    pub fn apply(&mut self, cmd: Command) {
        match cmd {
            Command::SetInterface(i) => {
                let p = usize::from(i.port);
                if self.ifaces.len() <= p {
                    self.ifaces.resize(p + 1, None);
                }
                self.ifaces[p] = Some(i);
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
                self.inbound.insert(sa.spi, sa);
            }
            Command::DelInboundSa { spi } => {
                self.inbound.remove(&spi);
            }
            Command::SetOutboundSa(sa) => {
                let t = usize::from(sa.tunnel);
                if self.tunnels.len() <= t {
                    self.tunnels.resize_with(t + 1, || None);
                }
                self.tunnels[t] = Some(sa);
            }
            Command::DelOutboundSa { tunnel } => {
                if let Some(s) = self.tunnels.get_mut(usize::from(tunnel)) {
                    *s = None;
                }
            }
            Command::AddNattPort(p) => {
                if !self.natt_ports.contains(&p) {
                    self.natt_ports.push(p);
                }
            }
            Command::SetTunnelOwner { tunnel, worker } => {
                let t = usize::from(tunnel);
                if self.tunnel_owner.len() <= t {
                    self.tunnel_owner.resize(t + 1, NO_OWNER);
                }
                self.tunnel_owner[t] = worker;
            }
            Command::SetSpiOwner { spi, worker } => {
                self.spi_owner.insert(spi, worker);
            }
            Command::DelSpiOwner { spi } => {
                self.spi_owner.remove(&spi);
            }
        }
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
    pub fn receive<B: PacketBuf>(&mut self, port: u16, buf: &mut B) -> Verdict {
        let Some(Some(iface)) = self.ifaces.get(usize::from(port)).copied() else {
            return self.drop(Stat::NotForUs);
        };
        let (dst, ethertype) = match ethernet::Frame::new_checked(buf.data()) {
            Ok(f) => (f.dst(), f.ethertype()),
            Err(_) => return self.drop(Stat::Malformed),
        };
        // ARP may be broadcast; anything routed must be unicast to us, as a router does.
        match ethertype {
            ethernet::ETHERTYPE_ARP if dst == iface.mac || dst.is_broadcast() => {
                return self.punt()
            }
            ethernet::ETHERTYPE_IPV4 if dst == iface.mac => {}
            ethernet::ETHERTYPE_ARP | ethernet::ETHERTYPE_IPV4 => return self.drop(Stat::NotForUs),
            _ => return self.drop(Stat::UnsupportedEthertype),
        }
        buf.adj(ethernet::HEADER_LEN);
        self.ip_input(buf, true)
    }

    /// Routes an IPv4 packet that fills `buf` (no Ethernet header), as for packets the main
    /// lcore originates (ICMP replies).
    pub fn output_ip<B: PacketBuf>(&mut self, buf: &mut B) -> Verdict {
        self.ip_input(buf, false)
    }

    fn punt(&self) -> Verdict {
        self.stats.inc(Stat::Punted);
        Verdict::Punt
    }

    /// `from_wire`: the buffer's headroom still holds the frame's own Ethernet header.
    fn ip_input<B: PacketBuf>(&mut self, buf: &mut B, from_wire: bool) -> Verdict {
        let (dst, ttl, total, proto, ihl, frag) = match ipv4::Packet::new_checked(buf.data()) {
            Ok(p) if !p.verify_checksum() => return self.drop(Stat::BadIpChecksum),
            Ok(p) => (
                p.dst(),
                p.ttl(),
                p.total_len(),
                p.protocol(),
                p.header_len(),
                p.is_fragment(),
            ),
            Err(_) => return self.drop(Stat::Malformed),
        };
        buf.truncate(total); // Ethernet padding
        if dst.is_broadcast() || dst.is_multicast() {
            return self.drop(Stat::NotForUs);
        }
        let Some(target) = self
            .routes
            .lookup(dst)
            .and_then(|i| self.targets.get(i as usize).copied())
        else {
            return self.drop(Stat::NoRoute);
        };
        if target != Target::Local {
            return self.forward(buf, target, ttl);
        }
        if frag {
            return self.drop(Stat::Fragments);
        }
        match proto {
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

    fn esp_input<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        dst: Ipv4Addr,
        esp_off: usize,
        udp: bool,
    ) -> Verdict {
        let spi = match esp_wire::Packet::new_checked(&buf.data()[esp_off..]) {
            Ok(p) => p.spi(),
            Err(_) => return self.drop(Stat::BadHeaders),
        };
        match self.spi_owner.get(&spi) {
            None => return self.drop(Stat::InvalidSpi),
            Some(&worker) if worker != self.me => {
                return Verdict::Handoff {
                    worker,
                    resume: Resume::EspInput,
                };
            }
            Some(_) => {}
        }
        let Some(sa) = self.inbound.get_mut(&spi) else {
            return self.drop(Stat::InvalidSpi);
        };
        if sa.local != dst {
            return self.drop(Stat::InvalidSpi);
        }
        if sa.udp_encap != udp {
            return self.drop(Stat::BadHeaders);
        }
        let result = esp::decap(sa, buf, esp_off);
        let c = &sa.counters;
        let stat = match result {
            Ok(()) => None,
            Err(DecapError::BadHeader) => Some(Stat::BadHeaders),
            Err(DecapError::Replay(_)) => {
                c.replay_errors.inc();
                Some(Stat::ReplayErrors)
            }
            Err(DecapError::Auth) => {
                c.auth_failures.inc();
                Some(Stat::EspAuthFailures)
            }
            Err(DecapError::BadTrailer) => {
                c.bad_trailers.inc();
                Some(Stat::BadTrailers)
            }
            Err(DecapError::Dummy) => Some(Stat::DummyPackets),
            Err(DecapError::BadInner) => Some(Stat::BadInnerPackets),
            Err(DecapError::TsCheckFail) => {
                c.ts_check_fail.inc();
                Some(Stat::TsCheckFail)
            }
        };
        if let Some(s) = stat {
            return self.drop(s);
        }
        self.stats.inc(Stat::DecryptedPackets);
        self.stats.add(Stat::DecryptedBytes, buf.len() as u64);
        self.ip_input(buf, false)
    }

    fn forward<B: PacketBuf>(&mut self, buf: &mut B, target: Target, ttl: u8) -> Verdict {
        if ttl <= 1 {
            return self.drop(Stat::TtlExceeded);
        }
        match ipv4::Packet::new_checked(buf.data_mut()) {
            Ok(mut p) => p.decrement_ttl(),
            Err(_) => return self.drop(Stat::Malformed),
        }
        let (port, next_hop) = match target {
            Target::Tunnel { tunnel } => return self.tunnel_output(buf, tunnel),
            Target::Connected { port } => (port, dst_of(buf.data())),
            Target::Gateway { port, via } => (port, via),
            Target::Local => return self.drop(Stat::NoRoute),
        };
        let Some(mac) = self.neighbor(port, next_hop) else {
            return self.drop(Stat::NoNeighbor);
        };
        self.stats.inc(Stat::ForwardedPackets);
        self.ether_output(buf, port, mac)
    }

    fn tunnel_output<B: PacketBuf>(&mut self, buf: &mut B, tunnel: u16) -> Verdict {
        match self
            .tunnel_owner
            .get(usize::from(tunnel))
            .copied()
            .unwrap_or(NO_OWNER)
        {
            NO_OWNER => return self.drop(Stat::NoSa),
            w if w != self.me => {
                return Verdict::Handoff {
                    worker: w,
                    resume: Resume::TunnelOutput(tunnel),
                }
            }
            _ => {}
        }
        let Some(remote) = self
            .tunnels
            .get(usize::from(tunnel))
            .and_then(|s| s.as_ref())
            .map(|s| s.encap.remote)
        else {
            return self.drop(Stat::NoSa);
        };
        // Resolve the outer next hop first: no crypto for a packet that cannot leave.
        let (port, next_hop) = match self
            .routes
            .lookup(remote)
            .and_then(|i| self.targets.get(i as usize))
        {
            Some(Target::Connected { port }) => (*port, remote),
            Some(Target::Gateway { port, via }) => (*port, *via),
            _ => return self.drop(Stat::NoRoute),
        };
        let Some(mac) = self.neighbor(port, next_hop) else {
            return self.drop(Stat::NoNeighbor);
        };
        let mtu = self
            .ifaces
            .get(usize::from(port))
            .copied()
            .flatten()
            .map_or(0, |i| usize::from(i.mtu));
        let Some(sa) = self
            .tunnels
            .get_mut(usize::from(tunnel))
            .and_then(|s| s.as_deref_mut())
        else {
            return self.drop(Stat::NoSa);
        };
        let inner_len = buf.len();
        if esp::encap::outer_len(sa, inner_len) > mtu {
            return self.drop(Stat::ExceedsTunnelMtu);
        }
        match esp::encap(sa, buf) {
            Ok(()) => {}
            Err(EncapError::SeqExhausted) => {
                sa.counters.seq_exhausted.inc();
                return self.drop(Stat::SeqExhausted);
            }
            Err(EncapError::NoRoom) => return self.drop(Stat::NoBufferRoom),
            Err(EncapError::NotIpv4 | EncapError::Crypto) => return self.drop(Stat::Malformed),
        }
        self.stats.inc(Stat::EncryptedPackets);
        self.stats.add(Stat::EncryptedBytes, inner_len as u64);
        self.ether_output(buf, port, mac)
    }

    fn neighbor(&mut self, port: u16, ip: Ipv4Addr) -> Option<Mac> {
        let (mac, ask) = self.neighbors.lookup(ip, self.now_ms);
        if ask && self.resolve.len() < MAX_RESOLVE_PER_BURST {
            self.resolve.push((port, ip));
        }
        mac
    }

    fn ether_output<B: PacketBuf>(&mut self, buf: &mut B, port: u16, dst: Mac) -> Verdict {
        let Some(Some(iface)) = self.ifaces.get(usize::from(port)).copied() else {
            return self.drop(Stat::NoRoute);
        };
        let Some(h) = buf
            .prepend(ethernet::HEADER_LEN)
            .and_then(|h| h.first_chunk_mut())
        else {
            return self.drop(Stat::NoBufferRoom);
        };
        ethernet::Repr {
            dst,
            src: iface.mac,
            ethertype: ethernet::ETHERTYPE_IPV4,
        }
        .emit(h);
        Verdict::Tx(port)
    }

    /// The interface on a port.
    pub fn interface(&self, port: u16) -> Option<Interface> {
        self.ifaces.get(usize::from(port)).copied().flatten()
    }

    /// Test and tooling hook: the outbound SA of a tunnel.
    pub fn outbound_sa_mut(&mut self, tunnel: u16) -> Option<&mut OutboundSa> {
        self.tunnels
            .get_mut(usize::from(tunnel))
            .and_then(|s| s.as_deref_mut())
    }

    /// Test and tooling hook: an inbound SA by SPI.
    pub fn inbound_sa_mut(&mut self, spi: u32) -> Option<&mut InboundSa> {
        self.inbound.get_mut(&spi).map(|b| &mut **b)
    }
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

/// The destination of the IPv4 header at the front of `b` (already validated).
fn dst_of(b: &[u8]) -> Ipv4Addr {
    match b.get(16..20) {
        Some(&[a, b, c, d]) => Ipv4Addr::new(a, b, c, d),
        _ => Ipv4Addr::UNSPECIFIED,
    }
}

#[cfg(test)]
mod tests;
