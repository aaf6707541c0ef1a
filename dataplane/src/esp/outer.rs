//! The outer headers of tunnel mode (RFC 4303 section 3.1.2): how a tunnel's packets are
//! wrapped (`TunnelEncap`), and the SA's prebuilt header template that each packet's outer
//! IPv4 or IPv6 [+ UDP] + ESP header is written from.

use crate::wire::checksum;
use crate::wire::esp::{self, IV_LEN};
use crate::wire::{ipv4, ipv6, udp};
use channel::{DfPolicy, Dscp};
use std::net::IpAddr;

pub use config::TunnelEncap;

/// Outer IPv4 + ESP header (SPI, sequence number), with UDP (NAT-T), and the same over IPv6.
const OUTER_ESP: usize = ipv4::MIN_HEADER_LEN + esp::HEADER_LEN;
const OUTER_UDP: usize = OUTER_ESP + udp::HEADER_LEN;
const OUTER_ESP6: usize = ipv6::HEADER_LEN + esp::HEADER_LEN;
const OUTER_UDP6: usize = OUTER_ESP6 + udp::HEADER_LEN;
/// What the template holds: the longest layout up to the SPI (the sequence number is written
/// per packet), so that it stays within the SA's hot cache lines. IPv4's starts with the
/// header; IPv6's (`V6_FROM`) leaves out what is written per packet anyway.
const TEMPLATE_LEN: usize = OUTER_ESP6 - SEQ_LEN;
const SEQ_LEN: usize = esp::field::SEQ.end - esp::field::SEQ.start;
/// The IPv6 template starts at the next header: version, traffic class, flow label and
/// payload length are per packet. Then the addresses, the UDP ports (in UDP) and the SPI.
const V6_FROM: usize = ipv6::field::NEXT_HEADER;
const V6_ADDRS_END: usize = ipv6::HEADER_LEN - V6_FROM;
const UDP_PORTS: usize = udp::field::LENGTH.start;
const _: () = assert!(V6_ADDRS_END + UDP_PORTS + esp::field::SPI.end <= TEMPLATE_LEN);

/// The outer header's layout, fixed by the tunnel's endpoints and NAT-T.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Esp4,
    Udp4,
    Esp6,
    /// ESP in UDP over IPv6: its UDP checksum, mandatory over IPv6 (RFC 8200 section 8.1)
    /// and over the ciphertext, is filled after the seal (`fill_udp6_checksum`).
    Udp6,
}

