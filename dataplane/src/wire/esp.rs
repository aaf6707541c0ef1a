//! The ESP header (RFC 4303 section 2) with the 8-byte explicit IV of AES-GCM (RFC 4106).

use super::{be32, Result, WireError};

/// Where each field lies, from the start of the ESP header.
pub mod field {
    pub type Field = core::ops::Range<usize>;
    pub const SPI: Field = 0..4;
    pub const SEQ: Field = 4..8;
    /// RFC 4106's explicit IV, first in the payload.
    pub const IV: Field = 8..16;
}

/// SPI + sequence number.
pub const HEADER_LEN: usize = field::SEQ.end;
/// RFC 4106 explicit IV.
pub const IV_LEN: usize = field::IV.end - field::IV.start;
/// RFC 4106 ICV with a 16-byte tag.
pub const ICV_LEN: usize = 16;
/// Pad Length + Next Header.
pub const TRAILER_LEN: usize = 2;
/// The smallest ESP packet with AES-GCM: header, IV, a 4-byte-aligned trailer, ICV.
pub const MIN_LEN: usize = HEADER_LEN + IV_LEN + 4 + ICV_LEN;

/// A checked view of an ESP packet long enough to hold header, IV, trailer and ICV.
pub struct Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    #[inline(always)]
    pub fn new_checked(buf: T) -> Result<Self> {
        if buf.as_ref().len() < MIN_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Packet { buf })
    }
    #[inline(always)]
    pub fn spi(&self) -> u32 {
        be32(self.buf.as_ref(), field::SPI.start)
    }
    /// The low 32 bits of the sequence number, as carried on the wire.
    #[inline(always)]
    pub fn seq(&self) -> u32 {
        be32(self.buf.as_ref(), field::SEQ.start)
    }
    #[inline(always)]
    pub fn iv(&self) -> [u8; IV_LEN] {
        let mut iv = [0; IV_LEN];
        iv.copy_from_slice(&self.buf.as_ref()[field::IV]);
        iv
    }
}

/// The ESP header and IV that precede the ciphertext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub spi: u32,
    pub seq: u32,
    pub iv: [u8; IV_LEN],
}

impl Repr {
    #[inline(always)]
    pub fn emit(&self, out: &mut [u8; HEADER_LEN + IV_LEN]) {
        out[field::SPI].copy_from_slice(&self.spi.to_be_bytes());
        out[field::SEQ].copy_from_slice(&self.seq.to_be_bytes());
        out[field::IV].copy_from_slice(&self.iv);
    }
}

/// RFC 4303 padding for a 4-byte-aligned trailer (GCM has a block size of 1).
#[inline(always)]
pub fn pad_len(payload_len: usize) -> usize {
    // (4 - (payload_len + 2) % 4) % 4, in two instructions.
    2usize.wrapping_sub(payload_len) & 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_bytes_and_padding() {
        let mut b = [0u8; 16];
        Repr {
            spi: 0x1001,
            seq: 7,
            iv: [0, 0, 0, 0, 0, 0, 0, 7],
        }
        .emit(&mut b);
        assert_eq!(b, [0, 0, 0x10, 1, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 7]);
        let mut full = [0u8; MIN_LEN];
        full[..16].copy_from_slice(&b);
        let p = Packet::new_checked(&full[..]).unwrap();
        assert_eq!((p.spi(), p.seq(), p.iv()[7]), (0x1001, 7, 7));
        assert_eq!(
            Packet::new_checked(&full[..MIN_LEN - 1]).err(),
            Some(WireError::Truncated)
        );
        assert_eq!(
            [pad_len(84), pad_len(85), pad_len(86), pad_len(87)],
            [2, 1, 0, 3]
        );
    }
}
