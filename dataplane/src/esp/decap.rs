//! Tunnel-mode decapsulation (RFC 4303 section 3.4), in place.

use super::replay::ReplayError;
use super::Prepared;
use crate::packet::PacketBuf;
use crate::sa::InboundSa;
use crate::wire::esp::{self, ICV_LEN, IV_LEN, TRAILER_LEN};
use crate::wire::{ipv4, ipv6};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecapError {
    /// Too short to be ESP with this transform.
    BadHeader,
    Replay(ReplayError),
    /// The ICV did not verify.
    Auth,
    /// Pad length or padding bytes wrong, or a next header other than IPv4 or IPv6.
    BadTrailer,
    /// A dummy packet (next header 59, RFC 4303 section 2.6): dropped by design.
    Dummy,
    /// The decrypted payload is not a valid IPv4 (IPv6) packet, as its next header said.
    BadInner,
    /// The inner packet is outside the SA's traffic selectors.
    TsCheckFail,
    /// The SA has reached its hard lifetime.
    HardLimit,
}

/// Verifies, decrypts and strips the ESP packet that starts `esp_off` bytes into `buf`
/// (which holds the whole outer packet). On success `buf` holds exactly the inner IPv4 or
/// IPv6 packet. The replay window advances only once the ICV has verified. The dataplane runs the
/// same three steps with the open batched per SA.
pub fn decap<B: PacketBuf>(
    sa: &mut InboundSa,
    buf: &mut B,
    esp_off: usize,
) -> Result<(), DecapError> {
    let p = prepare(sa, buf, esp_off)?;
    if !p.run_one(buf.data_mut(), &sa.crypto) {
        return Err(DecapError::Auth);
    }
    finish(sa, buf, esp_off, p.seq).map(|_| ())
}

/// Before the open: lifetime, header, replay pre-check (changes nothing).
#[inline(always)]
pub fn prepare<B: PacketBuf>(
    sa: &InboundSa,
    buf: &B,
    esp_off: usize,
) -> Result<Prepared, DecapError> {
    if sa.expired {
        return Err(DecapError::HardLimit);
    }
    let esp_bytes = buf.data().get(esp_off..).ok_or(DecapError::BadHeader)?;
    let p = esp::Packet::new_checked(esp_bytes).map_err(|_| DecapError::BadHeader)?;
    let seq = sa.replay.check(p.seq()).map_err(DecapError::Replay)?;
    // A frame is far shorter than 2^16 bytes (an mbuf segment cannot be longer).
    let len = u16::try_from(esp_bytes.len() - esp::HEADER_LEN - IV_LEN)
        .map_err(|_| DecapError::BadHeader)?;
    Ok(Prepared {
        offset: (esp_off + esp::HEADER_LEN + IV_LEN) as u16,
        len,
        seq,
    })
}

/// What a decapsulation left in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inner {
    /// An IPv4 packet, with its checked header.
    Ipv4(ipv4::Summary),
    /// An IPv6 packet (next header 41), its fixed header checked.
    Ipv6,
}

/// After the ICV verified: advance the replay window, check the trailer, the inner packet and
/// the selectors, and strip everything but the inner packet, which it says the kind of.
#[inline(always)]
pub fn finish<B: PacketBuf>(
    sa: &mut InboundSa,
    buf: &mut B,
    esp_off: usize,
    seq: u64,
) -> Result<Inner, DecapError> {
    sa.replay.accept(seq).map_err(DecapError::Replay)?;
    let front = esp_off + esp::HEADER_LEN + IV_LEN;
    let data = buf.data();
    let pt_len = data
        .len()
        .checked_sub(front + ICV_LEN)
        .ok_or(DecapError::BadHeader)?;
    let pt = &data[front..front + pt_len];
    let (pad_len, next_header) = match pt {
        [.., p, nh] => (usize::from(*p), *nh),
        _ => return Err(DecapError::BadTrailer),
    };
    let body_len = pt_len
        .checked_sub(TRAILER_LEN + pad_len)
        .ok_or(DecapError::BadTrailer)?;
    let padding = &pt[body_len..body_len + pad_len];
    if padding
        .iter()
        .enumerate()
        .any(|(i, &b)| usize::from(b) != i + 1)
    {
        return Err(DecapError::BadTrailer);
    }
    // The inner packet may be followed by TFC padding (RFC 4303 section 2.4): its own
    // total length says where it ends. Its header checksum is not checked: the ICV has just
    // authenticated every byte of it as the peer sent it (VPP, too, routes decrypted packets
    // through ip4-input-no-checksum).
    let (inner_len, kind) = match next_header {
        ipv4::PROTO_IPV4 => {
            let p = ipv4::Packet::new_checked(&pt[..body_len]).map_err(|_| DecapError::BadInner)?;
            if !sa.admits(p.src(), p.dst()) {
                return Err(DecapError::TsCheckFail);
            }
            (p.total_len(), Inner::Ipv4(p.summary()))
        }
        ipv4::PROTO_IPV6 => (ipv6_inner(sa, &pt[..body_len])?, Inner::Ipv6),
        ipv4::PROTO_NONE => return Err(DecapError::Dummy),
        _ => return Err(DecapError::BadTrailer),
    };
    let back = buf.len() - front - inner_len;
    if !(buf.adj(front) && buf.trim(back)) {
        return Err(DecapError::BadHeader);
    }
    sa.carried(inner_len as u64);
    Ok(kind)
}

/// Checks a decrypted IPv6 packet (its fixed header and the SA's selectors) and returns its
/// length, apart from IPv4's path.
#[inline(never)]
fn ipv6_inner(sa: &InboundSa, body: &[u8]) -> Result<usize, DecapError> {
    let p = ipv6::Packet::new_checked(body).map_err(|_| DecapError::BadInner)?;
    if !sa.admits6(&p.src(), &p.dst()) {
        return Err(DecapError::TsCheckFail);
    }
    Ok(p.total_len())
}
