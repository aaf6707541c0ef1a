//! Ethernet II frames.

use super::{be16, Result, WireError};

/// Where each field lies in the header.
pub mod field {
    pub type Field = core::ops::Range<usize>;
    pub const DESTINATION: Field = 0..6;
    pub const SOURCE: Field = 6..12;
    pub const ETHERTYPE: Field = 12..14;
}

pub const HEADER_LEN: usize = field::ETHERTYPE.end;
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const BROADCAST: Mac = Mac::BROADCAST;

pub use channel::Mac;

/// A checked view of an Ethernet II frame.
pub struct Frame<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    #[inline(always)]
    pub fn new_checked(buf: T) -> Result<Self> {
        if buf.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Frame { buf })
    }
    #[inline(always)]
    pub fn dst(&self) -> Mac {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buf.as_ref()[field::DESTINATION]);
        Mac(m)
    }
    #[inline(always)]
    pub fn src(&self) -> Mac {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buf.as_ref()[field::SOURCE]);
        Mac(m)
    }
    #[inline(always)]
    pub fn ethertype(&self) -> u16 {
        be16(self.buf.as_ref(), field::ETHERTYPE.start)
    }
    #[inline(always)]
    pub fn payload(&self) -> &[u8] {
        &self.buf.as_ref()[HEADER_LEN..]
    }
}

/// The header fields of an Ethernet II frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub dst: Mac,
    pub src: Mac,
    pub ethertype: u16,
}

impl Repr {
    /// Writes the header into the first 14 bytes of `out`.
    #[inline(always)]
    pub fn emit(&self, out: &mut [u8; HEADER_LEN]) {
        out[field::DESTINATION].copy_from_slice(&self.dst.0);
        out[field::SOURCE].copy_from_slice(&self.src.0);
        out[field::ETHERTYPE].copy_from_slice(&self.ethertype.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_emit_roundtrip() {
        let r = Repr {
            dst: "02:00:00:00:01:01".parse().unwrap(),
            src: Mac([2, 0, 0, 0, 2, 2]),
            ethertype: ETHERTYPE_IPV4,
        };
        let mut b = [0u8; HEADER_LEN];
        r.emit(&mut b);
        assert_eq!(
            b,
            [2, 0, 0, 0, 1, 1, 2, 0, 0, 0, 2, 2, 0x08, 0x00],
            "exact bytes"
        );
        let f = Frame::new_checked(&b[..]).unwrap();
        assert_eq!(
            (f.dst(), f.src(), f.ethertype()),
            (r.dst, r.src, r.ethertype)
        );
        assert_eq!(
            Frame::new_checked(&b[..13]).err(),
            Some(WireError::Truncated)
        );
    }

    #[test]
    fn mac_parse_rejects_garbage() {
        for bad in [
            "",
            "02:00:00:00:01",
            "02:00:00:00:01:01:03",
            "zz:00:00:00:01:01",
            "2:0:0:0:1:1",
        ] {
            assert!(bad.parse::<Mac>().is_err(), "{bad}");
        }
        assert_eq!("ff:ff:ff:ff:ff:ff".parse::<Mac>().unwrap(), BROADCAST);
    }
}
