//! A look over a received burst before it runs through the pipeline, prefetching each frame's
//! SA (by its inbound SPI, or by its route into a tunnel). With thousands of tunnels every
//! packet's SA is a cache miss; met one packet at a time in the pipeline they stall it in turn,
//! asked for together here they overlap (VPP's nodes prefetch ahead for the same reason).

use super::tables::Tables;
use super::{Forwarder, Target};
use crate::burst::MAX_BURST;
use crate::packet::PacketBuf;
use crate::prefetch;
use crate::wire::{ethernet, ipv4, udp};
use std::net::Ipv4Addr;

/// What finds a frame's SA, as one word so that the look stays in registers: the inbound SPI
/// of ESP (or ESP in UDP on a NAT-T port) for one of our addresses, or the destination of
/// IPv4 for another address (routed, maybe into a tunnel).
pub(super) const SPI: u64 = 1 << 32;
pub(super) const DST: u64 = 2 << 32;
/// A tunnel id, from `DST` once routed.
const TUNNEL: u64 = 4 << 32;

impl Forwarder {
    /// Prefetches the SA (its hot cache lines) each frame of `bufs` will need, when the last
    /// burst was spread over several SAs of more than the caches hold (otherwise the look
    /// costs 1.5 to 4 ns a packet for nothing). Only a hint: a frame it cannot read is
    /// skipped, and nothing changes but the route cache, which the pipeline would fill with
    /// the same routes.
    pub fn prefetch_sas<B: PacketBuf>(&mut self, bufs: &[B]) {
        if self.spread {
            self.tables.prefetch_sas(bufs);
        }
    }
}

impl Tables {
    fn prefetch_sas<B: PacketBuf>(&mut self, bufs: &[B]) {
        // First each frame's SPI or route, asking for the line of the SPI table or of the
        // tunnel slot each leads to; then those lines' SAs. The misses of each stage then come
        // together, not one after the other. Frames of one flow or SA in a row need one look.
        let mut keys = [0u64; MAX_BURST];
        let mut last = 0;
        let mut last_key = 0;
        for (k, b) in keys.iter_mut().zip(bufs) {
            let key = self.sa_key(b.data());
            if key == last {
                continue;
            }
            last = key;
            *k = if key & SPI != 0 {
                self.spis.prefetch(key as u32);
                key
            } else if key & DST != 0 {
                match self.route(Ipv4Addr::from(key as u32)) {
                    Some((Target::Tunnel { tunnel }, _)) => {
                        if let Some(t) = self.tunnels.get(tunnel as usize) {
                            prefetch::line(t);
                        }
                        TUNNEL | u64::from(tunnel)
                    }
                    _ => 0,
                }
            } else {
                0
            };
            // Two frames in a row into one tunnel from different flows need one look too.
            if *k == last_key {
                *k = 0;
            } else {
                last_key = *k;
            }
        }
        for &key in keys.iter().take(bufs.len()) {
            let v = key as u32;
            if key & SPI != 0 {
                let index = match self.spis.get(v) {
                    Some(e) if e.owner == self.me => e.index,
                    _ => continue,
                };
                if let Some(sa) = self.inbound(index) {
                    prefetch::hot_lines(sa);
                }
            } else if key & TUNNEL != 0 {
                match self.tunnels.get(v as usize) {
                    Some(t) if t.owner == self.me => {
                        if let Some(sa) = &t.sa {
                            prefetch::hot_lines(&**sa);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// A quick read of an Ethernet frame's IPv4 header (checked properly later, in the
    /// pipeline) for what leads to its SA: `SPI | spi`, `DST | address`, or 0 for nothing.
    /// Frames the pipeline would drop before routing (not IPv4, a short or bad header,
    /// broadcast or multicast) give nothing, so the look routes only what the pipeline would.
    #[inline(always)]
    pub(super) fn sa_key(&self, frame: &[u8]) -> u64 {
        use ipv4::field;
        const IP: usize = ethernet::HEADER_LEN;
        let word = |at: usize| match frame.get(at..at + 4) {
            Some(&[a, b, c, d]) => Some(u64::from(u32::from_be_bytes([a, b, c, d]))),
            _ => None,
        };
        let (Some(&[t0, t1]), Some(h)) = (
            frame.get(ethernet::field::ETHERTYPE),
            frame.get(IP..IP + ipv4::MIN_HEADER_LEN),
        ) else {
            return 0;
        };
        let ihl = usize::from(h[field::VER_IHL] & 0x0f) * 4;
        if u16::from_be_bytes([t0, t1]) != ethernet::ETHERTYPE_IPV4
            || h[field::VER_IHL] >> 4 != 4
            || ihl < ipv4::MIN_HEADER_LEN
        {
            return 0;
        }
        let mut d = [0; 4];
        d.copy_from_slice(&h[field::DST_ADDR]);
        let dst = Ipv4Addr::from(d);
        if dst.is_broadcast() || dst.is_multicast() {
            return 0;
        }
        if !self.own.contains(&dst) {
            return DST | u64::from(u32::from(dst));
        }
        let l4 = IP + ihl;
        // The SPI is the ESP header's first word; behind UDP when the port is a NAT-T port.
        let spi = match h[field::PROTOCOL] {
            ipv4::PROTO_ESP => word(l4),
            ipv4::PROTO_UDP => word(l4 + udp::field::DST_PORT.start)
                .filter(|w| self.natt_ports.contains(&((w >> 16) as u16)))
                .and_then(|_| word(l4 + udp::HEADER_LEN)),
            _ => None,
        };
        // Zero: a non-ESP marker (IKE), no SA.
        match spi {
            Some(spi) if spi != 0 => SPI | spi,
            _ => 0,
        }
    }
}
