//! The sending half of the pipeline: a routed packet goes to a next hop with the Ethernet
//! rewrite the route cache keeps, or into a tunnel: its outer next hop (the adjacency) resolved,
//! then ESP prepared in place and its seal parked.

use super::batch::{Job, SealJob};
use super::handoff::Resume;
use super::tables::Adjacency;
use super::{Event, Forwarder, Interface, Punt, Target, Target6, TunnelId, Verdict, NO_OWNER};
use crate::counters::Stat;
use crate::esp::{self, EncapError};
use crate::packet::PacketBuf;
use crate::wire::ethernet::{self, Mac};
use crate::wire::{ipv4, ipv6};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A tunnel without an SA asks for one (`Event::Acquire`) at most this often.
const ACQUIRE_INTERVAL_MS: u64 = 1000;

impl Forwarder {
    /// Forwards a routed packet (`at`: its destination's entry in the route cache, just
    /// looked up): into a tunnel, or to a next hop with the rewrite the entry keeps.
    #[inline(always)]
    pub(super) fn forward<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        target: Target,
        ttl: u8,
        at: usize,
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
        let (dst, src) = match self.tables.cached(at).and_then(|e| e.rewrite) {
            Some(r) => r,
            None => match self.resolve_rewrite(target, at) {
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
    fn resolve_rewrite(&mut self, target: Target, at: usize) -> Result<(Mac, Mac), Stat> {
        let addr = self.tables.cached(at).ok_or(Stat::NoRoute)?.addr;
        let (port, next_hop) = match target {
            Target::Connected { port } => (port, Ipv4Addr::from(addr)),
            Target::Gateway { port, via } => (port, via),
            Target::Tunnel { .. } | Target::Local => return Err(Stat::NoRoute),
        };
        let (mac, iface) = self.next_hop(port, next_hop)?;
        if let Some(e) = self.tables.cached(at) {
            e.rewrite = Some((mac, iface.mac));
        }
        Ok((mac, iface.mac))
    }

    /// Into a tunnel: the owner's job (others hand the packet to it), its outer next hop, then
    /// ESP prepared in place with the Ethernet header in front, and the seal parked.
    #[inline(always)]
    pub(super) fn tunnel_output<B: PacketBuf>(&mut self, buf: &mut B, tunnel: TunnelId) -> Verdict {
        let (me, generation, many) = (
            self.tables.me,
            self.tables.generation,
            self.tables.sas > super::LOOKAHEAD_MIN_SAS,
        );
        let Some(t) = self.tables.tunnels.get_mut(tunnel as usize) else {
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
        let (adj, mss) = (t.adj, t.tcp_mss);
        let Some(sa) = t.sa.as_deref_mut() else {
            return self.no_sa(tunnel);
        };
        if mss != 0 {
            clamp_mss(buf, mss);
        }
        let (inner_len, ethertype, udp6) =
            (buf.len() as u16, sa.outer.ethertype(), sa.outer.udp6());
        // The frame in one step: ESP, then the Ethernet header in front of it.
        let prep = match esp::encap::prepare(sa, buf, ethernet::HEADER_LEN, adj.mtu.into()) {
            Ok(p) => p,
            Err(EncapError::ExceedsMtu) => {
                let mtu = esp::encap::tunnel_mtu(sa, adj.mtu.into());
                return self.too_big(buf, mtu);
            }
            Err(e) => return self.encap_failed(tunnel, e),
        };
        if many {
            // Sealed and counted with the batch (`count_sealed`): with this many SAs, ask for
            // those lines now.
            crate::prefetch::line(&*sa.counters);
            sa.crypto.cipher.prefetch_key();
        }
        // `prepare` left the link header's room in front.
        let Some(h) = buf.data_mut().first_chunk_mut() else {
            return self.drop(Stat::NoBufferRoom);
        };
        ethernet::Repr {
            dst: adj.mac,
            src: adj.src,
            ethertype,
        }
        .emit(h);
        let job = Job::Seal(SealJob {
            tunnel,
            port: adj.port,
            inner_len,
            udp6,
        });
        self.park_or_run(buf, prep, job)
    }

    /// A packet too big for its tunnel (`mtu`, what its inner packet may be), to the main
    /// lcore: with DF set, it is dropped (counted) and its sender told the MTU (path MTU
    /// discovery, RFC 1191); without, it is cut into fragments that fit, which come back here
    /// to be encrypted one by one. IPv6 is never cut: dropped (counted), its sender is sent a
    /// Packet Too Big (RFC 8201) with the tunnel's MTU, or IPv6's minimum if that is less.
    #[cold]
    #[inline(never)]
    fn too_big<B: PacketBuf>(&mut self, buf: &mut B, mtu: usize) -> Verdict {
        let v6 = buf.data().first().is_some_and(|v| v >> 4 == 6);
        let df = buf
            .data()
            .get(ipv4::field::FLG_OFF.start)
            .is_some_and(|f| u16::from(*f) << 8 & ipv4::FLAG_DF != 0);
        let mtu = u16::try_from(mtu).unwrap_or(u16::MAX);
        let why = if v6 {
            self.stats.inc(Stat::ExceedsTunnelMtu);
            Punt::TooBig6 {
                mtu: mtu.max(ipv6::MIN_MTU as u16),
            }
        } else if df {
            self.stats.inc(Stat::ExceedsTunnelMtu);
            Punt::TooBig { mtu }
        } else {
            Punt::Fragment { mtu }
        };
        let ethertype = if v6 {
            ethernet::ETHERTYPE_IPV6
        } else {
            ethernet::ETHERTYPE_IPV4
        };
        // The main lcore takes frames: a blank link header in front of the inner packet.
        let Some(h) = buf.prepend(ethernet::HEADER_LEN) else {
            return self.drop(Stat::NoBufferRoom);
        };
        if let Some(h) = h.first_chunk_mut() {
            ethernet::Repr {
                dst: Mac::default(),
                src: Mac::default(),
                ethertype,
            }
            .emit(h);
        }
        self.punt(why)
    }

    /// `tunnel_output` once the tunnel's outer next hop is resolved again (after a change of
    /// routes, neighbors or interfaces, or a new SA).
    #[cold]
    #[inline(never)]
    fn resolve_and_output<B: PacketBuf>(&mut self, buf: &mut B, tunnel: TunnelId) -> Verdict {
        match self.resolve_tunnel(tunnel) {
            Ok(_) => self.tunnel_output(buf, tunnel),
            Err(Stat::NoSa) => self.no_sa(tunnel),
            Err(s) => self.drop(s),
        }
    }

    /// Traffic for a tunnel whose owner holds no outbound SA: dropped, and the main lcore told
    /// (once a second per tunnel), so that IKE can start on demand.
    #[cold]
    fn no_sa(&mut self, tunnel: TunnelId) -> Verdict {
        let i = super::fibonacci(u64::from(tunnel), 6);
        let (t, at) = self.acquired[i];
        if t != tunnel || self.now_ms.saturating_sub(at) >= ACQUIRE_INTERVAL_MS {
            self.acquired[i] = (tunnel, self.now_ms);
            self.report(Event::Acquire { tunnel });
        }
        self.drop(Stat::NoSa)
    }

    #[cold]
    fn encap_failed(&mut self, tunnel: TunnelId, e: EncapError) -> Verdict {
        if let Some(sa) = self.tables.outbound_mut(tunnel) {
            match e {
                EncapError::SeqExhausted => sa.counters.seq_exhausted.inc(),
                EncapError::HardLimit => sa.counters.hard_limit_drops.inc(),
                _ => {}
            }
            if sa.events.any_pending() {
                self.report_outbound(tunnel);
            }
        }
        self.drop(match e {
            EncapError::SeqExhausted => Stat::SeqExhausted,
            EncapError::HardLimit => Stat::SaHardLimit,
            EncapError::SeqLease => Stat::SeqLeaseWaits,
            EncapError::ExceedsMtu => Stat::ExceedsTunnelMtu,
            EncapError::NoRoom => Stat::NoBufferRoom,
            EncapError::NotIp => Stat::Malformed,
            EncapError::Crypto => Stat::CryptoErrors,
        })
    }

    /// Where a tunnel's ESP leaves: the outer route to its peer, the next hop's MAC and the
    /// egress MTU. Remembered until the next change of routes, neighbors or interfaces.
    fn resolve_tunnel(&mut self, tunnel: TunnelId) -> Result<Adjacency, Stat> {
        let remote = self
            .tables
            .outbound(tunnel)
            .map(|s| s.remote())
            .ok_or(Stat::NoSa)?;
        let (port, mac, iface) = match remote {
            IpAddr::V4(remote) => {
                let (port, next_hop) = match self.tables.lookup(remote) {
                    Some(Target::Connected { port }) => (port, remote),
                    Some(Target::Gateway { port, via }) => (port, via),
                    _ => return Err(Stat::NoRoute),
                };
                let (mac, iface) = self.next_hop(port, next_hop)?;
                (port, mac, iface)
            }
            // An IPv6 tunnel's peer: by the IPv6 routes and neighbor discovery.
            IpAddr::V6(remote) => {
                let (port, next_hop) = match self.tables.route6(&remote) {
                    Some(Target6::Connected { port }) => (port, remote),
                    Some(Target6::Gateway { port, via }) => (port, via),
                    _ => return Err(Stat::NoRoute),
                };
                let (mac, iface) = self.next_hop6(port, next_hop)?;
                (port, mac, iface)
            }
        };
        let adj = Adjacency {
            generation: self.tables.generation,
            port,
            mtu: iface.mtu,
            mac,
            src: iface.mac,
        };
        if let Some(t) = self.tables.tunnels.get_mut(tunnel as usize) {
            t.adj = adj;
        }
        Ok(adj)
    }

    /// A next hop on a port: its MAC (or a resolution request and `NoNeighbor` while it is not
    /// known) and the interface frames to it leave by (`NoRoute` if the port has none).
    fn next_hop(&mut self, port: u16, next_hop: Ipv4Addr) -> Result<(Mac, Interface), Stat> {
        let (mac, ask) = self.tables.neighbor(next_hop, self.now_ms);
        if ask {
            self.report(Event::Resolve {
                port,
                addr: next_hop.into(),
            });
        }
        let mac = mac.ok_or(Stat::NoNeighbor)?;
        let iface = *self.tables.interface(port).ok_or(Stat::NoRoute)?;
        Ok((mac, iface))
    }
}

impl Forwarder {
    /// `next_hop` for an IPv6 next hop: its MAC from the IPv6 neighbor table, or asked for.
    pub(super) fn next_hop6(
        &mut self,
        port: u16,
        next_hop: Ipv6Addr,
    ) -> Result<(Mac, Interface), Stat> {
        let (mac, ask) = self.tables.neighbor6(&next_hop, self.now_ms);
        if ask {
            self.report(Event::Resolve {
                port,
                addr: next_hop.into(),
            });
        }
        let mac = mac.ok_or(Stat::NoNeighbor)?;
        let iface = *self.tables.interface(port).ok_or(Stat::NoRoute)?;
        Ok((mac, iface))
    }
}

/// Clamps a TCP SYN's MSS in the IPv4 or IPv6 packet that fills `buf` (outbound before
/// encryption, inbound after decryption): rare, so out of the way of the common path.
#[cold]
#[inline(never)]
pub(super) fn clamp_mss<B: PacketBuf>(buf: &mut B, mss: u16) {
    use crate::wire::tcp;
    let p = buf.data_mut();
    let _ = match p.first() {
        Some(v) if v >> 4 == 6 => tcp::clamp_mss_ipv6(p, mss),
        _ => tcp::clamp_mss_ipv4(p, mss),
    };
}
