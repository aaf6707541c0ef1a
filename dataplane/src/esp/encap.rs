//! Tunnel-mode encapsulation (RFC 4303 section 3.1.2), in place.

use super::crypto::nonce;
use super::{aad, Prepared};
use crate::packet::PacketBuf;
use crate::sa::{DfPolicy, DscpPolicy, OutboundSa};
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
pub fn overhead_front(sa: &OutboundSa) -> usize {
    ipv4::MIN_HEADER_LEN
        + if sa.encap.udp.is_some() {
            udp::HEADER_LEN
        } else {
            0
        }
        + esp::HEADER_LEN
        + IV_LEN
}

/// The outer packet's length for an inner packet of `inner_len` bytes.
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
    let mut job = p.job(buf.data_mut()).ok_or(EncapError::NoRoom)?;
    sa.cipher.process(core::slice::from_mut(&mut job));
    if !job.ok {
        return Err(EncapError::Crypto);
    }
    sa.count(inner_len);
    Ok(())
}

/// Everything of `encap` but the seal: sequence number, trailer, outer headers, and the AEAD
/// job left to run. After `prepare`, the buffer must be sealed or dropped.
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
    if buf.headroom() < front || buf.tailroom() < tail {
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
    let udp_len = if e.udp.is_some() { udp::HEADER_LEN } else { 0 };
    let esp_len = esp::HEADER_LEN + IV_LEN + inner_len + pad + TRAILER_LEN + ICV_LEN;
    let outer = ipv4::Repr {
        tos,
        ident: seq as u16,
        dont_frag,
        ttl: e.ttl,
        protocol: if e.udp.is_some() {
            ipv4::PROTO_UDP
        } else {
            ipv4::PROTO_ESP
        },
        src: e.local,
        dst: e.remote,
        payload_len: udp_len + esp_len,
    };
    let udp_port = e.udp;
    let iv = seq.to_be_bytes();
    let esp_hdr = esp::Repr {
        spi: sa.spi,
        seq: seq as u32,
        iv,
    };

    let h = buf.prepend(front).ok_or(EncapError::NoRoom)?;
    let (ip_hdr, rest) = h.split_first_chunk_mut().ok_or(EncapError::NoRoom)?;
    outer.emit(ip_hdr);
    let rest = match udp_port {
        Some((src_port, dst_port)) => {
            let (u, r) = rest.split_first_chunk_mut().ok_or(EncapError::NoRoom)?;
            udp::Repr {
                src_port,
                dst_port,
                payload_len: esp_len,
            }
            .emit(u);
            r
        }
        None => rest,
    };
    let (esp_bytes, _) = rest.split_first_chunk_mut().ok_or(EncapError::NoRoom)?;
    esp_hdr.emit(esp_bytes);

    Ok(Prepared {
        offset: front,
        len: inner_len + pad + TRAILER_LEN + ICV_LEN,
        nonce: nonce(sa.salt(), &iv),
        aad: aad(sa.spi, seq, sa.esn),
        seq,
    })
}
