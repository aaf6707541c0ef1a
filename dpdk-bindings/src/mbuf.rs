//! Owned packet buffers (`rte_mbuf`).
//!
//! Plain fields (`data_off`, `pkt_len`, ...) are read directly for speed;
//! anything inline or union-nested goes through the C shim.

use std::ptr::NonNull;
use std::slice;

use crate::eal;
use crate::sys;

/// Default mbuf buffer size: 2048 bytes of data plus the default headroom.
pub const DEFAULT_BUF_SIZE: u16 =
    (sys::RTE_MBUF_DEFAULT_DATAROOM + sys::RTE_PKTMBUF_HEADROOM) as u16;

/// Default headroom reserved in front of the data of a fresh mbuf.
pub const HEADROOM: u16 = sys::RTE_PKTMBUF_HEADROOM as u16;

/// An owned mbuf chain; dropping it returns every segment to its pool.
///
/// Data accessors only cover the first segment. Callers that need the whole
/// packet must reject multi-segment mbufs with [`Mbuf::is_contiguous`].
/// Transparent over the pointer, so that a burst of raw pointers from `rx_burst` can be used as
/// a slice of `Mbuf`s where it lies.
#[derive(Debug)]
#[repr(transparent)]
pub struct Mbuf(NonNull<sys::rte_mbuf>);

