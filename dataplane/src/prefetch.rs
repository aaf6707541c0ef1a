//! Software prefetch. With thousands of tunnels each packet's SA, counters and lookup entries
//! are far from the core, and the pipeline would meet their misses one packet at a time;
//! asking for them a stage early (as VPP's nodes and librte_ipsec do) lets them overlap.

/// Asks for the cache line holding `p`. A hint: it never faults, whatever the address.
#[inline(always)]
pub fn line<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing architecturally and cannot fault.
    #[allow(unused_unsafe)]
    unsafe {
        core::arch::x86_64::_mm_prefetch(p.cast::<i8>(), core::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The first two cache lines of `*v`: where an SA keeps what every packet touches
/// (`sa::OutboundSa`, `sa::InboundSa`).
#[inline(always)]
pub fn hot_lines<T>(v: &T) {
    let p = (v as *const T).cast::<u8>();
    let mut off = 0;
    while off < std::mem::size_of::<T>().min(128) {
        line(p.wrapping_add(off));
        off += 64;
    }
}
