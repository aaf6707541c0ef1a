//! The outer headers of tunnel mode (RFC 4303 section 3.1.2): how a tunnel's packets are
//! wrapped (`TunnelEncap`), and the SA's prebuilt header template that each packet's outer
//! IPv4 [+ UDP] + ESP header is written from.

use crate::wire::checksum;
use crate::wire::esp::{self, IV_LEN};
use crate::wire::{ipv4, udp};
use channel::{DfPolicy, Dscp};
use std::net::{IpAddr, Ipv4Addr};

pub use config::TunnelEncap;

/// Outer IPv4 + ESP header (SPI, sequence number), and with UDP (NAT-T).
const OUTER_ESP: usize = ipv4::MIN_HEADER_LEN + esp::HEADER_LEN;
const OUTER_UDP: usize = OUTER_ESP + udp::HEADER_LEN;

/// An SA's outer IPv4 [+ UDP] + ESP header, built once when the SA is made (as VPP keeps an
/// IPv4 header template in its SA), with the tunnel's DSCP and DF policies as masks: per packet
/// only the TOS, DF, identification, lengths, checksum, sequence number and IV are written.
#[derive(Debug, Clone, Copy)]
pub struct OuterTemplate {
    bytes: [u8; OUTER_UDP],
    /// Bytes of `bytes` in use: 28 for raw ESP, 36 with UDP.
    len: u8,
    udp: bool,
    /// Outer TOS = inner TOS & `tos_keep` | `tos_set` (DSCP copied or set; ECN copied).
    tos_keep: u8,
    tos_set: u8,
    /// Outer flags byte = inner flags byte & `df_keep` | `df_set` (DF copied, set or clear).
    df_keep: u8,
    df_set: u8,
    /// Ones'-complement sum of the IPv4 header words that never change.
    fixed_sum: u32,
    /// The tunnel's own MTU for inner packets (`tunnels[].mtu`); `u16::MAX`: none.
    inner_mtu: u16,
}

impl OuterTemplate {
    pub fn new(e: &TunnelEncap, spi: u32) -> OuterTemplate {
        // The control state refuses IPv6 endpoints until IPv6 outer headers are built here.
        let v4 = |a: IpAddr| match a {
            IpAddr::V4(a) => a,
            IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
        };
        let (local, remote) = (v4(e.local), v4(e.remote));
        let mut bytes = [0u8; OUTER_UDP];
        let udp_len = if e.udp.is_some() { udp::HEADER_LEN } else { 0 };
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
        if let Some(h) = bytes.first_chunk_mut() {
            ip.emit(h);
        }
        if let (Some((src_port, dst_port)), Some(u)) = (
            e.udp,
            bytes[ipv4::MIN_HEADER_LEN..].first_chunk_mut::<{ udp::HEADER_LEN }>(),
        ) {
            udp::Repr {
                src_port,
                dst_port,
                payload_len: 0,
            }
            .emit(u);
        }
        let at = ipv4::MIN_HEADER_LEN + udp_len;
        bytes[at + esp::field::SPI.start..at + esp::field::SPI.end]
            .copy_from_slice(&spi.to_be_bytes());
        let (src, dst) = (u32::from(local), u32::from(remote));
        let fixed_sum = 0x4500
            + u32::from(u16::from_be_bytes([ip.ttl, ip.protocol]))
            + (src >> 16)
            + (src & 0xffff)
            + (dst >> 16)
            + (dst & 0xffff);
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
        OuterTemplate {
            bytes,
            len: (at + esp::HEADER_LEN) as u8,
            udp: e.udp.is_some(),
            tos_keep,
            tos_set,
            df_keep,
            df_set,
            fixed_sum,
            inner_mtu: e.mtu.unwrap_or(u16::MAX),
        }
    }

    /// The tunnel's own MTU for inner packets; `u16::MAX`: none (the egress MTU decides).
    #[inline(always)]
    pub fn inner_mtu(&self) -> usize {
        usize::from(self.inner_mtu)
    }

    /// The peer's address, as the template's destination.
    pub fn remote(&self) -> Ipv4Addr {
        let mut a = [0; 4];
        a.copy_from_slice(&self.bytes[ipv4::field::DST_ADDR]);
        Ipv4Addr::from(a)
    }

    /// Bytes of outer IPv4 [+ UDP] + ESP header in front of the IV.
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
        // One length check, then fixed-size writes: the two layouts are separate copies.
        if self.udp {
            self.write_n::<{ OUTER_UDP + IV_LEN }>(
                h.first_chunk_mut()?,
                inner_tos,
                inner_flags,
                esp_len,
                seq,
            );
        } else {
            self.write_n::<{ OUTER_ESP + IV_LEN }>(
                h.first_chunk_mut()?,
                inner_tos,
                inner_flags,
                esp_len,
                seq,
            );
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
        // The template (its last bytes past `n` land where the IV goes, written last), then
        // the changing words of the IPv4 header whole.
        h[..n].copy_from_slice(&self.bytes[..n]);
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
        let sum = self.fixed_sum
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
}
