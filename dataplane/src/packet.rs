//! The buffer a packet lives in while the dataplane works on it in place.
//!
//! The packet path is written against this trait so that the same code runs on DPDK mbufs in
//! the workers and on plain heap buffers in tests, benches and fuzzing.

/// A contiguous packet that can grow and shrink at both ends without copying, as an mbuf can.
pub trait PacketBuf {
    fn data(&self) -> &[u8];
    fn data_mut(&mut self) -> &mut [u8];
    fn headroom(&self) -> usize;
    fn tailroom(&self) -> usize;
    /// Extends the packet at the front by `n` bytes and returns them, or `None` without
    /// change if there is not enough headroom. The bytes keep whatever they held before.
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]>;
    /// Extends the packet at the back by `n` bytes and returns them, or `None` without change.
    fn append(&mut self, n: usize) -> Option<&mut [u8]>;
    /// Removes `n` bytes from the front; false without change if the packet is shorter.
    fn adj(&mut self, n: usize) -> bool;
    /// Removes `n` bytes from the back; false without change if the packet is shorter.
    fn trim(&mut self, n: usize) -> bool;
    fn len(&self) -> usize {
        self.data().len()
    }
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Shortens the packet to `len` bytes (no-op when it is not longer).
    fn truncate(&mut self, len: usize) {
        let cur = self.len();
        if cur > len {
            self.trim(cur - len);
        }
    }
}

/// A heap buffer with head- and tailroom, laid out like an mbuf.
#[derive(Clone, Debug)]
pub struct VecBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl VecBuf {
    /// The headroom an mbuf has by default (RTE_PKTMBUF_HEADROOM).
    pub const HEADROOM: usize = 128;

    pub fn new(bytes: &[u8]) -> VecBuf {
        Self::with_room(Self::HEADROOM, bytes, 128)
    }

    pub fn with_room(headroom: usize, bytes: &[u8], tailroom: usize) -> VecBuf {
        let mut buf = vec![0u8; headroom + bytes.len() + tailroom];
        buf[headroom..headroom + bytes.len()].copy_from_slice(bytes);
        VecBuf {
            buf,
            start: headroom,
            end: headroom + bytes.len(),
        }
    }
}

impl PacketBuf for VecBuf {
    fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.end]
    }
    fn headroom(&self) -> usize {
        self.start
    }
    fn tailroom(&self) -> usize {
        self.buf.len() - self.end
    }
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.start {
            return None;
        }
        self.start -= n;
        Some(&mut self.buf[self.start..self.start + n])
    }
    fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.tailroom() {
            return None;
        }
        let old = self.end;
        self.end += n;
        Some(&mut self.buf[old..self.end])
    }
    fn adj(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        self.start += n;
        true
    }
    fn trim(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        self.end -= n;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_shrinks_in_place() {
        let mut b = VecBuf::with_room(4, &[1, 2, 3], 2);
        assert!(b.prepend(5).is_none());
        assert!(b.append(3).is_none());
        b.prepend(2).unwrap().copy_from_slice(&[8, 9]);
        b.append(2).unwrap().copy_from_slice(&[4, 5]);
        assert_eq!(b.data(), &[8, 9, 1, 2, 3, 4, 5]);
        assert!(b.adj(3) && b.trim(1));
        assert_eq!(b.data(), &[2, 3, 4]);
        assert!(!b.adj(4) && !b.trim(4));
        // What adj removed is still in the headroom, as in an mbuf.
        assert_eq!(b.prepend(1).unwrap(), &[1]);
    }
}
