//! DPDK mbufs as packet buffers: the packet path works on them in place.

use crate::packet::PacketBuf;
use dpdk_sys::Mbuf;

impl PacketBuf for Mbuf {
    #[inline(always)]
    fn len(&self) -> usize {
        usize::from(self.data_len())
    }
    #[inline(always)]
    fn data(&self) -> &[u8] {
        Mbuf::data(self)
    }
    #[inline(always)]
    fn data_mut(&mut self) -> &mut [u8] {
        Mbuf::data_mut(self)
    }
    #[inline(always)]
    fn headroom(&self) -> usize {
        usize::from(Mbuf::headroom(self))
    }
    #[inline(always)]
    fn tailroom(&self) -> usize {
        usize::from(Mbuf::tailroom(self))
    }
    #[inline(always)]
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        Mbuf::prepend(self, u16::try_from(n).ok()?)
    }
    #[inline(always)]
    fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        Mbuf::append(self, u16::try_from(n).ok()?)
    }
    #[inline(always)]
    fn adj(&mut self, n: usize) -> bool {
        match u16::try_from(n) {
            Ok(n) => Mbuf::adj(self, n),
            Err(_) => false,
        }
    }
    #[inline(always)]
    fn trim(&mut self, n: usize) -> bool {
        match u16::try_from(n) {
            Ok(n) => Mbuf::trim(self, n),
            Err(_) => false,
        }
    }
}
