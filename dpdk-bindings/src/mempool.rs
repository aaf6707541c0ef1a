//! Packet-buffer pools (`rte_mempool` created by `rte_pktmbuf_pool_create`).

use std::ffi::CString;
use std::ptr::NonNull;

use crate::eal;
use crate::error::{Error, Result};
use crate::mbuf::Mbuf;
use crate::sys;

/// An owned pktmbuf pool. Freed on drop, unless mbufs are still out (see
/// [`Drop`](#impl-Drop-for-Mempool)).
#[derive(Debug)]
pub struct Mempool(NonNull<sys::rte_mempool>);

// SAFETY: the default mempool ops (ring_mp_mc) are multi-producer and
// multi-consumer; the per-lcore cache is only touched by its own lcore, and
// non-EAL threads bypass it.
unsafe impl Send for Mempool {}
// SAFETY: see Send; all `&self` methods are thread-safe mempool calls.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Creates a pool of `n` mbufs with `data_room` bytes of buffer each
    /// (headroom included, so typically `RTE_MBUF_DEFAULT_BUF_SIZE`), a
    /// per-lcore cache of `cache` objects, on NUMA `socket` (-1: any).
    pub fn pktmbuf(name: &str, n: u32, cache: u32, data_room: u16, socket: i32) -> Result<Mempool> {
        const OP: &str = "rte_pktmbuf_pool_create";
        eal::ensure_running(OP)?;
        let cname = CString::new(name).map_err(|_| Error::new(OP, libc::EINVAL))?;
        // SAFETY: EAL is running and cname is a valid C string; DPDK copies
        // the name. priv_size 0: no application-private area per mbuf.
        let ptr =
            unsafe { sys::rte_pktmbuf_pool_create(cname.as_ptr(), n, cache, 0, data_room, socket) };
        NonNull::new(ptr)
            .map(Mempool)
            .ok_or_else(|| Error::from_rte_errno(OP))
    }

    /// Takes one mbuf (reset, length 0, default headroom); `None` when the
    /// pool is exhausted.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool pointer is valid for self's lifetime.
        let m = unsafe { sys::espgw_pktmbuf_alloc(self.0.as_ptr()) };
        // SAFETY: a non-NULL result is a fresh mbuf we now own exclusively.
        NonNull::new(m).map(|m| unsafe { Mbuf::from_raw(m.as_ptr()) })
    }

    /// Free objects, per-lcore caches included.
    pub fn available(&self) -> u32 {
        // SAFETY: the pool pointer is valid; the count is a racy snapshot.
        unsafe { sys::rte_mempool_avail_count(self.0.as_ptr()) }
    }

    /// Objects currently allocated (held by the application or by ports).
    pub fn in_use(&self) -> u32 {
        // SAFETY: as in `available`.
        unsafe { sys::rte_mempool_in_use_count(self.0.as_ptr()) }
    }

    /// Raw pool pointer, e.g. for queue setup; valid while `self` lives.
    pub fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.0.as_ptr()
    }
}

impl Drop for Mempool {
    /// Frees the pool only when every mbuf is back and the EAL is still up.
    /// Otherwise the pool is leaked on purpose: outstanding [`Mbuf`]s (or a
    /// port's RX ring) would otherwise free into released memory.
    fn drop(&mut self) {
        if !eal::is_running() || self.in_use() != 0 {
            return;
        }
        // SAFETY: no object of the pool is in use, so nothing refers to it.
        unsafe { sys::rte_mempool_free(self.0.as_ptr()) };
    }
}
