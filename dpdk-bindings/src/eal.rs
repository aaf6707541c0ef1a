//! EAL lifetime and lcore/TSC queries.
//!
//! DPDK's EAL can be initialized at most once per process and cannot be
//! re-initialized after `rte_eal_cleanup`, so [`Eal`] is a process-wide
//! singleton guard. The free functions are usable from any thread (workers
//! do not have access to the guard).

use std::ffi::{c_char, CString};
use std::sync::atomic::{AtomicU8, Ordering};

use crate::error::{Error, Result};
use crate::sys;

const UNINIT: u8 = 0;
const STARTING: u8 = 1;
const RUNNING: u8 = 2;
const FINISHED: u8 = 3;

/// Process-wide EAL state. Besides guarding double init, it lets destructors
/// of pools, rings and mbufs skip DPDK calls once the EAL memory is gone.
static STATE: AtomicU8 = AtomicU8::new(UNINIT);

/// Upper bound of lcore ids (RTE_MAX_LCORE of this DPDK build).
pub const MAX_LCORE: u32 = sys::RTE_MAX_LCORE;

/// Guard for an initialized EAL; dropping it runs `rte_eal_cleanup`.
#[derive(Debug)]
pub struct Eal {
    // EAL may keep pointers into argv (it reorders it in place), so the
    // strings must outlive the EAL.
    _args: Vec<CString>,
    _argv: Vec<*mut c_char>,
}

// SAFETY: the raw argv pointers are never dereferenced by Rust and EAL itself
// does not use argv from other threads after init.
unsafe impl Send for Eal {}
// SAFETY: Eal exposes only `&self` methods that call thread-safe EAL queries.
unsafe impl Sync for Eal {}

impl Eal {
    /// Initializes the EAL with `args` (EAL options only; the program name
    /// is prepended). Fails with `EALREADY` on any call after the first
    /// successful or in-progress one.
    pub fn init(args: &[String]) -> Result<Eal> {
        const OP: &str = "rte_eal_init";
        let mut cargs = Vec::with_capacity(args.len() + 1);
        cargs.push(program_name());
        for a in args {
            cargs.push(CString::new(a.as_str()).map_err(|_| Error::new(OP, libc::EINVAL))?);
        }
        let argc = i32::try_from(cargs.len()).map_err(|_| Error::new(OP, libc::E2BIG))?;

        if STATE
            .compare_exchange(UNINIT, STARTING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(Error::new(OP, libc::EALREADY));
        }
        let mut argv: Vec<*mut c_char> = cargs.iter().map(|c| c.as_ptr().cast_mut()).collect();
        argv.push(std::ptr::null_mut());
        // SAFETY: argv holds argc valid NUL-terminated strings plus a NULL
        // terminator, all kept alive in the returned Eal. EAL only permutes
        // the pointer array, never writes through the string pointers.
        let ret = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if ret < 0 {
            let err = Error::from_rte_errno(OP);
            // DPDK allows a retry only after some failures; we never retry.
            STATE.store(FINISHED, Ordering::Release);
            return Err(err);
        }
        STATE.store(RUNNING, Ordering::Release);
        Ok(Eal {
            _args: cargs,
            _argv: argv,
        })
    }

    /// Id of the main lcore (the thread that called [`Eal::init`]).
    pub fn main_lcore(&self) -> u32 {
        // SAFETY: plain read of the EAL configuration.
        unsafe { sys::rte_get_main_lcore() }
    }

    /// Number of enabled lcores, main included.
    pub fn lcore_count(&self) -> u32 {
        // SAFETY: plain read of the EAL configuration.
        unsafe { sys::rte_lcore_count() }
    }

    /// Whether `id` is an lcore enabled by the EAL arguments.
    pub fn is_lcore_enabled(&self, id: u32) -> bool {
        lcore_enabled(id)
    }

    /// NUMA socket of lcore `id`; `-1` (SOCKET_ID_ANY) for an invalid id.
    pub fn lcore_socket(&self, id: u32) -> i32 {
        if id >= MAX_LCORE {
            return sys::SOCKET_ID_ANY;
        }
        // SAFETY: id is below RTE_MAX_LCORE, the size of the lcore table
        // this function indexes without a bounds check.
        let socket = unsafe { sys::rte_lcore_to_socket_id(id) };
        i32::try_from(socket).unwrap_or(sys::SOCKET_ID_ANY)
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // Workers still running closures would touch memory that cleanup
        // unmaps, so wait for them first (this blocks on a looping worker).
        // SAFETY: called from the thread that owns the EAL guard; waiting on
        // idle lcores returns immediately.
        unsafe { sys::rte_eal_mp_wait_lcore() };
        STATE.store(FINISHED, Ordering::Release);
        // SAFETY: EAL was initialized by this guard and is cleaned up once.
        unsafe { sys::rte_eal_cleanup() };
    }
}

/// Whether an [`Eal`] guard is alive (init succeeded, not yet cleaned up).
pub fn is_running() -> bool {
    STATE.load(Ordering::Acquire) == RUNNING
}

/// Error unless the EAL is running; constructors call this because DPDK
/// allocators dereference EAL state without checking it.
pub fn ensure_running(op: &'static str) -> Result<()> {
    if is_running() {
        Ok(())
    } else {
        Err(Error::new(op, libc::ENODEV))
    }
}

/// Lcore id of the calling thread (`u32::MAX`, LCORE_ID_ANY, for threads
/// not created by the EAL).
#[inline]
pub fn current_lcore() -> u32 {
    // SAFETY: reads a thread-local.
    unsafe { sys::espgw_lcore_id() }
}

/// Current TSC value (cycles), as `rte_rdtsc`. Inline on x86-64: workers read it twice per
/// poll, and a call into the shim cost more than the instruction.
#[inline(always)]
pub fn tsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: rdtsc reads the time-stamp counter; no memory access.
    return unsafe { core::arch::x86_64::_rdtsc() };
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: executes the EAL's rte_rdtsc; no memory access.
    unsafe {
        sys::espgw_rdtsc()
    }
}

/// TSC frequency measured by the EAL (0 before init).
pub fn tsc_hz() -> u64 {
    // SAFETY: reads a global set during EAL init.
    unsafe { sys::espgw_tsc_hz() }
}

/// Before init DPDK's zeroed config reports every lcore as enabled, hence
/// the running check.
pub(crate) fn lcore_enabled(id: u32) -> bool {
    // SAFETY: rte_lcore_is_enabled bounds-checks id itself.
    is_running() && id < MAX_LCORE && unsafe { sys::rte_lcore_is_enabled(id) } != 0
}

/// argv[0]: the executable name, falling back to a fixed one.
fn program_name() -> CString {
    std::env::args()
        .next()
        .and_then(|a| CString::new(a).ok())
        .unwrap_or_else(|| CString::from(c"espgw"))
}
