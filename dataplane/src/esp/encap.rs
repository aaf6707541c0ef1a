//! Tunnel-mode encapsulation (RFC 4303 section 3.1.2), in place.

use super::crypto::Aead;
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
    Crypto,
}

/// Bytes encapsulation adds in front of the inner packet.
#[inline]
pub fn overhead_front(sa: &OutboundSa) -> usize {
    usize::from(sa.outer.len) + IV_LEN
}

/// An SA's outer IPv4 [+ UDP] + ESP header, built once when the SA is made (as VPP keeps an
/// IPv4 header template in its SA): per packet only the TOS, DF, identification, lengths,
/// checksum, sequence number and IV are written.
#[derive(Debug, Clone, Copy)]
pub struct OuterTemplate {
    bytes: [u8; ipv4::MIN_HEADER_LEN + udp::HEADER_LEN + esp::HEADER_LEN],
    /// Bytes of `bytes` in use: 28 for raw ESP, 36 with UDP.
    len: u8,
    udp: bool,
    /// Ones'-complement sum of the IPv4 header words that never change.
    fixed_sum: u32,
}

impl OuterTemplate {
    pub fn new(e: &crate::sa::TunnelEncap, spi: u32) -> OuterTemplate {
        let mut bytes = [0u8; 36];
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
        OuterTemplate {
            bytes,
            len: (at + esp::HEADER_LEN) as u8,
            udp: e.udp.is_some(),
            fixed_sum,
        }
    }

    /// Writes the headers and IV into `h` (exactly `len` + IV bytes), for an ESP payload of
    /// `esp_len` bytes (header to ICV). `None` if `h` has another length.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        h: &mut [u8],
        tos: u8,
        dont_frag: bool,
        ident: u16,
        esp_len: usize,
        seq: u32,
        iv: &[u8; IV_LEN],
    ) -> Option<()> {
        let n = usize::from(self.len);
        if h.len() != n + IV_LEN {
            return None;
        }
        // Fixed-size copies: a variable-length copy would be a memcpy call per packet.
        let (ip, rest) = h.split_at_mut(ipv4::MIN_HEADER_LEN);
        let ip: &mut [u8; ipv4::MIN_HEADER_LEN] = ip.try_into().ok()?;
        ip.copy_from_slice(&self.bytes[..ipv4::MIN_HEADER_LEN]);
        let esp_at = n - esp::HEADER_LEN - ipv4::MIN_HEADER_LEN;
        if self.udp {
            let u: &mut [u8; udp::HEADER_LEN] = rest.get_mut(..udp::HEADER_LEN)?.try_into().ok()?;
            u.copy_from_slice(&self.bytes[20..28]);
        }
        let e: &mut [u8; 4] = rest.get_mut(esp_at..esp_at + 4)?.try_into().ok()?;
        e.copy_from_slice(&self.bytes[n - 8..n - 4]);
        let ip_payload = if self.udp { udp::HEADER_LEN } else { 0 } + esp_len;
        let total = (ipv4::MIN_HEADER_LEN + ip_payload) as u16;
        let ff = if dont_frag { ipv4::FLAG_DF } else { 0 };
        let sum =
            self.fixed_sum + u32::from(tos) + u32::from(total) + u32::from(ident) + u32::from(ff);
        h[1] = tos;
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h[4..6].copy_from_slice(&ident.to_be_bytes());
        h[6..8].copy_from_slice(&ff.to_be_bytes());
        h[10..12].copy_from_slice(&(!checksum::fold32(sum)).to_be_bytes());
        if self.udp {
            h[24..26].copy_from_slice(&((udp::HEADER_LEN + esp_len) as u16).to_be_bytes());
        }
        h[n - 4..n].copy_from_slice(&seq.to_be_bytes());
        h[n..].copy_from_slice(iv);
        Some(())
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
    let p = prepare(sa, buf)?;
    let mut job = p
        .job(buf.data_mut(), &sa.keying())
        .ok_or(EncapError::NoRoom)?;
    sa.cipher.process(core::slice::from_mut(&mut job));
    if !job.ok {
        return Err(EncapError::Crypto);
    }
    sa.counters.carried(1, inner_len as u64);
    Ok(())
}

/// Everything of `encap` but the seal: sequence number, trailer, outer headers, and the AEAD
/// job left to run. After `prepare`, the buffer must be sealed or dropped.
#[inline(always)]
pub fn prepare<B: PacketBuf>(sa: &mut OutboundSa, buf: &mut B) -> Result<Prepared, EncapError> {
    let inner_len = buf.len();
    let (inner_tos, inner_df) = {
        let d = buf.data();
        if inner_len < ipv4::MIN_HEADER_LEN || d[0] >> 4 != 4 {
            return Err(EncapError::NotIpv4);
        }
        (d[1], u16::from_be_bytes([d[6], d[7]]) & ipv4::FLAG_DF != 0)
    };
    let pad = esp::pad_len(inner_len);
    let tail = pad + TRAILER_LEN + ICV_LEN;
    let front = overhead_front(sa);
    // The ESP payload's length must fit the 16 bits of a prepared job (and of an mbuf).
    if buf.headroom() < front || buf.tailroom() < tail || inner_len + tail > usize::from(u16::MAX) {
        return Err(EncapError::NoRoom);
    }
    let seq = sa.next_seq().ok_or(EncapError::SeqExhausted)?;

    let t = buf.append(tail).ok_or(EncapError::NoRoom)?;
    for (i, b) in t[..pad].iter_mut().enumerate() {
        *b = i as u8 + 1; // RFC 4303 section 2.4: 1, 2, 3, ...
    }
    t[pad] = pad as u8;
    t[pad + 1] = ipv4::PROTO_IPV4;

    let e = &sa.encap;
    let tos = match e.dscp {
        DscpPolicy::Copy => inner_tos,
        DscpPolicy::Set(d) => (d << 2) | (inner_tos & 0x03),
    };
    let dont_frag = match e.df {
        DfPolicy::Copy => inner_df,
        DfPolicy::Set => true,
        DfPolicy::Clear => false,
    };
    let esp_len = esp::HEADER_LEN + IV_LEN + inner_len + pad + TRAILER_LEN + ICV_LEN;
    let iv = seq.to_be_bytes();
    let tpl = &sa.outer;
    let h = buf.prepend(front).ok_or(EncapError::NoRoom)?;
    tpl.write(h, tos, dont_frag, seq as u16, esp_len, seq as u32, &iv)
        .ok_or(EncapError::NoRoom)?;

    Ok(Prepared {
        offset: front as u16,
        len: (inner_len + pad + TRAILER_LEN + ICV_LEN) as u16,
        seq,
    })
}
