//! The outer headers of tunnel mode (RFC 4303 section 3.1.2): how a tunnel's packets are
//! wrapped (`TunnelEncap`), and the SA's prebuilt header template that each packet's outer
//! IPv4 [+ UDP] + ESP or IPv6 + ESP header is written from.

use crate::wire::checksum;
use crate::wire::esp::{self, IV_LEN};
use crate::wire::{ipv4, ipv6, udp};
use channel::{DfPolicy, Dscp};
use std::net::IpAddr;

pub use config::TunnelEncap;

/// Outer IPv4 + ESP header (SPI, sequence number), with UDP (NAT-T), and IPv6 + ESP.
const OUTER_ESP: usize = ipv4::MIN_HEADER_LEN + esp::HEADER_LEN;
const OUTER_UDP: usize = OUTER_ESP + udp::HEADER_LEN;
const OUTER_ESP6: usize = ipv6::HEADER_LEN + esp::HEADER_LEN;
/// What the template holds: the longest layout up to the SPI (the sequence number is written
/// per packet), so that it stays within the SA's hot cache lines.
const TEMPLATE_LEN: usize = OUTER_ESP6 - SEQ_LEN;
const SEQ_LEN: usize = esp::field::SEQ.end - esp::field::SEQ.start;

/// The outer header's layout, fixed by the tunnel's endpoints and NAT-T.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Esp4,
    Udp4,
    Esp6,
}

/// An SA's outer IPv4 [+ UDP] + ESP or IPv6 + ESP header, built once when the SA is made (as
/// VPP keeps an IP header template in its SA), with the tunnel's DSCP and DF policies as masks:
/// per packet only the TOS (traffic class), DF, identification, lengths, checksum, sequence
/// number and IV are written.
#[derive(Debug, Clone, Copy)]
pub struct OuterTemplate {
    bytes: [u8; TEMPLATE_LEN],
    /// Bytes of `bytes` in use: 28 for raw ESP, 36 with UDP, 48 over IPv6.
    len: u8,
    layout: Layout,
    /// Outer TOS = inner TOS & `tos_keep` | `tos_set` (DSCP copied or set; ECN copied).
    tos_keep: u8,
    tos_set: u8,
    /// Outer flags byte = inner flags byte & `df_keep` | `df_set` (DF copied, set or clear);
    /// IPv4 only (IPv6 is never cut on the way).
    df_keep: u8,
    df_set: u8,
    /// Ones'-complement sum of the IPv4 header words that never change, folded.
    fixed_sum: u16,
    /// The tunnel's own MTU for inner packets (`tunnels[].mtu`); `u16::MAX`: none.
    inner_mtu: u16,
}

