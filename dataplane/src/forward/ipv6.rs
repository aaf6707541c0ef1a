//! IPv6 through a worker, as a router takes it: input (the header checked, padding cut),
//! neighbor discovery and local delivery to the main lcore, and forwarding between interfaces
//! (hop limit decremented, next hop resolved by neighbor discovery). A frame's ethertype sends
//! it here once (`receive`), so none of this is on IPv4's per-packet path. A route into a
//! tunnel hands the packet to the tunnel's output (`output`), which wraps it in the tunnel's
//! ESP (IPv4 or IPv6 outside) as it does IPv4 (next header 41); decrypted IPv6 comes back
//! here (`Origin::Decrypted`), and so does ESP to our IPv6 addresses (`esp_input6`).

use super::input::Origin;
use super::policy::{Action, Key};
use super::{Forwarder, Punt, Target6, Verdict};
use crate::counters::Stat;
use crate::packet::PacketBuf;
use crate::wire::ethernet::{self, Mac};
use crate::wire::udp::{self, Carries};
use crate::wire::{icmpv6, ipv6};
use std::net::{Ipv4Addr, Ipv6Addr};

/// What IPv6 policies look a packet up by: its addresses, its upper-layer protocol past the
/// extension headers, and for TCP and UDP its ports (none for a fragment: every fragment of a
/// packet is opaque, RFC 4301, so all of them take the same way). `None`: headers that do not
/// parse, which no policy can be said to allow.
fn policy_key6(packet: &[u8], src: Ipv6Addr, dst: Ipv6Addr) -> Option<Key<u128>> {
    let u = ipv6::Packet::new_checked(packet).ok()?.upper_layer().ok()?;
    let ports = match u.protocol {
        ipv6::NEXT_TCP | ipv6::NEXT_UDP if !u.fragment => {
            let p = packet.get(u.offset..u.offset + 4)?;
            Some((
                u16::from_be_bytes([p[0], p[1]]),
                u16::from_be_bytes([p[2], p[3]]),
            ))
        }
        _ => None,
    };
    Some(Key {
        src: u128::from(src),
        dst: u128::from(dst),
        protocol: u.protocol,
        ports,
    })
}

/// Whether the UDP datagram `udp_off` bytes into the IPv6 `packet` has a valid checksum: a
/// pass over the datagram that only ESP in UDP over IPv6 pays (the ICV would catch a changed
/// payload, but RFC 8200 has receivers drop a zero or wrong checksum, as Linux does).
fn udp_checksum_ok(packet: &[u8], udp_off: usize) -> bool {
    let (Ok(p), Some(datagram)) = (ipv6::Packet::new_checked(packet), packet.get(udp_off..)) else {
        return false;
    };
    udp::verify6(&p.src(), &p.dst(), datagram)
}

