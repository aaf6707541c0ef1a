//! Lock-free FIFO of pointers (`rte_ring`), e.g. to hand mbufs between
//! lcores.

use std::ffi::{c_uint, c_void, CString};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::eal;
use crate::error::{Error, Result};
use crate::sys;

/// An owned `rte_ring`. Objects still queued when it drops are not freed.
///
/// A single-producer (or single-consumer) ring is only correct if one
/// thread at a time enqueues (dequeues). Since `Ring` is `Sync`, that side
/// is guarded by a flag: a call that finds another one in progress on the
/// same side transfers nothing and returns 0 instead of racing.
#[derive(Debug)]
pub struct Ring {
    ptr: NonNull<sys::rte_ring>,
    single_producer: bool,
    single_consumer: bool,
    enq_busy: AtomicBool,
    deq_busy: AtomicBool,
}

// SAFETY: rte_ring is designed for cross-thread use; the SP/SC sides are
// serialized by the busy flags.
unsafe impl Send for Ring {}
// SAFETY: see Send.
unsafe impl Sync for Ring {}

impl Ring {
    /// Creates a ring of `count` slots (a power of two; usable capacity is
    /// `count - 1`) on NUMA `socket` (-1: any).
    pub fn new(
        name: &str,
        count: u32,
        socket: i32,
        single_producer: bool,
        single_consumer: bool,
    ) -> Result<Ring> {
        const OP: &str = "rte_ring_create";
        eal::ensure_running(OP)?;
        if !count.is_power_of_two() || count < 2 {
            return Err(Error::new(OP, libc::EINVAL));
        }
        let cname = CString::new(name).map_err(|_| Error::new(OP, libc::EINVAL))?;
        let mut flags = 0;
        if single_producer {
            flags |= sys::RING_F_SP_ENQ;
        }
        if single_consumer {
            flags |= sys::RING_F_SC_DEQ;
        }
        // SAFETY: EAL is running, cname is a valid C string (copied by DPDK).
        let ptr = unsafe { sys::rte_ring_create(cname.as_ptr(), count, socket, flags) };
        let ptr = NonNull::new(ptr).ok_or_else(|| Error::from_rte_errno(OP))?;
        Ok(Ring {
            ptr,
            single_producer,
            single_consumer,
            enq_busy: AtomicBool::new(false),
            deq_busy: AtomicBool::new(false),
        })
    }

    /// Enqueues as many of `objs` as fit, in order; returns that number.
    #[inline]
    pub fn enqueue_burst(&self, objs: &[*mut c_void]) -> usize {
        let n = clamp_len(objs.len());
        let _guard = match SideGuard::take(&self.enq_busy, self.single_producer) {
            Some(g) => g,
            None => return 0,
        };
        // SAFETY: valid ring; objs holds n pointers that the ring only copies;
        // the guard ensures a single producer on an SP ring.
        unsafe { sys::espgw_ring_enqueue_burst(self.ptr.as_ptr(), objs.as_ptr(), n) as usize }
    }

    /// Dequeues up to `objs.len()` objects into `objs`; returns that number.
    #[inline]
    pub fn dequeue_burst(&self, objs: &mut [*mut c_void]) -> usize {
        let n = clamp_len(objs.len());
        let _guard = match SideGuard::take(&self.deq_busy, self.single_consumer) {
            Some(g) => g,
            None => return 0,
        };
        // SAFETY: valid ring; objs has room for n pointers; the guard ensures
        // a single consumer on an SC ring.
        unsafe { sys::espgw_ring_dequeue_burst(self.ptr.as_ptr(), objs.as_mut_ptr(), n) as usize }
    }

    /// [`Ring::enqueue_burst`] for mbuf pointers. Ownership of the enqueued
    /// mbufs moves into the ring (whoever dequeues them owns them).
    #[inline]
    pub fn enqueue_mbufs(&self, mbufs: &[*mut sys::rte_mbuf]) -> usize {
        // SAFETY: *mut rte_mbuf and *mut c_void have the same layout.
        let objs = unsafe {
            std::slice::from_raw_parts(mbufs.as_ptr().cast::<*mut c_void>(), mbufs.len())
        };
        self.enqueue_burst(objs)
    }

    /// [`Ring::dequeue_burst`] for a ring that carries only mbuf pointers.
    #[inline]
    pub fn dequeue_mbufs(&self, mbufs: &mut [*mut sys::rte_mbuf]) -> usize {
        // SAFETY: same layout; the borrow of mbufs is handed over for the call.
        let objs = unsafe {
            std::slice::from_raw_parts_mut(mbufs.as_mut_ptr().cast::<*mut c_void>(), mbufs.len())
        };
        self.dequeue_burst(objs)
    }

    /// Objects currently queued (a snapshot).
    pub fn count(&self) -> u32 {
        // SAFETY: valid ring; read-only.
        unsafe { sys::espgw_ring_count(self.ptr.as_ptr()) }
    }

    /// Free slots (a snapshot).
    pub fn free_count(&self) -> u32 {
        // SAFETY: valid ring; read-only.
        unsafe { sys::espgw_ring_free_count(self.ptr.as_ptr()) }
    }

    /// Raw ring pointer, valid while `self` lives.
    pub fn as_ptr(&self) -> *mut sys::rte_ring {
        self.ptr.as_ptr()
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        if eal::is_running() {
            // SAFETY: we own the ring; &mut self means no call is in flight.
            unsafe { sys::rte_ring_free(self.ptr.as_ptr()) };
        }
    }
}

fn clamp_len(len: usize) -> c_uint {
    c_uint::try_from(len).unwrap_or(c_uint::MAX)
}

/// Holds one side of a single-producer/consumer ring for one call.
/// Acquire/Release also orders successive calls made from different threads.
struct SideGuard<'a>(Option<&'a AtomicBool>);

impl<'a> SideGuard<'a> {
    /// `None` if `exclusive` and another call holds the side.
    #[inline]
    fn take(flag: &'a AtomicBool, exclusive: bool) -> Option<SideGuard<'a>> {
        if !exclusive {
            return Some(SideGuard(None));
        }
        if flag.swap(true, Ordering::Acquire) {
            None
        } else {
            Some(SideGuard(Some(flag)))
        }
    }
}

impl Drop for SideGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        if let Some(flag) = self.0 {
            flag.store(false, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn side_guard_excludes_second_holder_until_dropped() {
        let flag = AtomicBool::new(false);
        let first = SideGuard::take(&flag, true);
        assert!(first.is_some());
        assert!(SideGuard::take(&flag, true).is_none());
        drop(first);
        assert!(SideGuard::take(&flag, true).is_some());
    }

    #[test]
    fn side_guard_is_free_for_multi_producer() {
        let flag = AtomicBool::new(false);
        let a = SideGuard::take(&flag, false);
        let b = SideGuard::take(&flag, false);
        assert!(a.is_some() && b.is_some());
        assert!(!flag.load(Ordering::Relaxed));
    }

    #[test]
    fn fails_without_eal() {
        // Without an EAL the constructor must fail, not crash.
        assert_eq!(
            Ring::new("r", 8, -1, true, true).unwrap_err().errno(),
            libc::ENODEV
        );
    }

    #[test]
    fn clamp_len_saturates() {
        assert_eq!(clamp_len(7), 7);
        assert_eq!(clamp_len(usize::MAX), c_uint::MAX);
    }
}
