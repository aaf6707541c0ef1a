//! The receiving half of the pipeline: Ethernet and IPv4 input (VPP's ip4-input), local
//! delivery of UDP and ESP to the gateway's own addresses, ESP input up to its parked open,
//! and what follows the open (the decapsulation's end, then routing the inner packet).

use super::batch::{Job, OpenJob};
use super::handoff::Resume;
use super::policy::{Action, Key};
use super::{Forwarder, Punt, Target, Verdict, NO_OWNER};
use crate::counters::Stat;
use crate::esp::decap::Inner;
use crate::esp::{self, DecapError};
use crate::packet::PacketBuf;
use crate::wire::ethernet::{self, Mac};
use crate::wire::udp::{self, Carries};
use crate::wire::{esp as esp_wire, ipv4, ipv6};
use std::net::Ipv4Addr;

/// What policies look a packet up by (`ip`: from its IPv4 header on): its addresses,
/// protocol and, for TCP and UDP but a non-first fragment, its ports.
#[inline(always)]
fn policy_key(ip: &[u8], h: &ipv4::Summary) -> Key {
    let src = ip
        .get(12..16)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_be_bytes);
    let offset = ip
        .get(6..8)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]) & 0x1fff);
    let ihl = h.header_len();
    let ports = if matches!(h.protocol, ipv4::PROTO_TCP | ipv4::PROTO_UDP) && offset == 0 {
        ip.get(ihl..ihl + 4).map(|p| {
            (
                u16::from_be_bytes([p[0], p[1]]),
                u16::from_be_bytes([p[2], p[3]]),
            )
        })
    } else {
        None
    };
    Key {
        src,
        dst: u32::from(h.dst),
        protocol: h.protocol,
        ports,
    }
}

/// Where an IPv4 packet entering `ip_input` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    /// Received in a frame: the headroom still holds its Ethernet header.
    Wire,
    /// Just decapsulated: its header and checksum are already verified.
    Decrypted,
    /// Originated by the gateway (the main lcore): IKE, ICMP errors and replies. Policies do
    /// not apply to the gateway's own traffic.
    Local,
    /// Another host's packet the main lcore hands back (the fragments it cut from one too big
    /// for its tunnel): routed, policies included, as if received; no Ethernet header.
    Transit,
}

impl Forwarder {
    /// Runs one received frame through the pipeline, in place.
    #[inline]
    pub fn receive<B: PacketBuf>(&mut self, port: u16, buf: &mut B) -> Verdict {
        let Some(iface) = self.tables.interface(port) else {
            return self.drop(Stat::NotForUs);
        };
        let ours = iface.mac;
        let Some(h) = buf.data().first_chunk::<{ ethernet::HEADER_LEN }>() else {
            return self.drop(Stat::Malformed);
        };
        use ethernet::field;
        // IPv4 unicast to us, as a router takes it: the frame's destination is our MAC.
        if h[field::DESTINATION] == ours.0
            && h[field::ETHERTYPE] == ethernet::ETHERTYPE_IPV4.to_be_bytes()
        {
            buf.adj(ethernet::HEADER_LEN);
            return self.ip_input(buf, Origin::Wire);
        }
        let (dst, ethertype) = match ethernet::Frame::new_checked(&h[..]) {
            Ok(f) => (f.dst(), f.ethertype()),
            Err(_) => return self.drop(Stat::Malformed),
        };
        // IPv6 is told apart here, once, off IPv4's path.
        if ethertype == ethernet::ETHERTYPE_IPV6 {
            return self.receive_ipv6(buf, ours, dst);
        }
        self.receive_other(ours, dst, ethertype)
    }

    /// Frames other than IPv4 to our MAC: ARP may be broadcast; anything routed must be
    /// unicast to us, as a router does.
    #[cold]
    fn receive_other(&self, ours: Mac, dst: Mac, ethertype: u16) -> Verdict {
        match ethertype {
            ethernet::ETHERTYPE_ARP if dst == ours || dst.is_broadcast() => self.punt(Punt::Arp),
            ethernet::ETHERTYPE_ARP | ethernet::ETHERTYPE_IPV4 => self.drop(Stat::NotForUs),
            _ => self.drop(Stat::UnsupportedEthertype),
        }
    }