impl Forwarder {
    /// A frame with the IPv6 ethertype to `dst_mac`: unicast to us, or multicast (33:33:...),
    /// which only neighbor discovery for our addresses gets past.
    #[inline(never)]
    pub(super) fn receive_ipv6<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        ours: Mac,
        dst_mac: Mac,
    ) -> Verdict {
        if dst_mac != ours && dst_mac.0[..2] != [0x33, 0x33] {
            return self.drop(Stat::NotForUs);
        }
        buf.adj(ethernet::HEADER_LEN);
        self.ipv6_input(buf, Origin::Wire)
    }

    /// IPv6 input: the header checked and Ethernet padding cut, then delivered or routed.
    pub(super) fn ipv6_input<B: PacketBuf>(&mut self, buf: &mut B, origin: Origin) -> Verdict {
        let (src, dst, hop_limit, total) = match ipv6::Packet::new_checked(buf.data()) {
            Ok(p) => (p.src(), p.dst(), p.hop_limit(), p.total_len()),
            Err(_) => return self.drop(Stat::Malformed),
        };
        buf.truncate(total); // Ethernet padding
        if src.is_multicast() {
            return self.drop(Stat::Ipv6NotForwarded);
        }
        if dst.is_multicast() {
            return match origin {
                Origin::Wire if self.solicits_us(buf.data(), &dst) => {
                    self.punt_ipv6(buf, Punt::Nd, true)
                }
                _ => self.drop(Stat::NotForUs),
            };
        }
        let route = match self.tables.route6(&dst) {
            Some(Target6::Local) => {
                return match origin {
                    Origin::Wire => self.local_ipv6(buf, true),
                    Origin::Decrypted => self.local_decrypted6(buf),
                    // What the main lcore put back together (ESP, ESP in UDP, IKE).
                    Origin::Local => self.local_ipv6(buf, false),
                    Origin::Transit => self.drop(Stat::NoRoute),
                };
            }
            // A link-local address means something only on its own link.
            _ if ipv6::is_link_local(&src) || ipv6::is_link_local(&dst) => {
                return self.drop(Stat::Ipv6NotForwarded)
            }
            route => route,
        };
        // Policies decide before the routes for other hosts' packets, as for IPv4 (`ip_lookup`).
        if matches!(origin, Origin::Wire | Origin::Transit) {
            if let Some(p) = &self.tables.policies {
                let Some(key) = policy_key6(buf.data(), src, dst) else {
                    return self.drop(Stat::Malformed);
                };
                match p.v6.classify(&key) {
                    Some((_, Action::Tunnel(tunnel))) => {
                        self.stats.inc(Stat::PolicyTunneled);
                        let t = Target6::Tunnel { tunnel };
                        return self.forward_ipv6(buf, t, dst, hop_limit, origin);
                    }
                    Some((_, Action::Deny)) => return self.drop(Stat::PolicyDenied),
                    Some((_, Action::Permit)) => self.stats.inc(Stat::PolicyPermitted),
                    None => self.stats.inc(Stat::PolicyUnmatched),
                }
            }
        }
        match route {
            Some(target) => self.forward_ipv6(buf, target, dst, hop_limit, origin),
            None => self.drop(Stat::NoRoute),
        }
    }

    /// Whether a multicast packet is a Neighbor Solicitation to the solicited-node group of
    /// one of our addresses (RFC 4861 section 7.2.2); the main lcore checks the rest.
    fn solicits_us(&self, packet: &[u8], dst: &Ipv6Addr) -> bool {
        let Ok(p) = ipv6::Packet::new_checked(packet) else {
            return false;
        };
        let is_ns = p.upper_layer().is_ok_and(|u| {
            u.protocol == ipv6::NEXT_ICMPV6
                && !u.fragment
                && packet.get(u.offset) == Some(&icmpv6::TYPE_NEIGHBOR_SOLICIT)
        });
        is_ns
            && self
                .tables
                .own6
                .iter()
                .any(|a| ipv6::solicited_node(a) == *dst)
    }

    /// A packet for one of our addresses: neighbor discovery, or anything else (echo among
    /// it), to the main lcore.
    /// (`from_wire`: received; else what the main lcore reassembled, of which only ESP, ESP
    /// in UDP and IKE are taken: nothing else of the gateway's own goes around again.)
    fn local_ipv6<B: PacketBuf>(&mut self, buf: &mut B, from_wire: bool) -> Verdict {
        let upper = match ipv6::Packet::new_checked(buf.data()).and_then(|p| p.upper_layer()) {
            Ok(u) => u,
            Err(_) => return self.drop(Stat::Malformed),
        };
        let esp_or_udp = matches!(upper.protocol, ipv6::NEXT_ESP | ipv6::NEXT_UDP);
        if upper.fragment {
            // ESP (raw or in UDP) or IKE that its source cut: put back together on the main
            // lcore, then handled as if it had come whole.
            if esp_or_udp && from_wire {
                return self.punt_ipv6(buf, Punt::Reassemble, true);
            }
            return self.drop(Stat::Fragments);
        }
        if upper.protocol == ipv6::NEXT_ESP {
            return self.esp_input6(buf, upper.offset, false);
        }
        if upper.protocol == ipv6::NEXT_UDP {
            return self.udp_input6(buf, upper.offset, from_wire);
        }
        if !from_wire {
            return self.drop(Stat::NoRoute);
        }
        let nd = upper.protocol == ipv6::NEXT_ICMPV6
            && matches!(
                buf.data().get(upper.offset),
                Some(&(icmpv6::TYPE_NEIGHBOR_SOLICIT | icmpv6::TYPE_NEIGHBOR_ADVERT))
            );
        self.punt_ipv6(buf, if nd { Punt::Nd } else { Punt::Local }, true)
    }

    /// UDP to one of our IPv6 addresses, `udp_off` bytes in, by IPv4's rule
    /// (`udp::classify`): IKE to the main lcore for the control, ESP in UDP on a tunnel's
    /// NAT-T port to its SA.
    fn udp_input6<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        udp_off: usize,
        from_wire: bool,
    ) -> Verdict {
        let (udp_len, carries) = match buf.data().get(udp_off..).map(udp::Datagram::new_checked) {
            Some(Ok(d)) => {
                let natt = self.tables.natt_ports.contains(&d.dst_port());
                (d.len(), udp::classify(d.dst_port(), d.payload(), natt))
            }
            _ => return self.drop(Stat::Malformed),
        };
        match carries {
            Carries::Esp => {
                buf.truncate(udp_off + udp_len);
                if !udp_checksum_ok(buf.data(), udp_off) {
                    return self.drop(Stat::BadUdpChecksum);
                }
                self.esp_input6(buf, udp_off + udp::HEADER_LEN, true)
            }
            Carries::Ike => {
                self.stats.inc(Stat::IkePackets);
                self.punt_ipv6(buf, Punt::Ike, from_wire)
            }
            Carries::NattKeepalive => self.drop(Stat::NattKeepalives),
            Carries::Other => self.punt_ipv6(buf, Punt::Local, from_wire),
        }
    }

    /// ESP (in UDP with `udp`) to one of our IPv6 addresses, `esp_off` bytes in (past any
    /// hop-by-hop or destination options): an IPv6 tunnel's SAs are bound to the unspecified
    /// IPv4 address, which no IPv4 packet is sent to, so `esp_input`'s address check keeps the
    /// families apart.
    pub(super) fn esp_input6<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        esp_off: usize,
        udp: bool,
    ) -> Verdict {
        self.esp_input(buf, Ipv4Addr::UNSPECIFIED, esp_off, udp)
    }

    /// A packet a tunnel delivered to one of our addresses (an echo request from behind the
    /// peer): to the main lcore in a blank frame, as `Local` only, never neighbor discovery,
    /// which belongs to a link.
    #[cold]
    fn local_decrypted6<B: PacketBuf>(&mut self, buf: &mut B) -> Verdict {
        self.punt_ipv6(buf, Punt::Local, false)
    }

    /// Gives an IPv6 packet to the main lcore in a frame: a received one's own header, still
    /// in the headroom, in front again; a blank one (`from_wire` false) for what has none.
    fn punt_ipv6<B: PacketBuf>(&mut self, buf: &mut B, why: Punt, from_wire: bool) -> Verdict {
        let Some(h) = buf.prepend(ethernet::HEADER_LEN) else {
            return self.drop(Stat::NoBufferRoom);
        };
        if !from_wire {
            if let Some(h) = h.first_chunk_mut() {
                ethernet::Repr {
                    dst: Mac::default(),
                    src: Mac::default(),
                    ethertype: ethernet::ETHERTYPE_IPV6,
                }
                .emit(h);
            }
        }
        self.punt(why)
    }

    /// Forwards a routed packet to its next hop or into a tunnel: the hop limit lowered (not
    /// for what the gateway originates), the neighbor's MAC from the table or asked for.
    fn forward_ipv6<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        target: Target6,
        dst: Ipv6Addr,
        hop_limit: u8,
        origin: Origin,
    ) -> Verdict {
        if origin != Origin::Local {
            if hop_limit <= 1 {
                return self.drop(Stat::HopLimitExceeded);
            }
            match buf.data_mut().get_mut(ipv6::field::HOP_LIMIT) {
                Some(h) => *h = hop_limit - 1,
                None => return self.drop(Stat::Malformed),
            }
        }
        let (port, next_hop) = match target {
            Target6::Connected { port } => (port, dst),
            Target6::Gateway { port, via } => (port, via),
            Target6::Tunnel { tunnel } => return self.tunnel_output(buf, tunnel),
            Target6::Local => return self.drop(Stat::NoRoute),
        };
        let (mac, src) = match self.next_hop6(port, next_hop) {
            Ok((mac, iface)) => (mac, iface.mac),
            Err(s) => return self.drop(s),
        };
        let Some(h) = buf
            .prepend(ethernet::HEADER_LEN)
            .and_then(|h| h.first_chunk_mut())
        else {
            return self.drop(Stat::NoBufferRoom);
        };
        ethernet::Repr {
            dst: mac,
            src,
            ethertype: ethernet::ETHERTYPE_IPV6,
        }
        .emit(h);
        self.stats.inc(Stat::ForwardedPackets);
        Verdict::Tx(port)
    }
}
