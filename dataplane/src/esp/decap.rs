//! Tunnel-mode decapsulation (RFC 4303 section 3.4), in place.

use super::aad;
use super::crypto::nonce;
use super::replay::ReplayError;
use crate::packet::PacketBuf;
use crate::sa::InboundSa;
use crate::wire::esp::{self, IV_LEN, TRAILER_LEN};
use crate::wire::ipv4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecapError {
    /// Too short to be ESP with this transform.
    BadHeader,
    Replay(ReplayError),
    /// The ICV did not verify.
    Auth,
    /// Pad length or padding bytes wrong, or a next header other than IPv4.
    BadTrailer,
    /// A dummy packet (next header 59, RFC 4303 section 2.6): dropped by design.
    Dummy,
    /// The decrypted payload is not a valid IPv4 packet.
    BadInner,
    /// The inner packet is outside the SA's traffic selectors.
    TsCheckFail,
}

/// Verifies, decrypts and strips the ESP packet that starts `esp_off` bytes into `buf`
/// (which holds the whole outer packet). On success `buf` holds exactly the inner IPv4
/// packet. The replay window advances only once the ICV has verified.
pub fn decap<B: PacketBuf>(
    sa: &mut InboundSa,
    buf: &mut B,
    esp_off: usize,
) -> Result<(), DecapError> {
    let data = buf.data_mut();
    let esp_bytes = data.get_mut(esp_off..).ok_or(DecapError::BadHeader)?;
    let (seql, iv) = {
        let p = esp::Packet::new_checked(&*esp_bytes).map_err(|_| DecapError::BadHeader)?;
        (p.seq(), p.iv())
    };
    let seq = sa.replay.check(seql).map_err(DecapError::Replay)?;

    let (a, alen) = aad(sa.spi, seq, sa.esn);
    let n = nonce(sa.salt(), &iv);
    let ct = &mut esp_bytes[esp::HEADER_LEN + IV_LEN..];
    let pt_len = sa
        .cipher
        .open(&n, &a[..alen], ct)
        .map_err(|_| DecapError::Auth)?;
    sa.replay.accept(seq).map_err(DecapError::Replay)?;

    let pt = &ct[..pt_len];
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
    match next_header {
        ipv4::PROTO_IPV4 => {}
        ipv4::PROTO_NONE => return Err(DecapError::Dummy),
        _ => return Err(DecapError::BadTrailer),
    }
    // The inner packet may be followed by TFC padding (RFC 4303 section 2.4): its own
    // total length says where it ends.
    let inner = ipv4::Packet::new_checked(&pt[..body_len]).map_err(|_| DecapError::BadInner)?;
    if !inner.verify_checksum() {
        return Err(DecapError::BadInner);
    }
    if !sa.selectors.admits_inbound(inner.src(), inner.dst()) {
        return Err(DecapError::TsCheckFail);
    }
    let inner_len = inner.total_len();
    let front = esp_off + esp::HEADER_LEN + IV_LEN;
    let back = buf.len() - front - inner_len;
    if !(buf.adj(front) && buf.trim(back)) {
        return Err(DecapError::BadHeader);
    }
    sa.counters.packets.inc();
    sa.counters.bytes.add(inner_len as u64);
    Ok(())
}
