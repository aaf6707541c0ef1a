//! The main lcore's IPv6: neighbor discovery for our addresses (`forward::nd`), echo
//! replies from them, and Packet Too Big for what does not fit a tunnel.

use super::MainLcore;
use crate::forward::nd;
use crate::wire::{ethernet, icmpv6, ipv6};
use crate::worker::INJECT_ROUTE;
use dpdk_sys::Mbuf;

impl MainLcore {
    /// A neighbor solicitation or advertisement (`nd`): answered on the port it came in by,
    /// what it teaches sent to every worker.
    pub(super) fn neighbor_discovery(&mut self, worker: usize, mut m: Mbuf) {
        let Some(iface) = self.control.interface_on(m.port()) else {
            return self.stats.local_dropped.inc();
        };
        let mut reply = [0u8; nd::FRAME_LEN];
        let out = nd::handle(m.data(), &iface, &mut reply);
        match out.seen {
            nd::Seen::Invalid => self.stats.nd_invalid.inc(),
            nd::Seen::Solicitation => self.stats.nd_solicitations_received.inc(),
            nd::Seen::Advertisement => self.stats.nd_advertisements_received.inc(),
        }
        if let Some((addr, mac)) = out.learned {
            self.stats.neighbors_learned.inc();
            self.control.learned(addr.into(), mac);
        }
        if !out.reply {
            return;
        }
        let len = m.len() as u16;
        if !m.trim(len) {
            return;
        }
        let Some(frame) = m.append(nd::FRAME_LEN as u16) else {
            return;
        };
        frame.copy_from_slice(&reply);
        self.stats.nd_advertisements_sent.inc();
        self.inject(worker, m);
    }

    /// Turns a punted IPv6 packet too big for its tunnel into an ICMPv6 Packet Too Big with
    /// the tunnel's `mtu` to its sender (RFC 4443 section 3.2), an IPv6 packet ready to be
    /// routed (`ControlState::source6_for` picks our address); false if none is sent (rate
    /// limit, or a packet that gets no error).
    pub(super) fn packet_too_big(&mut self, m: &mut Mbuf, mtu: u16) -> bool {
        if !self.icmp_budget_left() {
            return false;
        }
        let Some(packet) = m.data().get(ethernet::HEADER_LEN..) else {
            return false;
        };
        let Ok(p) = ipv6::Packet::new_checked(packet) else {
            return false;
        };
        let Some(from) = self.control.source6_for(&p.src()) else {
            return false;
        };
        let mut out = [0u8; ipv6::MIN_MTU];
        let kind = icmpv6::ErrorKind::PacketTooBig {
            mtu: u32::from(mtu),
        };
        let Some(n) = icmpv6::error(kind, packet, from, &mut out) else {
            return false;
        };
        let len = m.len() as u16;
        if !m.trim(len) {
            return false;
        }
        let Some(dst) = m.append(n as u16) else {
            return false;
        };
        dst.copy_from_slice(&out[..n]);
        self.icmp_budget.0 -= 1;
        true
    }

    /// Turns a punted ICMPv6 echo request to one of our addresses into its reply: to a
    /// link-local sender, a frame straight back on the port it came in by; otherwise an IPv6
    /// packet (Ethernet header removed) ready to be routed.
    pub(super) fn echo6_reply(&self, m: &mut Mbuf) -> bool {
        let Some(iface) = self.control.interface_on(m.port()) else {
            return false;
        };
        let data = m.data_mut();
        let Some((eth, ip_bytes)) = data.split_first_chunk_mut::<{ ethernet::HEADER_LEN }>() else {
            return false;
        };
        if eth[ethernet::field::ETHERTYPE] != ethernet::ETHERTYPE_IPV6.to_be_bytes() {
            return false;
        }
        let Ok(p) = ipv6::Packet::new_checked(&ip_bytes[..]) else {
            return false;
        };
        let (src, dst, total) = (p.src(), p.dst(), p.total_len());
        // A link-local address is ours only on the link it came by.
        let ours = iface.has_ipv6(&dst)
            || (!ipv6::is_link_local(&dst)
                && self.control.interfaces().any(|(_, i)| i.has_ipv6(&dst)));
        let Ok(upper) = p.upper_layer() else {
            return false;
        };
        if !ours || upper.protocol != ipv6::NEXT_ICMPV6 || upper.fragment {
            return false;
        }
        let Some(msg) = ip_bytes.get_mut(upper.offset..total) else {
            return false;
        };
        if !icmpv6::echo_request_to_reply(&src, &dst, msg) {
            return false;
        }
        let Ok(mut p) = ipv6::Packet::new_checked(&mut ip_bytes[..]) else {
            return false;
        };
        p.set_src(dst);
        p.set_dst(src);
        p.set_hop_limit(64);
        let extra = m.len().saturating_sub(ethernet::HEADER_LEN + total);
        m.trim(extra as u16);
        if ipv6::is_link_local(&src) {
            // Back to the sender's MAC, from ours, on the same port.
            let d = m.data_mut();
            let (to, from) = d.split_at_mut(ethernet::field::SOURCE.start);
            to[..6].swap_with_slice(&mut from[..6]);
            return true;
        }
        m.adj(ethernet::HEADER_LEN as u16);
        m.set_port(INJECT_ROUTE);
        true
    }
}