impl OuterTemplate {
    pub fn new(e: &TunnelEncap, spi: u32) -> OuterTemplate {
        let (tos_keep, tos_set) = match e.dscp {
            Dscp::Copy => (0xff, 0),
            Dscp::Set(d) => (0x03, d << 2),
        };
        let df = (ipv4::FLAG_DF >> 8) as u8;
        let (df_keep, df_set) = match e.df {
            DfPolicy::Copy => (df, 0),
            DfPolicy::Set => (0, df),
            DfPolicy::Clear => (0, 0),
        };
        let mut t = OuterTemplate {
            bytes: [0; TEMPLATE_LEN],
            len: 0,
            layout: Layout::Esp4,
            tos_keep,
            tos_set,
            df_keep,
            df_set,
            fixed_sum: 0,
            inner_mtu: e.mtu.unwrap_or(u16::MAX),
        };
        let at = match (e.local, e.remote) {
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                // Payload length and traffic class are written per packet; the flow label
                // stays 0. Config refuses NAT-T over IPv6.
                t.layout = Layout::Esp6;
                t.bytes[0] = 0x60;
                t.bytes[ipv6::field::NEXT_HEADER] = ipv6::NEXT_ESP;
                t.bytes[ipv6::field::HOP_LIMIT] = e.ttl;
                t.bytes[ipv6::field::SRC_ADDR].copy_from_slice(&src.octets());
                t.bytes[ipv6::field::DST_ADDR].copy_from_slice(&dst.octets());
                ipv6::HEADER_LEN
            }
            (local, remote) => {
                // Mixed families never get here (config and the control state refuse them).
                let v4 = |a: IpAddr| match a {
                    IpAddr::V4(a) => a,
                    IpAddr::V6(_) => std::net::Ipv4Addr::UNSPECIFIED,
                };
                t.write_ipv4(e, v4(local), v4(remote))
            }
        };
        t.bytes[at + esp::field::SPI.start..at + esp::field::SPI.end]
            .copy_from_slice(&spi.to_be_bytes());
        t.len = (at + esp::HEADER_LEN) as u8;
        t
    }

    /// The IPv4 [+ UDP] part of the template; returns where ESP starts.
    fn write_ipv4(
        &mut self,
        e: &TunnelEncap,
        local: std::net::Ipv4Addr,
        remote: std::net::Ipv4Addr,
    ) -> usize {
        let ip = ipv4::Repr {
            tos: 0,
            ident: 0,
            dont_frag: false,
            ttl: e.ttl,
            protocol: if e.udp.is_some() {
                ipv4::PROTO_UDP
            } else {
                ipv4::PROTO_ESP
            },
            src: local,
            dst: remote,
            payload_len: 0,
        };
        if let Some(h) = self.bytes.first_chunk_mut() {
            ip.emit(h);
        }
        if let (Some((src_port, dst_port)), Some(u)) = (
            e.udp,
            self.bytes[ipv4::MIN_HEADER_LEN..].first_chunk_mut::<{ udp::HEADER_LEN }>(),
        ) {
            udp::Repr {
                src_port,
                dst_port,
                payload_len: 0,
            }
            .emit(u);
            self.layout = Layout::Udp4;
        }
        let (src, dst) = (u32::from(local), u32::from(remote));
        self.fixed_sum = checksum::fold32(
            0x4500
                + u32::from(u16::from_be_bytes([ip.ttl, ip.protocol]))
                + (src >> 16)
                + (src & 0xffff)
                + (dst >> 16)
                + (dst & 0xffff),
        );
        match self.layout {
            Layout::Udp4 => OUTER_UDP - esp::HEADER_LEN,
            _ => ipv4::MIN_HEADER_LEN,
        }
    }

    /// The tunnel's own MTU for inner packets; `u16::MAX`: none (the egress MTU decides).
    #[inline(always)]
    pub fn inner_mtu(&self) -> usize {
        usize::from(self.inner_mtu)
    }

    /// The peer's address, as the template's destination.
    pub fn remote(&self) -> IpAddr {
        if self.layout == Layout::Esp6 {
            let mut a = [0; 16];
            a.copy_from_slice(&self.bytes[ipv6::field::DST_ADDR]);
            IpAddr::from(a)
        } else {
            let mut a = [0; 4];
            a.copy_from_slice(&self.bytes[ipv4::field::DST_ADDR]);
            IpAddr::from(a)
        }
    }

    /// The Ethernet type of the frames the outer packets leave in.
    #[inline(always)]
    pub fn ethertype(&self) -> u16 {
        if self.layout == Layout::Esp6 {
            crate::wire::ethernet::ETHERTYPE_IPV6
        } else {
            crate::wire::ethernet::ETHERTYPE_IPV4
        }
    }

    /// Bytes of outer IPv4 [+ UDP] or IPv6 + ESP header in front of the IV.
    #[inline(always)]
    pub fn header_len(&self) -> usize {
        usize::from(self.len)
    }

    /// Writes the headers and IV into the front of `h`, for an inner packet whose TOS and
    /// flags byte (the one holding DF) are given, and an ESP payload of `esp_len` bytes
    /// (header to ICV). `None` if `h` is shorter than the headers and IV.
    #[inline(always)]
    pub(crate) fn write(
        &self,
        h: &mut [u8],
        inner_tos: u8,
        inner_flags: u8,
        esp_len: usize,
        seq: u64,
    ) -> Option<()> {
        // One length check, then fixed-size writes: each layout is a separate copy.
        match self.layout {
            Layout::Esp4 => self.write_n::<{ OUTER_ESP + IV_LEN }>(
                h.first_chunk_mut()?,
                inner_tos,
                inner_flags,
                esp_len,
                seq,
            ),
            Layout::Udp4 => self.write_n::<{ OUTER_UDP + IV_LEN }>(
                h.first_chunk_mut()?,
                inner_tos,
                inner_flags,
                esp_len,
                seq,
            ),
            Layout::Esp6 => self.write6(h.first_chunk_mut()?, inner_tos, esp_len, seq),
        }
        Some(())
    }

    #[inline(always)]
    fn write_n<const N: usize>(
        &self,
        h: &mut [u8; N],
        inner_tos: u8,
        inner_flags: u8,
        esp_len: usize,
        seq: u64,
    ) {
        const { assert!(N >= OUTER_ESP + IV_LEN && N <= OUTER_UDP + IV_LEN) };
        let n = N - IV_LEN;
        // The template up to the SPI, then the changing words of the IPv4 header whole.
        h[..n - SEQ_LEN].copy_from_slice(&self.bytes[..n - SEQ_LEN]);
        let udp_len = if n == OUTER_UDP { udp::HEADER_LEN } else { 0 };
        if n == OUTER_UDP {
            const LEN: usize = ipv4::MIN_HEADER_LEN + udp::field::LENGTH.start;
            h[LEN..LEN + 2].copy_from_slice(&((udp::HEADER_LEN + esp_len) as u16).to_be_bytes());
        }
        let tos = inner_tos & self.tos_keep | self.tos_set;
        let flags = inner_flags & self.df_keep | self.df_set;
        let total = (ipv4::MIN_HEADER_LEN + udp_len + esp_len) as u16;
        // RFC 4303 leaves the identification to the sender: the low bits of the sequence
        // number never repeat within a packet's lifetime at any rate ESP reaches.
        let ident = seq as u16;
        let sum = u32::from(self.fixed_sum)
            + u32::from(tos)
            + u32::from(total)
            + u32::from(ident)
            + (u32::from(flags) << 8);
        let csum = !checksum::fold32(sum);
        let [t0, t1] = total.to_be_bytes();
        let [i0, i1] = ident.to_be_bytes();
        let [c0, c1] = csum.to_be_bytes();
        // Version/IHL, TOS and total length as one word; identification, flags and offset as
        // another.
        use ipv4::field;
        h[field::VER_IHL..field::LENGTH.end].copy_from_slice(&[0x45, tos, t0, t1]);
        h[field::IDENT.start..field::FLG_OFF.end].copy_from_slice(&[i0, i1, flags, 0]);
        h[field::CHECKSUM].copy_from_slice(&[c0, c1]);
        let seq_at = n - esp::HEADER_LEN + esp::field::SEQ.start;
        h[seq_at..seq_at + 4].copy_from_slice(&(seq as u32).to_be_bytes());
        // The explicit IV: the sequence number, which never repeats under the key.
        h[n..].copy_from_slice(&seq.to_be_bytes());
    }

    /// The IPv6 layout: version and traffic class, payload length, sequence number and IV.
    #[inline(always)]
    fn write6(&self, h: &mut [u8; OUTER_ESP6 + IV_LEN], inner_tc: u8, esp_len: usize, seq: u64) {
        h[..TEMPLATE_LEN].copy_from_slice(&self.bytes);
        let tc = inner_tc & self.tos_keep | self.tos_set;
        let [l0, l1] = (esp_len as u16).to_be_bytes();
        h[ipv6::field::VER_TC_FLOW.start..ipv6::field::LENGTH.end].copy_from_slice(&[
            0x60 | tc >> 4,
            tc << 4,
            0,
            0,
            l0,
            l1,
        ]);
        let seq_at = ipv6::HEADER_LEN + esp::field::SEQ.start;
        h[seq_at..seq_at + 4].copy_from_slice(&(seq as u32).to_be_bytes());
        h[OUTER_ESP6..].copy_from_slice(&seq.to_be_bytes());
    }
}
