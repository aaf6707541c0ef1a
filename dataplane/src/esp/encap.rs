//! Tunnel-mode encapsulation (RFC 4303 section 3.1.2), in place.

use super::crypto::{Aead, AeadOps};
use super::Prepared;
use crate::packet::PacketBuf;
use crate::sa::{DfPolicy, DscpPolicy, OutboundSa};
use crate::wire::checksum;
use crate::wire::esp::{self, ICV_LEN, IV_LEN, TRAILER_LEN};
use crate::wire::{ipv4, udp};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncapError {
    /// The SA has used its last sequence number.
    SeqExhausted,
    /// Not enough head- or tailroom in the buffer.
    NoRoom,
    /// The buffer does not start with an IPv4 header.
    NotIpv4,
    /// The outer packet would not fit the MTU of the way out.
    ExceedsMtu,
    Crypto,
}

/// Bytes encapsulation adds in front of the inner packet.
#[inline]
pub fn overhead_front(sa: &OutboundSa) -> usize {
    usize::from(sa.outer.len) + IV_LEN
}

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
}

impl OuterTemplate {
    pub fn new(e: &crate::sa::TunnelEncap, spi: u32) -> OuterTemplate {
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
            src: e.local,
            dst: e.remote,
            payload_len: 0,
        };
        if let Some(h) = bytes.first_chunk_mut() {
            ip.emit(h);
        }
        if let (Some((src_port, dst_port)), Some(u)) =
            (e.udp, bytes[20..].first_chunk_mut::<{ udp::HEADER_LEN }>())
        {
            udp::Repr {
                src_port,
                dst_port,
                payload_len: 0,
            }
            .emit(u);
        }
        let at = ipv4::MIN_HEADER_LEN + udp_len;
        bytes[at..at + 4].copy_from_slice(&spi.to_be_bytes());
        let (src, dst) = (u32::from(e.local), u32::from(e.remote));
        let fixed_sum = 0x4500
            + u32::from(u16::from_be_bytes([ip.ttl, ip.protocol]))
            + (src >> 16)
            + (src & 0xffff)
            + (dst >> 16)
            + (dst & 0xffff);
        let (tos_keep, tos_set) = match e.dscp {
            DscpPolicy::Copy => (0xff, 0),
            DscpPolicy::Set(d) => (0x03, d << 2),
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
        }
    }

    /// Writes the headers and IV into the front of `h`, for an inner packet whose TOS and
    /// flags byte (the one holding DF) are given, and an ESP payload of `esp_len` bytes
    /// (header to ICV). `None` if `h` is shorter than the headers and IV.
    #[inline(always)]
    fn write(
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
            h[24..26].copy_from_slice(&((udp::HEADER_LEN + esp_len) as u16).to_be_bytes());
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
        h[..4].copy_from_slice(&[0x45, tos, t0, t1]);
        h[4..8].copy_from_slice(&[i0, i1, flags, 0]);
        h[10..12].copy_from_slice(&[c0, c1]);
        h[n - 4..n].copy_from_slice(&(seq as u32).to_be_bytes());
        h[n..].copy_from_slice(&seq.to_be_bytes());
    }
}

/// The outer packet's length for an inner packet of `inner_len` bytes.
#[inline]
pub fn outer_len(sa: &OutboundSa, inner_len: usize) -> usize {
    overhead_front(sa) + inner_len + esp::pad_len(inner_len) + TRAILER_LEN + ICV_LEN
}

/// Wraps the IPv4 packet that fills `buf` into outer IPv4 [+ UDP] + ESP, encrypting it in
/// place. On success `buf` holds the outer IPv4 packet; on error it is unchanged except for
/// `Crypto`, after which it must be dropped. The dataplane itself runs `prepare` per packet and
/// the seal per SA batch; this is the same for one packet.
pub fn encap<B: PacketBuf>(sa: &mut OutboundSa, buf: &mut B) -> Result<(), EncapError> {
    let inner_len = buf.len();
    let p = prepare(sa, buf, 0, usize::MAX)?;
    let mut ops = AeadOps::new();
    p.push(buf.data_mut(), &sa.keying(), &mut ops)
        .ok_or(EncapError::NoRoom)?;
    sa.cipher.process(&mut ops);
    if !ops.ok(0) {
        return Err(EncapError::Crypto);
    }
    sa.counters.carried(1, inner_len as u64);
    Ok(())
}

/// Everything of `encap` but the seal: sequence number, trailer, outer headers, and the AEAD
/// operation left to run. `link_len` bytes are left free in front of the outer header for the
/// link layer (the forwarder writes its Ethernet header there: one move of the data start for
/// both), and the outer IPv4 packet must fit `mtu`. Every check comes before the sequence
/// number is taken, so none is spent on a packet that cannot leave; on error `buf` is
/// unchanged. After `prepare`, the buffer must be sealed or dropped.
#[inline(always)]
pub fn prepare<B: PacketBuf>(
    sa: &mut OutboundSa,
    buf: &mut B,
    link_len: usize,
    mtu: usize,
) -> Result<Prepared, EncapError> {
    let (inner_len, inner_tos, inner_flags) = match *buf.data() {
        [b0, tos, _, _, _, _, flags, ..] if b0 >> 4 == 4 => (buf.len(), tos, flags),
        _ => return Err(EncapError::NotIpv4),
    };
    if inner_len < ipv4::MIN_HEADER_LEN {
        return Err(EncapError::NotIpv4);
    }
    let pad = esp::pad_len(inner_len);
    let tail = pad + TRAILER_LEN + ICV_LEN;
    let front = overhead_front(sa);
    if front + inner_len + tail > mtu {
        return Err(EncapError::ExceedsMtu);
    }
    // The outer packet's length must fit the 16 bits of its IPv4 header (and of an mbuf).
    if buf.headroom() < front + link_len
        || buf.tailroom() < tail
        || front + inner_len + tail > usize::from(u16::MAX)
    {
        return Err(EncapError::NoRoom);
    }
    let seq = sa.next_seq().ok_or(EncapError::SeqExhausted)?;

    let t = buf.append(tail).ok_or(EncapError::NoRoom)?;
    // RFC 4303 section 2.4: padding 1, 2, 3, then its length and the next header. The tail is
    // at least 18 bytes, so the four are written at once; the ICV's bytes come after.
    if let Some(w) = t.first_chunk_mut::<4>() {
        *w = [1, 2, 3, 0];
    }
    if let Some([p, nh]) = t.get_mut(pad..pad + TRAILER_LEN) {
        *p = pad as u8;
        *nh = ipv4::PROTO_IPV4;
    }

    let esp_len = esp::HEADER_LEN + IV_LEN + inner_len + tail;
    let h = buf.prepend(link_len + front).ok_or(EncapError::NoRoom)?;
    let h = h.get_mut(link_len..).ok_or(EncapError::NoRoom)?;
    sa.outer
        .write(h, inner_tos, inner_flags, esp_len, seq)
        .ok_or(EncapError::NoRoom)?;

    Ok(Prepared {
        offset: (link_len + front) as u16,
        len: (inner_len + tail) as u16,
        seq,
    })
}
