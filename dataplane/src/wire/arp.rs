//! ARP for IPv4 over Ethernet (RFC 826).

use super::ethernet::Mac;
use super::{be16, be32, Result, WireError};
use std::net::Ipv4Addr;

pub const LEN: usize = field::TPA.end;
pub const OP_REQUEST: u16 = 1;
pub const OP_REPLY: u16 = 2;

/// An ARP packet for IPv4 over Ethernet, the only kind a gateway needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub op: u16,
    pub sender_mac: Mac,
    pub sender_ip: Ipv4Addr,
    pub target_mac: Mac,
    pub target_ip: Ipv4Addr,
}

/// Where each field of an Ethernet/IPv4 ARP body lies.
pub mod field {
    pub type Field = core::ops::Range<usize>;
    pub const HTYPE: Field = 0..2;
    pub const PTYPE: Field = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Field = 6..8;
    pub const SHA: Field = 8..14;
    pub const SPA: Field = 14..18;
    pub const THA: Field = 18..24;
    pub const TPA: Field = 24..28;
}

impl Repr {
    /// Parses an ARP body (after the Ethernet header). Other hardware/protocol types are
    /// malformed for us.
    pub fn parse(b: &[u8]) -> Result<Repr> {
        if b.len() < LEN {
            return Err(WireError::Truncated);
        }
        if be16(b, field::HTYPE.start) != 1
            || be16(b, field::PTYPE.start) != 0x0800
            || b[field::HLEN] != 6
            || b[field::PLEN] != 4
        {
            return Err(WireError::Malformed);
        }
        let op = be16(b, field::OPER.start);
        if op != OP_REQUEST && op != OP_REPLY {
            return Err(WireError::Malformed);
        }
        let mac = |at: field::Field| {
            let mut m = [0; 6];
            m.copy_from_slice(&b[at]);
            Mac(m)
        };
        Ok(Repr {
            op,
            sender_mac: mac(field::SHA),
            sender_ip: Ipv4Addr::from(be32(b, field::SPA.start)),
            target_mac: mac(field::THA),
            target_ip: Ipv4Addr::from(be32(b, field::TPA.start)),
        })
    }

    pub fn emit(&self, out: &mut [u8; LEN]) {
        out[field::HTYPE].copy_from_slice(&1u16.to_be_bytes());
        out[field::PTYPE].copy_from_slice(&0x0800u16.to_be_bytes());
        out[field::HLEN] = 6;
        out[field::PLEN] = 4;
        out[field::OPER].copy_from_slice(&self.op.to_be_bytes());
        out[field::SHA].copy_from_slice(&self.sender_mac.0);
        out[field::SPA].copy_from_slice(&self.sender_ip.octets());
        out[field::THA].copy_from_slice(&self.target_mac.0);
        out[field::TPA].copy_from_slice(&self.target_ip.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bytes_and_roundtrip() {
        let r = Repr {
            op: OP_REQUEST,
            sender_mac: Mac([2, 0, 0, 0, 1, 1]),
            sender_ip: Ipv4Addr::new(10, 1, 0, 1),
            target_mac: Mac([0; 6]),
            target_ip: Ipv4Addr::new(10, 1, 0, 10),
        };
        let mut b = [0u8; LEN];
        r.emit(&mut b);
        assert_eq!(
            b,
            [
                0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 1, 1, 10, 1, 0, 1, 0, 0, 0, 0, 0, 0, 10, 1, 0,
                10
            ]
        );
        assert_eq!(Repr::parse(&b), Ok(r));
        assert_eq!(Repr::parse(&b[..27]), Err(WireError::Truncated));
        b[7] = 9;
        assert_eq!(Repr::parse(&b), Err(WireError::Malformed));
    }
}
