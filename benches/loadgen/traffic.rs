//! The traffic: which frame size, tunnel and flow packet number k has, the stamp its payload
//! carries, and the frames themselves, built with the dataplane's `wire` Reprs.
//!
//! Packet k goes to tunnel `k mod T` and flow `(k / T) mod F`; its size is `pattern[k mod P]`
//! (one size, or IMIX 7:4:1 interleaved). Sizes are Ethernet frame bytes without FCS of the
//! cleartext packet, in both directions.
//!
//! Encrypt: cleartext UDP/IPv4 from the LAN host to the tunnel's destination, built per packet
//! from a per-size template. Decrypt: the same cleartext packets, encrypted once at start with
//! the mirrored SAs into a pool of ESP frames, replayed in order.

use crate::gwconfig::{Side, TunnelPlan};
use dataplane::esp::{self, EncapError};
use dataplane::packet::{PacketBuf, VecBuf};
use dataplane::sa::OutboundSa;
use dataplane::wire::{ethernet, ipv4, udp};
use std::net::Ipv4Addr;

/// Smallest and largest frame (without FCS).
pub const MIN_FRAME: usize = 60;
pub const MAX_FRAME: usize = 1514;
/// IMIX: 7 x 64, 4 x 570, 1 x 1518 bytes on the wire with FCS; interleaved.
pub const IMIX: [u16; 12] = [60, 566, 60, 60, 1514, 60, 566, 60, 566, 60, 60, 566];
/// UDP ports: source ports start here, one per flow; destination fixed.
pub const SPORT_BASE: u16 = 1024;
pub const DPORT: u16 = 5001;
/// Where the UDP payload starts in a cleartext frame.
pub const PAYLOAD_OFF: usize = ethernet::HEADER_LEN + ipv4::MIN_HEADER_LEN + udp::HEADER_LEN;
/// The stamp at the start of the UDP payload: sequence (or pool index), then TX TSC, both
/// big-endian u64. The smallest frame has 18 payload bytes.
pub const STAMP_LEN: usize = 16;
/// Offset of the TSC in a cleartext frame.
pub const TSC_OFF: usize = PAYLOAD_OFF + 8;

/// Writes the stamp into a UDP payload (at least STAMP_LEN bytes).
#[inline]
pub fn write_stamp(payload: &mut [u8], seq: u64, tsc: u64) {
    if let Some(s) = payload.get_mut(..STAMP_LEN) {
        s[..8].copy_from_slice(&seq.to_be_bytes());
        s[8..].copy_from_slice(&tsc.to_be_bytes());
    }
}

/// Reads (sequence, TSC) from a UDP payload; `None` if too short.
#[inline]
pub fn read_stamp(payload: &[u8]) -> Option<(u64, u64)> {
    let s: &[u8; STAMP_LEN] = payload.get(..STAMP_LEN)?.try_into().ok()?;
    let (a, b) = s.split_at(8);
    Some((
        u64::from_be_bytes(a.try_into().ok()?),
        u64::from_be_bytes(b.try_into().ok()?),
    ))
}

/// Which size, tunnel (index into the plan) and flow packet k has.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub pattern: Vec<u16>,
    pub tunnels: u64,
    pub flows: u64,
}

impl Schedule {
    #[inline]
    pub fn at(&self, k: u64) -> (usize, usize, u16) {
        let len = self.pattern.len().max(1) as u64;
        let size = self.pattern.get((k % len) as usize).copied().unwrap_or(60);
        let t = k % self.tunnels.max(1);
        let f = (k / self.tunnels.max(1)) % self.flows.max(1);
        (
            usize::from(size),
            t as usize,
            SPORT_BASE.wrapping_add(f as u16),
        )
    }
}

/// Builds cleartext frames from the LAN host to the tunnels' destinations.
pub struct ClearFrames {
    pub schedule: Schedule,
    eth: [u8; ethernet::HEADER_LEN],
    src: Ipv4Addr,
    dests: Vec<Ipv4Addr>,
}

impl ClearFrames {
    /// Frames from `from` (our side of the link) to `to`'s MAC, inner source `src`.
    pub fn new(schedule: Schedule, from: &Side, src: Ipv4Addr, dests: Vec<Ipv4Addr>) -> Self {
        let mut eth = [0u8; ethernet::HEADER_LEN];
        ethernet::Repr {
            dst: from.gw_mac,
            src: from.my_mac,
            ethertype: ethernet::ETHERTYPE_IPV4,
        }
        .emit(&mut eth);
        ClearFrames {
            schedule,
            eth,
            src,
            dests,
        }
    }

    /// Writes packet k into `out` (exactly its frame size) with `dst` as inner destination
    /// and `stamp_seq` in the stamp (TSC 0). Returns false if `out` is too short.
    pub fn build_to(
        out: &mut [u8],
        eth: &[u8; 14],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        sport: u16,
        ident: u16,
        stamp_seq: u64,
    ) -> bool {
        let len = out.len();
        if len < PAYLOAD_OFF + STAMP_LEN {
            return false;
        }
        let (e, rest) = out.split_at_mut(ethernet::HEADER_LEN);
        e.copy_from_slice(eth);
        let Some((ip, rest)) = rest.split_first_chunk_mut::<{ ipv4::MIN_HEADER_LEN }>() else {
            return false;
        };
        ipv4::Repr {
            tos: 0,
            ident,
            dont_frag: false,
            ttl: 64,
            protocol: ipv4::PROTO_UDP,
            src,
            dst,
            payload_len: len - ethernet::HEADER_LEN - ipv4::MIN_HEADER_LEN,
        }
        .emit(ip);
        let Some((u, payload)) = rest.split_first_chunk_mut::<{ udp::HEADER_LEN }>() else {
            return false;
        };
        udp::Repr {
            src_port: sport,
            dst_port: DPORT,
            payload_len: payload.len(),
        }
        .emit(u);
        write_stamp(payload, stamp_seq, 0);
        // The rest of the payload is left as the buffer had it: content does not matter.
        true
    }

