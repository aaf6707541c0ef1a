//! UDP headers (RFC 768), as used for ESP-in-UDP (RFC 3948).

use super::{be16, checksum, ipv4, ipv6, Result, WireError};
use std::net::{IpAddr, Ipv6Addr};

/// Where each field lies in the header.
pub mod field {
    pub type Field = core::ops::Range<usize>;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
}

pub const HEADER_LEN: usize = field::CHECKSUM.end;
pub const PORT_IKE: u16 = 500;
pub const PORT_NATT: u16 = channel::NATT_PORT;

/// What a UDP datagram for one of the gateway's own addresses carries: the one rule of the
/// dataplane for telling IKE, ESP in UDP and NAT keepalives apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carries {
    /// IKE (RFC 7296): to port 500, or behind the four zero bytes of the non-ESP marker on
    /// port 4500 or a NAT-T port (RFC 3948 section 2.2).
    Ike,
    /// ESP in UDP on a NAT-T port (RFC 3948 section 2.1).
    Esp,
    /// A NAT-keepalive: one 0xff byte on a NAT-T port (RFC 3948 section 2.3).
    NattKeepalive,
    /// Anything else: for the gateway's own stack.
    Other,
}

/// Classifies a datagram to `dst_port` carrying `payload`; `natt` says whether the port takes
/// ESP in UDP (a tunnel's NAT-T port).
#[inline(always)]
pub fn classify(dst_port: u16, payload: &[u8], natt: bool) -> Carries {
    if dst_port == PORT_IKE {
        return Carries::Ike;
    }
    if !natt && dst_port != PORT_NATT {
        return Carries::Other;
    }
    match payload {
        [0xff] => Carries::NattKeepalive,
        [0, 0, 0, 0, ..] => Carries::Ike,
        _ if natt => Carries::Esp,
        _ => Carries::Other,
    }
}

/// A checked view of a UDP datagram: the length field fits the buffer.
pub struct Datagram<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Datagram<T> {
    #[inline(always)]
    pub fn new_checked(buf: T) -> Result<Self> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let len = usize::from(be16(b, field::LENGTH.start));
        if len < HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if len > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(Datagram { buf })
    }
    #[inline(always)]
    pub fn src_port(&self) -> u16 {
        be16(self.buf.as_ref(), field::SRC_PORT.start)
    }
    #[inline(always)]
    pub fn dst_port(&self) -> u16 {
        be16(self.buf.as_ref(), field::DST_PORT.start)
    }
    #[inline(always)]
    pub fn len(&self) -> usize {
        usize::from(be16(self.buf.as_ref(), field::LENGTH.start))
    }
    pub fn is_empty(&self) -> bool {
        self.len() == HEADER_LEN
    }
    #[inline(always)]
    pub fn payload(&self) -> &[u8] {
        &self.buf.as_ref()[HEADER_LEN..self.len()]
    }
}

/// A UDP header. ESP-in-UDP sends checksum 0 (RFC 3948 section 2.1), so `emit` writes 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload_len: usize,
}

impl Repr {
    #[inline(always)]
    pub fn emit(&self, out: &mut [u8; HEADER_LEN]) {
        out[field::SRC_PORT].copy_from_slice(&self.src_port.to_be_bytes());
        out[field::DST_PORT].copy_from_slice(&self.dst_port.to_be_bytes());
        out[field::LENGTH].copy_from_slice(&((HEADER_LEN + self.payload_len) as u16).to_be_bytes());
        out[field::CHECKSUM].copy_from_slice(&[0, 0]);
    }
}

/// The pseudo-header's sum, not folded: IPv4's (RFC 768) or IPv6's (RFC 8200 section 8.1);
/// `None` for addresses of two families.
fn pseudo_sum(src: IpAddr, dst: IpAddr, len: usize) -> Option<u64> {
    Some(match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let words = |a: std::net::Ipv4Addr| {
                let a = u32::from(a);
                u64::from(a >> 16) + u64::from(a & 0xffff)
            };
            words(s) + words(d) + u64::from(ipv4::PROTO_UDP) + (len as u64 & 0xffff)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            ipv6::pseudo_header_sum(&s, &d, len as u32, ipv6::NEXT_UDP)
        }
        _ => return None,
    })
}

/// The checksum field's value for `datagram` (its checksum field zeroed) from `src` to
/// `dst` (RFC 768; RFC 8200 section 8.1 for IPv6, where it is mandatory): 0 is sent as
/// 0xffff. `None` for addresses of two families.
pub fn checksum(src: IpAddr, dst: IpAddr, datagram: &[u8]) -> Option<u16> {
    let pseudo = pseudo_sum(src, dst, datagram.len())?;
    match !checksum::fold_words(&[checksum::fold64(pseudo), checksum::sum(datagram)]) {
        0 => Some(0xffff),
        c => Some(c),
    }
}

/// Whether an IPv6 `datagram` (checksum included) sums to all ones with its pseudo-header:
/// RFC 8200 section 8.1, where a zero checksum is an error too.
pub fn verify6(src: &Ipv6Addr, dst: &Ipv6Addr, datagram: &[u8]) -> bool {
    let Some(pseudo) = pseudo_sum((*src).into(), (*dst).into(), datagram.len()) else {
        return false;
    };
    datagram.get(field::CHECKSUM).is_some_and(|c| c != [0, 0])
        && checksum::fold_words(&[checksum::fold64(pseudo), checksum::sum(datagram)]) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ike_esp_and_keepalives_are_told_apart() {
        use Carries::*;
        let esp = [0, 0, 0x10, 1, 0, 0, 0, 1];
        let marker = [0, 0, 0, 0, 0x21, 0x20];
        for (port, payload, natt, want) in [
            (500, &esp[..], false, Ike),
            (500, &esp[..], true, Ike),
            (4500, &marker[..], false, Ike),
            (4500, &marker[..], true, Ike),
            (4501, &marker[..], true, Ike),
            (4501, &marker[..], false, Other),
            (4500, &esp[..], true, Esp),
            (4500, &esp[..], false, Other),
            (4500, &[0xff][..], true, NattKeepalive),
            (4500, &[0xff, 0][..], true, Esp),
            (53, &esp[..], false, Other),
        ] {
            assert_eq!(
                classify(port, payload, natt),
                want,
                "{port} {payload:?} {natt}"
            );
        }
    }

    #[test]
    fn roundtrip_and_length_checks() {
        let mut b = [0u8; 12];
        let mut h = [0u8; HEADER_LEN];
        Repr {
            src_port: 4500,
            dst_port: 4501,
            payload_len: 4,
        }
        .emit(&mut h);
        assert_eq!(h, [0x11, 0x94, 0x11, 0x95, 0, 12, 0, 0]);
        b[..8].copy_from_slice(&h);
        let d = Datagram::new_checked(&b[..]).unwrap();
        assert_eq!(
            (d.src_port(), d.dst_port(), d.payload().len()),
            (4500, 4501, 4)
        );
        assert_eq!(
            Datagram::new_checked(&b[..11]).err(),
            Some(WireError::Truncated)
        );
        b[5] = 7;
        assert_eq!(
            Datagram::new_checked(&b[..]).err(),
            Some(WireError::Malformed)
        );
    }
}
