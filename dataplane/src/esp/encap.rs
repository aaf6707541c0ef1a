//! Tunnel-mode encapsulation (RFC 4303 section 3.1.2), in place.

use super::Prepared;
use crate::packet::PacketBuf;
use crate::sa::{OutboundSa, SeqStop};
use crate::wire::esp::{self, ICV_LEN, IV_LEN, TRAILER_LEN};
use crate::wire::{ipv4, ipv6};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncapError {
    /// The SA has used its last sequence number.
    SeqExhausted,
    /// The SA has reached its hard lifetime.
    HardLimit,
    /// The SA has used the sequence numbers granted to it; the next grant is on its way.
    SeqLease,
    /// Not enough head- or tailroom in the buffer.
    NoRoom,
    /// The buffer starts with neither an IPv4 nor an IPv6 header.
    NotIp,
    /// The outer packet would not fit the MTU of the way out.
    ExceedsMtu,
    Crypto,
}

/// Bytes encapsulation adds in front of the inner packet.
#[inline]
pub fn overhead_front(sa: &OutboundSa) -> usize {
    sa.outer.header_len() + IV_LEN
}

/// The outer packet's length for an inner packet of `inner_len` bytes.
#[inline]
pub fn outer_len(sa: &OutboundSa, inner_len: usize) -> usize {
    overhead_front(sa) + inner_len + esp::pad_len(inner_len) + TRAILER_LEN + ICV_LEN
}

/// The tunnel's MTU through this SA: the longest inner packet whose outer packet fits `mtu`
/// (ESP pads the inner packet and its trailer to 4 bytes), or the tunnel's own `mtu` if that
/// is less.
pub fn tunnel_mtu(sa: &OutboundSa, mtu: usize) -> usize {
    let room = mtu.saturating_sub(overhead_front(sa) + ICV_LEN);
    (room / 4 * 4)
        .saturating_sub(TRAILER_LEN)
        .min(sa.outer.inner_mtu())
}

/// Wraps the IPv4 or IPv6 packet that fills `buf` into outer IPv4 or IPv6 [+ UDP] + ESP,
/// encrypting it in place. On success `buf` holds the outer packet; on error it is unchanged except for
/// `Crypto`, after which it must be dropped. The dataplane itself runs `prepare` per packet and
/// the seal per SA batch; this is the same for one packet.
pub fn encap<B: PacketBuf>(sa: &mut OutboundSa, buf: &mut B) -> Result<(), EncapError> {
    let inner_len = buf.len();
    let p = prepare(sa, buf, 0, usize::MAX)?;
    if !p.run_one(buf.data_mut(), &sa.crypto) {
        return Err(EncapError::Crypto);
    }
    if sa.outer.udp6() {
        super::outer::fill_udp6_checksum(buf.data_mut()).ok_or(EncapError::Crypto)?;
    }
    sa.carried(1, inner_len as u64);
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
    let inner_len = buf.len();
    // The TOS (IPv6: the traffic class) and the flags byte the outer DSCP, ECN and DF are
    // taken from, and the next header. IPv6 has no DF bit, but routers never fragment it: a
    // "copy" of that is DF set (the tunnel's `df: "clear"` lets the outer be cut).
    let (inner_tos, inner_flags, next) = match *buf.data() {
        [b0, tos, _, _, _, _, flags, ..] if b0 >> 4 == 4 && inner_len >= ipv4::MIN_HEADER_LEN => {
            (tos, flags, ipv4::PROTO_IPV4)
        }
        [b0, b1, ..] if b0 >> 4 == 6 && inner_len >= ipv6::HEADER_LEN => (
            b0 << 4 | b1 >> 4,
            (ipv4::FLAG_DF >> 8) as u8,
            ipv4::PROTO_IPV6,
        ),
        _ => return Err(EncapError::NotIp),
    };
    let pad = esp::pad_len(inner_len);
    let tail = pad + TRAILER_LEN + ICV_LEN;
    let front = overhead_front(sa);
    if front + inner_len + tail > mtu || inner_len > sa.outer.inner_mtu() {
        return Err(EncapError::ExceedsMtu);
    }
    // The outer packet's length must fit the 16 bits of its IPv4 header (and of an mbuf).
    if buf.headroom() < front + link_len
        || buf.tailroom() < tail
        || front + inner_len + tail > usize::from(u16::MAX)
    {
        return Err(EncapError::NoRoom);
    }
    let seq = sa.next_seq().map_err(|e| match e {
        SeqStop::Exhausted => EncapError::SeqExhausted,
        SeqStop::HardLimit => EncapError::HardLimit,
        SeqStop::Lease => EncapError::SeqLease,
    })?;

    let t = buf.append(tail).ok_or(EncapError::NoRoom)?;
    // RFC 4303 section 2.4: padding 1, 2, 3, then its length and the next header. The tail is
    // at least 18 bytes, so the four are written at once; the ICV's bytes come after.
    if let Some(w) = t.first_chunk_mut::<4>() {
        *w = [1, 2, 3, 0];
    }
    if let Some([p, nh]) = t.get_mut(pad..pad + TRAILER_LEN) {
        *p = pad as u8;
        *nh = next;
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
