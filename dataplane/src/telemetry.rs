//! DPDK telemetry commands, so `dpdk-telemetry.py` shows the gateway's counters live:
//! `/espgw/stats` (global counters), `/espgw/sa/list` (per-SA settings and counters) and
//! `/espgw/tunnel_map` (anchor groups and workers). They read what the main lcore's control
//! state shows as it changes (`control_state::view`).

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
    )?;
    telemetry::register(
        c"/espgw/tunnel_map",
        c"espgw anchor groups and workers: load factor, tunnels, SAs, packets, bytes",
        tunnel_map,
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
            for sa in s.sa_snapshots() {
                let mut c = TelContainer::new_dict()?;
                c.add_dict_string("direction", sa.direction.name())?;
                c.add_dict_string("tunnel", &sa.tunnel)?;
                c.add_dict_string("algorithm", sa.algorithm)?;
                c.add_dict_u64("esn", u64::from(sa.esn))?;
                c.add_dict_string("local", &sa.local)?;
                c.add_dict_string("remote", &sa.remote)?;
                c.add_dict_u64("worker", u64::from(sa.worker))?;
                for (k, v) in &sa.counters {
                    c.add_dict_u64(k, *v)?;
                }
                // Outbound SPIs are the peers' choice: two tunnels may share one.
                let key = match sa.direction {
                    crate::sa::Direction::In => sa.spi.clone(),
                    crate::sa::Direction::Out => format!("{} {}", sa.spi, sa.tunnel),
                };
                t.add_dict_container(&key, c)?;
            }
            Ok(())
        })
    }
}

extern "C" fn tunnel_map(
    _cmd: *const c_char,
    params: *const c_char,
    d: *mut sys::rte_tel_data,
) -> c_int {
    // SAFETY: these are the arguments DPDK passed to this handler.
    unsafe {
        reply_dict(params, d, |s, t| {
            for g in s.tunnel_map() {
                let mut gc = TelContainer::new_dict()?;
                // Telemetry has no floats in 22.11: the load factor as text.
                gc.add_dict_string("load_factor", &format!("{:.2}", g.load_factor))?;
                gc.add_dict_u64("tunnels", u64::from(g.tunnels))?;
                for w in &g.workers {
                    let mut wc = TelContainer::new_dict()?;
                    wc.add_dict_u64("tunnels", u64::from(w.tunnels))?;
                    wc.add_dict_u64("sas", w.sas as u64)?;
                    wc.add_dict_u64("packets", w.packets)?;
                    wc.add_dict_u64("bytes", w.bytes)?;
                    gc.add_dict_container(&format!("worker_{}", w.lcore), wc)?;
                }
                t.add_dict_container(&format!("group_{}", g.group), gc)?;
            }
            Ok(())
        })
    }
}