// SAFETY: an Mbuf is exclusively owned; mbufs may be freed from any thread
// because mempool put is MT-safe.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of a raw mbuf (e.g. from `rx_burst` or a ring).
    ///
    /// # Safety
    /// `m` must be a valid, non-NULL mbuf that nobody else owns or frees,
    /// with refcnt 1, from a pool that outlives it.
    #[inline(always)]
    pub unsafe fn from_raw(m: *mut sys::rte_mbuf) -> Mbuf {
        // SAFETY: the caller guarantees m is non-NULL.
        Mbuf(unsafe { NonNull::new_unchecked(m) })
    }

    /// Gives up ownership without freeing (e.g. before `tx_burst`).
    #[inline(always)]
    pub fn into_raw(self) -> *mut sys::rte_mbuf {
        let p = self.0.as_ptr();
        std::mem::forget(self);
        p
    }

    /// Raw pointer, still owned by `self`.
    #[inline(always)]
    pub fn as_ptr(&self) -> *mut sys::rte_mbuf {
        self.0.as_ptr()
    }

    #[inline(always)]
    fn raw(&self) -> &sys::rte_mbuf {
        // SAFETY: self owns a valid mbuf for its whole lifetime.
        unsafe { self.0.as_ref() }
    }

    #[inline(always)]
    fn raw_mut(&mut self) -> &mut sys::rte_mbuf {
        // SAFETY: self owns the mbuf exclusively (&mut self).
        unsafe { self.0.as_mut() }
    }

    /// `rte_pktmbuf_mtod`: the first data byte of the first segment. Computed here rather than
    /// through the shim, since the fast path asks for it several times per packet.
    #[inline(always)]
    fn mtod(&self) -> *mut u8 {
        let m = self.raw();
        // SAFETY: data_off is within the segment's buffer by the mbuf invariants.
        unsafe { m.buf_addr.cast::<u8>().add(usize::from(m.data_off)) }
    }

    /// Bytes of the first segment (`data_off .. data_off + data_len`).
    #[inline(always)]
    pub fn data(&self) -> &[u8] {
        let len = usize::from(self.raw().data_len);
        // SAFETY: mtod points at data_len initialized bytes inside the
        // segment's buffer (DPDK memory is zero-filled when mapped and only
        // ever written by code), borrowed immutably through &self.
        unsafe { slice::from_raw_parts(self.mtod(), len) }
    }

    /// Mutable bytes of the first segment.
    #[inline(always)]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let len = usize::from(self.raw().data_len);
        // SAFETY: as in `data`, and &mut self gives exclusive access.
        unsafe { slice::from_raw_parts_mut(self.mtod(), len) }
    }

    /// Total packet length over all segments (`pkt_len`).
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.raw().pkt_len as usize
    }

    /// Whether the packet holds no bytes.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.raw().pkt_len == 0
    }

    /// Length of the first segment (`data_len`).
    #[inline(always)]
    pub fn data_len(&self) -> u16 {
        self.raw().data_len
    }

    /// Number of segments.
    #[inline(always)]
    pub fn segments(&self) -> u16 {
        self.raw().nb_segs
    }

    /// True for a single-segment mbuf, where [`Mbuf::data`] is the packet.
    #[inline(always)]
    pub fn is_contiguous(&self) -> bool {
        self.raw().nb_segs == 1
    }

    /// Free bytes in front of the data of the first segment.
    #[inline(always)]
    pub fn headroom(&self) -> u16 {
        self.raw().data_off
    }

    /// Free bytes after the data of the first segment.
    #[inline(always)]
    pub fn tailroom(&self) -> u16 {
        let m = self.raw();
        m.buf_len
            .saturating_sub(m.data_off)
            .saturating_sub(m.data_len)
    }

    /// Grows the packet at the front by `n` bytes and returns that new
    /// region (contents unspecified); `None`, unchanged, if headroom is short.
    #[inline(always)]
    pub fn prepend(&mut self, n: u16) -> Option<&mut [u8]> {
        // rte_pktmbuf_prepend, in Rust: plain field arithmetic on the first segment.
        let m = self.raw_mut();
        if n > m.data_off {
            return None;
        }
        m.data_off -= n;
        m.data_len = m.data_len.wrapping_add(n);
        m.pkt_len = m.pkt_len.wrapping_add(u32::from(n));
        let p = self.mtod();
        // SAFETY: on success p points at n bytes of this mbuf's buffer,
        // initialized memory (see `data`), borrowed via &mut self.
        NonNull::new(p)
            .map(|p| unsafe { slice::from_raw_parts_mut(p.as_ptr().cast::<u8>(), usize::from(n)) })
    }

    /// Grows the packet at the back by `n` bytes (in the last segment) and
    /// returns that new region; `None`, unchanged, if tailroom is short.
    #[inline(always)]
    pub fn append(&mut self, n: u16) -> Option<&mut [u8]> {
        let p = if self.is_contiguous() {
            // rte_pktmbuf_append on a single segment, in Rust.
            if n > self.tailroom() {
                return None;
            }
            let m = self.raw_mut();
            let at = usize::from(m.data_off) + usize::from(m.data_len);
            m.data_len += n;
            m.pkt_len = m.pkt_len.wrapping_add(u32::from(n));
            // SAFETY: at + n is within buf_len (tailroom checked above).
            unsafe { m.buf_addr.cast::<u8>().add(at) }.cast()
        } else {
            // SAFETY: valid, exclusively owned mbuf.
            unsafe { sys::espgw_pktmbuf_append(self.0.as_ptr(), n) }
        };
        // SAFETY: as in `prepend`.
        NonNull::new(p)
            .map(|p| unsafe { slice::from_raw_parts_mut(p.as_ptr().cast::<u8>(), usize::from(n)) })
    }

    /// Removes `n` bytes from the front; false, unchanged, if the first
    /// segment is shorter than `n`.
    #[inline(always)]
    pub fn adj(&mut self, n: u16) -> bool {
        // rte_pktmbuf_adj, in Rust.
        let m = self.raw_mut();
        if n > m.data_len {
            return false;
        }
        m.data_len -= n;
        m.data_off += n;
        m.pkt_len = m.pkt_len.wrapping_sub(u32::from(n));
        true
    }

    /// Removes `n` bytes from the back; false, unchanged, if the last
    /// segment is shorter than `n`.
    #[inline(always)]
    pub fn trim(&mut self, n: u16) -> bool {
        if !self.is_contiguous() {
            // SAFETY: valid, exclusively owned mbuf.
            return unsafe { sys::espgw_pktmbuf_trim(self.0.as_ptr(), n) == 0 };
        }
        let m = self.raw_mut();
        if n > m.data_len {
            return false;
        }
        m.data_len -= n;
        m.pkt_len = m.pkt_len.wrapping_sub(u32::from(n));
        true
    }

    /// Input port set by the receiving PMD.
    #[inline(always)]
    pub fn port(&self) -> u16 {
        self.raw().port
    }

    /// Sets the port field (metadata only; does not route the packet).
    #[inline(always)]
    pub fn set_port(&mut self, port: u16) {
        // SAFETY: exclusive access through &mut self.
        unsafe { self.0.as_mut().port = port };
    }

    /// RSS hash from the NIC; meaningful only if `ol_flags` has
    /// `RTE_MBUF_F_RX_RSS_HASH`.
    #[inline(always)]
    pub fn rss_hash(&self) -> u32 {
        // SAFETY: valid mbuf; read-only.
        unsafe { sys::espgw_pktmbuf_rss_hash(self.0.as_ptr()) }
    }

    /// An application tag carried with the mbuf (stored in `hash.usr`, so it replaces the
    /// RSS hash): how the dataplane tells a worker what to do with a handed-off packet.
    #[inline(always)]
    pub fn tag(&self) -> u32 {
        // SAFETY: valid mbuf; read-only.
        unsafe { sys::espgw_pktmbuf_tag(self.0.as_ptr()) }
    }

    #[inline(always)]
    pub fn set_tag(&mut self, tag: u32) {
        // SAFETY: valid mbuf owned by us (&mut self).
        unsafe { sys::espgw_pktmbuf_set_tag(self.0.as_ptr(), tag) }
    }

    /// Offload flags (`RTE_MBUF_F_*`).
    #[inline(always)]
    pub fn ol_flags(&self) -> u64 {
        self.raw().ol_flags
    }
}

impl Drop for Mbuf {
    #[inline(always)]
    fn drop(&mut self) {
        // After rte_eal_cleanup the buffer memory is unmapped: leak instead.
        if eal::is_running() {
            // SAFETY: we own the mbuf and never use it again.
            unsafe { sys::espgw_pktmbuf_free(self.0.as_ptr()) };
        }
    }
}

/// Frees every non-NULL entry of `bufs` in one call and sets it to NULL.
///
/// # Safety
/// Each non-NULL entry must be a valid mbuf owned by the caller (as from
/// [`crate::port::rx_burst`] or [`Mbuf::into_raw`]) and not used afterwards.
pub unsafe fn free_bulk(bufs: &mut [*mut sys::rte_mbuf]) {
    for chunk in bufs.chunks_mut(u32::MAX as usize) {
        // SAFETY: the caller guarantees ownership of the entries; the chunk
        // length fits in u32; NULL entries are skipped by DPDK.
        unsafe { sys::espgw_pktmbuf_free_bulk(chunk.as_mut_ptr(), chunk.len() as u32) };
        chunk.fill(std::ptr::null_mut());
    }
}
