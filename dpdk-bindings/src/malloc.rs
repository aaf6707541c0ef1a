//! DPDK's own heap (`rte_malloc`): memory from the EAL's huge pages (plain pages with
//! `--no-huge`), on a chosen NUMA socket, for tables that live as long as the process.

use std::ptr::NonNull;

use crate::eal;
use crate::sys;

/// `bytes` zeroed bytes aligned to `align` (a power of two) on `socket` (-1: any); `None` when
/// the EAL is not running or has not that much.
pub fn zmalloc_socket(bytes: usize, align: usize, socket: i32) -> Option<NonNull<u8>> {
    if !eal::is_running() {
        return None;
    }
    let align = u32::try_from(align).ok()?;
    // SAFETY: a NULL type name is allowed; DPDK checks size and alignment.
    let p = unsafe { sys::rte_zmalloc_socket(std::ptr::null(), bytes, align, socket) };
    NonNull::new(p.cast())
}

/// Returns a block to DPDK's heap.
///
/// # Safety
/// `p` came from [`zmalloc_socket`] and is not used afterwards.
pub unsafe fn free(p: NonNull<u8>) {
    if eal::is_running() {
        // SAFETY: from the caller's contract.
        unsafe { sys::rte_free(p.as_ptr().cast()) };
    }
}