/// An SA's outer IPv4 or IPv6 [+ UDP] + ESP header, built once when the SA is made (as
/// VPP keeps an IP header template in its SA), with the tunnel's DSCP and DF policies as masks:
/// per packet only the TOS (traffic class), DF, identification, lengths, checksum, sequence
/// number and IV are written.
#[derive(Debug, Clone, Copy)]
pub struct OuterTemplate {
    bytes: [u8; TEMPLATE_LEN],
    /// The outer header's length up to the IV: 28 for raw ESP, 36 with UDP; over IPv6 48
    /// and 56.
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
        let spi_at = match (e.local, e.remote) {
            (IpAddr::V6(src), IpAddr::V6(dst)) => t.write_ipv6(e, src, dst),
            (local, remote) => {
                // Mixed families never get here (config and the control state refuse them).
                let v4 = |a: IpAddr| match a {
                    IpAddr::V4(a) => a,
                    IpAddr::V6(_) => std::net::Ipv4Addr::UNSPECIFIED,
                };
                let at = t.write_ipv4(e, v4(local), v4(remote));
                t.len = (at + esp::HEADER_LEN) as u8;
                at
            }
        };
        t.bytes[spi_at + esp::field::SPI.start..spi_at + esp::field::SPI.end]
            .copy_from_slice(&spi.to_be_bytes());
        t
    }

    /// The IPv6 [+ UDP ports] part of the template (from `V6_FROM`); returns where the SPI
    /// goes in it.
    fn write_ipv6(
        &mut self,
        e: &TunnelEncap,
        src: std::net::Ipv6Addr,
        dst: std::net::Ipv6Addr,
    ) -> usize {
        let at = |f: core::ops::Range<usize>| f.start - V6_FROM..f.end - V6_FROM;
        self.bytes[ipv6::field::HOP_LIMIT - V6_FROM] = e.ttl;
        self.bytes[at(ipv6::field::SRC_ADDR)].copy_from_slice(&src.octets());
        self.bytes[at(ipv6::field::DST_ADDR)].copy_from_slice(&dst.octets());
        match e.udp {
            Some((src_port, dst_port)) => {
                self.layout = Layout::Udp6;
                self.len = OUTER_UDP6 as u8;
                self.bytes[0] = ipv6::NEXT_UDP;
                self.bytes[V6_ADDRS_END..V6_ADDRS_END + 2].copy_from_slice(&src_port.to_be_bytes());
                self.bytes[V6_ADDRS_END + 2..V6_ADDRS_END + 4]
                    .copy_from_slice(&dst_port.to_be_bytes());
                V6_ADDRS_END + UDP_PORTS
            }
            None => {
                self.layout = Layout::Esp6;
                self.len = OUTER_ESP6 as u8;
                self.bytes[0] = ipv6::NEXT_ESP;
                V6_ADDRS_END
            }
        }
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
        if self.is_ipv6() {
            let mut a = [0; 16];
            let f = ipv6::field::DST_ADDR;
            a.copy_from_slice(&self.bytes[f.start - V6_FROM..f.end - V6_FROM]);
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
        if self.is_ipv6() {
            crate::wire::ethernet::ETHERTYPE_IPV6
        } else {
            crate::wire::ethernet::ETHERTYPE_IPV4
        }
    }

    #[inline(always)]
    fn is_ipv6(&self) -> bool {
        matches!(self.layout, Layout::Esp6 | Layout::Udp6)
    }

    /// Whether each sealed packet needs `fill_udp6_checksum` (ESP in UDP over IPv6).
    #[inline(always)]
    pub fn udp6(&self) -> bool {
        self.layout == Layout::Udp6
    }

    /// Bytes of outer IPv4 or IPv6 [+ UDP] + ESP header in front of the IV.
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
            Layout::Esp6 => self.write6::<{ OUTER_ESP6 + IV_LEN }>(
                h.first_chunk_mut()?,
                inner_tos,
                esp_len,
                seq,
            ),
            Layout::Udp6 => self.write6::<{ OUTER_UDP6 + IV_LEN }>(
                h.first_chunk_mut()?,
                inner_tos,
                esp_len,
                seq,
            ),
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

    /// The IPv6 layouts: the template's next header, hop limit and addresses, [UDP ports,]
    /// SPI; per packet version and traffic class, payload length, [UDP length and a zero
    /// checksum,] sequence number and IV.
    #[inline(always)]
    fn write6<const N: usize>(&self, h: &mut [u8; N], inner_tc: u8, esp_len: usize, seq: u64) {
        const { assert!(N == OUTER_ESP6 + IV_LEN || N == OUTER_UDP6 + IV_LEN) };
        let n = N - IV_LEN;
        h[V6_FROM..ipv6::HEADER_LEN].copy_from_slice(&self.bytes[..V6_ADDRS_END]);
        let spi_at = n - esp::HEADER_LEN;
        let t_spi = if n == OUTER_UDP6 {
            let u = ipv6::HEADER_LEN;
            h[u..u + UDP_PORTS]
                .copy_from_slice(&self.bytes[V6_ADDRS_END..V6_ADDRS_END + UDP_PORTS]);
            let [u0, u1] = ((udp::HEADER_LEN + esp_len) as u16).to_be_bytes();
            h[u + UDP_PORTS..u + udp::HEADER_LEN].copy_from_slice(&[u0, u1, 0, 0]);
            V6_ADDRS_END + UDP_PORTS
        } else {
            V6_ADDRS_END
        };
        h[spi_at..spi_at + 4].copy_from_slice(&self.bytes[t_spi..t_spi + 4]);
        let tc = inner_tc & self.tos_keep | self.tos_set;
        let payload_len = n - ipv6::HEADER_LEN - esp::HEADER_LEN + esp_len;
        let [l0, l1] = (payload_len as u16).to_be_bytes();
        h[ipv6::field::VER_TC_FLOW.start..ipv6::field::LENGTH.end].copy_from_slice(&[
            0x60 | tc >> 4,
            tc << 4,
            0,
            0,
            l0,
            l1,
        ]);
        let seq_at = n - esp::HEADER_LEN + esp::field::SEQ.start;
        h[seq_at..seq_at + 4].copy_from_slice(&(seq as u32).to_be_bytes());
        h[n..].copy_from_slice(&seq.to_be_bytes());
    }
}

/// Fills the UDP checksum of a sealed ESP-in-UDP-over-IPv6 packet (`packet` from its IPv6
/// header on, as `OuterTemplate::write` laid it out): IPv6 forbids UDP checksum 0, and the
/// receiver's stack (Linux, for one) drops such datagrams before its IKE daemon sees them.
pub fn fill_udp6_checksum(packet: &mut [u8]) -> Option<()> {
    let (h, datagram) = packet.split_at_mut_checked(ipv6::HEADER_LEN)?;
    let addr = |f: core::ops::Range<usize>| -> Option<IpAddr> {
        let a: [u8; 16] = h.get(f)?.try_into().ok()?;
        Some(IpAddr::from(a))
    };
    let (src, dst) = (addr(ipv6::field::SRC_ADDR)?, addr(ipv6::field::DST_ADDR)?);
    datagram.get_mut(udp::field::CHECKSUM)?.fill(0);
    let c = udp::checksum(src, dst, datagram)?;
    datagram
        .get_mut(udp::field::CHECKSUM)?
        .copy_from_slice(&c.to_be_bytes());
    Some(())
}
