//! UDP headers (RFC 768), as used for ESP-in-UDP (RFC 3948).

use super::{be16, Result, WireError};

pub const HEADER_LEN: usize = 8;
pub const PORT_IKE: u16 = 500;
pub const PORT_NATT: u16 = 4500;

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
        let len = usize::from(be16(b, 4));
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
        be16(self.buf.as_ref(), 0)
    }
    #[inline(always)]
    pub fn dst_port(&self) -> u16 {
        be16(self.buf.as_ref(), 2)
    }
    #[inline(always)]
    pub fn len(&self) -> usize {
        usize::from(be16(self.buf.as_ref(), 4))
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
        out[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        out[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        out[4..6].copy_from_slice(&((HEADER_LEN + self.payload_len) as u16).to_be_bytes());
        out[6..8].copy_from_slice(&[0, 0]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