    /// The frame size of packet k.
    #[inline]
    pub fn size(&self, k: u64) -> usize {
        self.schedule.at(k).0
    }

    /// Writes packet k (sequence k) into `out`, which is exactly `size(k)` bytes.
    #[inline]
    pub fn build(&self, k: u64, out: &mut [u8]) -> bool {
        let (_, t, sport) = self.schedule.at(k);
        let Some(&dst) = self.dests.get(t) else {
            return false;
        };
        Self::build_to(out, &self.eth, self.src, dst, sport, k as u16, k)
    }
}

/// ESP frames prepared at start, replayed in order; `tx_tsc[i]` is when entry i was last sent
/// (its payload cannot carry a fresh timestamp: it is encrypted).
pub struct EspPool {
    bytes: Vec<u8>,
    /// (offset, length) of each frame in `bytes`.
    frames: Vec<(usize, u16)>,
    pub tx_tsc: Vec<u64>,
}

impl EspPool {
    /// Encrypts `n` packets (k = 0 .. n-1 of the schedule) from the tunnels' destinations to
    /// the LAN host, with `sas[t]` the mirror of tunnel t's inbound SA.
    pub fn build(
        schedule: &Schedule,
        n: usize,
        wan: &Side,
        lan_host: Ipv4Addr,
        tunnels: &[TunnelPlan],
        sas: &mut [OutboundSa],
    ) -> Result<EspPool, String> {
        let mut eth = [0u8; ethernet::HEADER_LEN];
        ethernet::Repr {
            dst: wan.gw_mac,
            src: wan.my_mac,
            ethertype: ethernet::ETHERTYPE_IPV4,
        }
        .emit(&mut eth);
        // The inner packet gets a placeholder Ethernet header that we strip before encap.
        let zero_eth = [0u8; ethernet::HEADER_LEN];
        let mut pool = EspPool {
            bytes: Vec::new(),
            frames: Vec::with_capacity(n),
            tx_tsc: vec![0; n],
        };
        let mut clear = vec![0u8; MAX_FRAME];
        for k in 0..n as u64 {
            let (size, t, sport) = schedule.at(k);
            let (Some(plan), Some(sa)) = (tunnels.get(t), sas.get_mut(t)) else {
                return Err(format!("tunnel index {t} out of range"));
            };
            let frame = &mut clear[..size];
            if !ClearFrames::build_to(frame, &zero_eth, plan.dest, lan_host, sport, k as u16, k) {
                return Err(format!("frame size {size} too small"));
            }
            let mut buf = VecBuf::new(&frame[ethernet::HEADER_LEN..]);
            esp::encap(sa, &mut buf).map_err(|e| match e {
                EncapError::SeqExhausted => format!("{}: sequence numbers exhausted", plan.name),
                e => format!("{}: encap failed: {e:?}", plan.name),
            })?;
            buf.prepend(ethernet::HEADER_LEN)
                .ok_or("no headroom for Ethernet")?
                .copy_from_slice(&eth);
            let len = u16::try_from(buf.len()).map_err(|_| "frame too long")?;
            pool.frames.push((pool.bytes.len(), len));
            pool.bytes.extend_from_slice(buf.data());
        }
        Ok(pool)
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Entry i's ESP frame.
    #[inline]
    pub fn frame(&self, i: usize) -> &[u8] {
        self.frames
            .get(i)
            .and_then(|&(o, l)| self.bytes.get(o..o + usize::from(l)))
            .unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::wire::{ethernet::Frame, ipv4::Packet, udp::Datagram};

    #[test]
    fn schedule_spreads_tunnels_flows_and_sizes() {
        let s = Schedule {
            pattern: IMIX.to_vec(),
            tunnels: 3,
            flows: 2,
        };
        let got: Vec<_> = (0..7).map(|k| s.at(k)).collect();
        assert_eq!(got[0], (60, 0, 1024));
        assert_eq!(got[1], (566, 1, 1024));
        assert_eq!(got[3], (60, 0, 1025));
        assert_eq!(got[6], (566, 0, 1024));
        let counts = |n: u16| IMIX.iter().filter(|&&x| x == n).count();
        assert_eq!((counts(60), counts(566), counts(1514)), (7, 4, 1));
    }

    #[test]
    fn clear_frame_parses_back() {
        let mut f = vec![0xaa; 60];
        let eth = [1u8; 14];
        let src = Ipv4Addr::new(10, 1, 0, 10);
        let dst = Ipv4Addr::new(10, 128, 1, 2);
        assert!(ClearFrames::build_to(&mut f, &eth, src, dst, 1030, 7, 99));
        let e = Frame::new_checked(&f[..]).unwrap();
        let ip = Packet::new_checked(e.payload()).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!((ip.src(), ip.dst(), ip.total_len()), (src, dst, 46));
        let u = Datagram::new_checked(ip.payload()).unwrap();
        assert_eq!(
            (u.src_port(), u.dst_port(), u.payload().len()),
            (1030, DPORT, 18)
        );
        assert_eq!(read_stamp(u.payload()), Some((99, 0)));
        write_stamp(&mut f[PAYLOAD_OFF..], 5, 6);
        assert_eq!(read_stamp(&f[PAYLOAD_OFF..]), Some((5, 6)));
        assert_eq!(read_stamp(&f[TSC_OFF..TSC_OFF + 8]), None);
        assert!(!ClearFrames::build_to(
            &mut f[..57],
            &eth,
            src,
            dst,
            1,
            1,
            1
        ));
    }
}