    /// Continues a packet another worker handed to this one, which owns its SA.
    pub fn resume<B: PacketBuf>(&mut self, buf: &mut B, r: Resume) -> Verdict {
        match r {
            Resume::Transmit(port) => Verdict::Tx(port),
            Resume::TunnelOutput(tunnel) => self.tunnel_output(buf, tunnel),
            Resume::EspInput if buf.data().first().is_some_and(|v| v >> 4 == 6) => {
                let upper = ipv6::Packet::new_checked(buf.data()).and_then(|p| p.upper_layer());
                match upper {
                    Ok(u) if u.protocol == ipv6::NEXT_ESP && !u.fragment => {
                        self.esp_input6(buf, u.offset, false)
                    }
                    // ESP in UDP: checked to be so before it was handed over.
                    Ok(u) if u.protocol == ipv6::NEXT_UDP && !u.fragment => {
                        self.esp_input6(buf, u.offset + udp::HEADER_LEN, true)
                    }
                    _ => self.drop(Stat::Malformed),
                }
            }
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

    /// Routes an IPv4 or IPv6 packet that fills `buf` (no Ethernet header), as for packets
    /// the main lcore originates (ICMP replies); the version nibble tells which.
    pub fn output_ip<B: PacketBuf>(&mut self, buf: &mut B) -> Verdict {
        if buf.data().first().is_some_and(|v| v >> 4 == 6) {
            return self.ipv6_input(buf, Origin::Local);
        }
        self.ip_input(buf, Origin::Local)
    }

    /// Routes an IPv4 packet of another host that fills `buf` (no Ethernet header) as if it
    /// had been received: the fragments the main lcore cut from one too big for its tunnel.
    pub fn transit_ip<B: PacketBuf>(&mut self, buf: &mut B) -> Verdict {
        self.ip_input(buf, Origin::Transit)
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
    pub(super) fn ip_lookup<B: PacketBuf>(
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
        let route = self.tables.route(dst);
        // Policies (policy-based VPNs) decide before the routes for other hosts' packets that
        // are not for us, except what a tunnel just delivered.
        let transit = matches!(origin, Origin::Wire | Origin::Transit);
        if transit && !matches!(route, Some((Target::Local, _))) {
            if let Some(p) = &self.tables.policies {
                match p.v4.classify(&policy_key(buf.data(), &h)) {
                    Some((_, Action::Tunnel(tunnel))) => {
                        self.stats.inc(Stat::PolicyTunneled);
                        let at = route.map_or(0, |r| r.1);
                        return self.forward(buf, Target::Tunnel { tunnel }, h.ttl, at);
                    }
                    Some((_, Action::Deny)) => return self.drop(Stat::PolicyDenied),
                    Some((_, Action::Permit)) => self.stats.inc(Stat::PolicyPermitted),
                    None => self.stats.inc(Stat::PolicyUnmatched),
                }
            }
        }
        let Some((target, at)) = route else {
            return self.drop(Stat::NoRoute);
        };
        if target != Target::Local {
            return self.forward(buf, target, h.ttl, at);
        }
        if h.fragment {
            // ESP (raw or in UDP) or IKE that was fragmented on the way: put back together on
            // the main lcore, then handled as if it had come whole.
            if matches!(h.protocol, ipv4::PROTO_ESP | ipv4::PROTO_UDP) {
                return self.punt_local(buf, Punt::Reassemble, from_wire);
            }
            return self.drop(Stat::Fragments);
        }
        let ihl = h.header_len();
        match h.protocol {
            ipv4::PROTO_ESP => self.esp_input(buf, dst, ihl, false),
            ipv4::PROTO_UDP => self.udp_input(buf, dst, ihl, from_wire),
            _ => self.punt_local(buf, Punt::Local, from_wire),
        }
    }

    fn udp_input<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        dst: Ipv4Addr,
        ihl: usize,
        from_wire: bool,
    ) -> Verdict {
        let Some(bytes) = buf.data().get(ihl..) else {
            return self.drop(Stat::Malformed);
        };
        let (udp_len, carries) = match udp::Datagram::new_checked(bytes) {
            Ok(d) => {
                let natt = self.tables.natt_ports.contains(&d.dst_port());
                (d.len(), udp::classify(d.dst_port(), d.payload(), natt))
            }
            Err(_) => return self.drop(Stat::Malformed),
        };
        match carries {
            Carries::Esp => {
                buf.truncate(ihl + udp_len);
                self.esp_input(buf, dst, ihl + udp::HEADER_LEN, true)
            }
            Carries::NattKeepalive => self.drop(Stat::NattKeepalives),
            Carries::Ike => {
                self.stats.inc(Stat::IkePackets);
                self.punt_local(buf, Punt::Ike, from_wire)
            }
            Carries::Other => self.punt_local(buf, Punt::Local, from_wire),
        }
    }

    /// Gives a packet for the gateway itself to the main lcore, as an Ethernet frame.
    fn punt_local<B: PacketBuf>(&mut self, buf: &mut B, why: Punt, from_wire: bool) -> Verdict {
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
        self.punt(why)
    }

    #[inline(always)]
    pub(super) fn esp_input<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        dst: Ipv4Addr,
        esp_off: usize,
        udp: bool,
    ) -> Verdict {
        let many = self.tables.sas > super::LOOKAHEAD_MIN_SAS;
        let spi = match buf.data().get(esp_off..).map(esp_wire::Packet::new_checked) {
            Some(Ok(p)) => p.spi(),
            _ => return self.drop(Stat::BadHeaders),
        };
        // One lookup per packet: the owner, and where it keeps the SA.
        let index = match self.tables.spis.get(spi) {
            None => return self.drop(Stat::InvalidSpi),
            Some(e) if e.owner == NO_OWNER => return self.drop(Stat::InvalidSpi),
            Some(e) if e.owner != self.tables.me => {
                return Verdict::Handoff {
                    worker: e.owner,
                    resume: Resume::EspInput.into(),
                };
            }
            Some(e) => e.index,
        };
        let Some(sa) = self.tables.inbound(index) else {
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
            Err(e) => return self.decap_failed(index, e),
        };
        if many {
            // Opened and counted with the batch (`decap::finish`): with this many SAs, ask
            // for those lines now.
            crate::prefetch::line(&*sa.counters);
            sa.crypto.cipher.prefetch_key();
        }
        // esp_off is within a frame, far below 2^16.
        let job = Job::Open(OpenJob {
            sa: index,
            esp_off: esp_off as u16,
        });
        self.park_or_run(buf, prep, job)
    }

    /// Counts a decapsulation failure (per SA where the SA is at fault) and drops.
    #[cold]
    fn decap_failed(&mut self, index: super::InboundIndex, e: DecapError) -> Verdict {
        let c = self.tables.inbound(index).map(|sa| &sa.counters);
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
            DecapError::HardLimit => {
                c.inspect(|c| c.hard_limit_drops.inc());
                Stat::SaHardLimit
            }
        };
        self.drop(stat)
    }

