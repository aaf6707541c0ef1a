//! DPDK telemetry commands, so `dpdk-telemetry.py` shows the gateway's counters live:
//! `/espgw/stats` (global counters) and `/espgw/sa/list` (per-SA settings and counters).

use crate::stats::Sources;
use dpdk_sys::telemetry::{self, respond};
use dpdk_sys::{sys, TelContainer, TelData};
use std::ffi::c_char;
use std::os::raw::c_int;
use std::sync::{Arc, OnceLock};

static SOURCES: OnceLock<Arc<Sources>> = OnceLock::new();

/// Registers the commands; call once, before or after EAL init.
pub fn install(sources: Arc<Sources>) -> dpdk_sys::Result<()> {
    if SOURCES.set(sources).is_err() {
        return Ok(());
    }
    telemetry::register(
        c"/espgw/stats",
        c"espgw global counters, summed over workers",
        stats,
    )?;
    telemetry::register(
        c"/espgw/sa/list",
        c"espgw SAs: settings and counters, by SPI",
        sa_list,
    )
}

/// Answers a telemetry command with a dict that `fill` writes from the counters.
///
/// # Safety
/// `params` and `d` must be the arguments DPDK passed to the handler.
unsafe fn reply_dict(
    params: *const c_char,
    d: *mut sys::rte_tel_data,
    fill: impl FnOnce(&Sources, &mut TelData<'_>) -> dpdk_sys::Result<()>,
) -> c_int {
    // SAFETY: forwarded from the caller's contract.
    unsafe {
        respond(params, d, |_, t| {
            t.start_dict()?;
            match SOURCES.get() {
                Some(s) => fill(s, t),
                None => Ok(()),
            }
        })
    }
}

extern "C" fn stats(
    _cmd: *const c_char,
    params: *const c_char,
    d: *mut sys::rte_tel_data,
) -> c_int {
    // SAFETY: these are the arguments DPDK passed to this handler.
    unsafe {
        reply_dict(params, d, |s, t| {
            for (k, v) in s.global().into_iter().chain(s.main.fields()) {
                t.add_dict_u64(k, v)?;
            }
            Ok(())
        })
    }
}

extern "C" fn sa_list(
    _cmd: *const c_char,
    params: *const c_char,
    d: *mut sys::rte_tel_data,
) -> c_int {
    // SAFETY: these are the arguments DPDK passed to this handler.
    unsafe {
        reply_dict(params, d, |s, t| {
            for sa in &s.sas {
                let mut c = TelContainer::new_dict()?;
                c.add_dict_string(
                    "direction",
                    if sa.direction == crate::sa::Direction::In {
                        "in"
                    } else {
                        "out"
                    },
                )?;
                c.add_dict_string("tunnel", &sa.tunnel)?;
                c.add_dict_string("algorithm", sa.algorithm.name())?;
                c.add_dict_u64("esn", u64::from(sa.esn))?;
                c.add_dict_string("local", &sa.local.to_string())?;
                c.add_dict_string("remote", &sa.remote.to_string())?;
                for (k, v) in sa.counters.fields() {
                    c.add_dict_u64(k, v)?;
                }
                t.add_dict_container(&format!("{:#x}", sa.spi), c)?;
            }
            Ok(())
        })
    }
}
