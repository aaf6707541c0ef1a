//! ARP for IPv4 over Ethernet (RFC 826).

use super::ethernet::Mac;
use super::{be16, be32, Result, WireError};
use std::net::Ipv4Addr;

pub const LEN: usize = 28;
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

impl Repr {
    /// Parses an ARP body (after the Ethernet header). Other hardware/protocol types are
    /// malformed for us.
    pub fn parse(b: &[u8]) -> Result<Repr> {
        if b.len() < LEN {
            return Err(WireError::Truncated);
        }
        if be16(b, 0) != 1 || be16(b, 2) != 0x0800 || b[4] != 6 || b[5] != 4 {
            return Err(WireError::Malformed);
        }
        let op = be16(b, 6);
        if op != OP_REQUEST && op != OP_REPLY {
            return Err(WireError::Malformed);
        }
        let mac = |at: usize| {
            let mut m = [0; 6];
            m.copy_from_slice(&b[at..at + 6]);
            Mac(m)
        };
        Ok(Repr {
            op,
            sender_mac: mac(8),
            sender_ip: Ipv4Addr::from(be32(b, 14)),
            target_mac: mac(18),
            target_ip: Ipv4Addr::from(be32(b, 24)),
        })
    }

    pub fn emit(&self, out: &mut [u8; LEN]) {
        out[0..2].copy_from_slice(&1u16.to_be_bytes());
        out[2..4].copy_from_slice(&0x0800u16.to_be_bytes());
        out[4] = 6;
        out[5] = 4;
        out[6..8].copy_from_slice(&self.op.to_be_bytes());
        out[8..14].copy_from_slice(&self.sender_mac.0);
        out[14..18].copy_from_slice(&self.sender_ip.octets());
        out[18..24].copy_from_slice(&self.target_mac.0);
        out[24..28].copy_from_slice(&self.target_ip.octets());
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