    /// An opened packet (`ok`: its ICV verified): decapsulated, then routed.
    #[inline(never)]
    pub(super) fn opened<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        job: OpenJob,
        seq: u64,
        ok: bool,
    ) -> Verdict {
        if !ok {
            return self.decap_failed(job.sa, DecapError::Auth);
        }
        let Some(sa) = self.tables.inbound_mut(job.sa) else {
            return self.drop(Stat::InvalidSpi);
        };
        let mss = sa.tcp_mss;
        let inner = match esp::decap::finish(sa, buf, usize::from(job.esp_off), seq) {
            Ok(h) => h,
            Err(e) => return self.decap_failed(job.sa, e),
        };
        // What the SA's lifetimes raised, checked before the routing below so that the SA
        // need not be kept through it.
        if sa.events.any_pending() {
            self.report_inbound(job.sa);
        }
        self.stats.inc(Stat::DecryptedPackets);
        self.stats.add(Stat::DecryptedBytes, buf.len() as u64);
        if mss != 0 {
            super::output::clamp_mss(buf, mss);
        }
        match inner {
            // Checked by the decapsulation, its checksum authenticated by the ICV.
            Inner::Ipv4(h) => self.ip_lookup(buf, h, Origin::Decrypted),
            Inner::Ipv6 => self.ipv6_input(buf, Origin::Decrypted),
        }
    }
}
