//! Running closures on EAL worker lcores.

use std::ffi::{c_int, c_void};
use std::panic::{self, AssertUnwindSafe};

use crate::eal;
use crate::error::{Error, Result};
use crate::sys;

/// Return value reported by [`wait`] for a closure that panicked.
pub const PANICKED: i32 = -1;

/// Runs `f` on worker `lcore_id`; its return value is collected by [`wait`].
/// Fails with `EINVAL` for the main or a disabled lcore and `EBUSY` if the
/// lcore is still running a previous closure.
pub fn launch<F>(lcore_id: u32, f: F) -> Result<()>
where
    F: FnOnce() -> i32 + Send + 'static,
{
    const OP: &str = "rte_eal_remote_launch";
    eal::ensure_running(OP)?;
    check_worker(OP, lcore_id)?;
    let arg = Box::into_raw(Box::new(f)).cast::<c_void>();
    // SAFETY: trampoline::<F> takes back exactly the Box<F> passed as arg;
    // lcore_id is an enabled worker.
    let ret = unsafe { sys::rte_eal_remote_launch(Some(trampoline::<F>), arg, lcore_id) };
    if ret < 0 {
        // The worker never saw arg, so ownership is still ours.
        // SAFETY: arg came from Box::into_raw above and was not consumed.
        drop(unsafe { Box::from_raw(arg.cast::<F>()) });
        return Err(Error::new(OP, ret));
    }
    Ok(())
}

/// Blocks until worker `lcore_id` is idle and returns the value of the last
/// closure it ran (0 if it never ran one, [`PANICKED`] if it panicked).
pub fn wait(lcore_id: u32) -> Result<i32> {
    const OP: &str = "rte_eal_wait_lcore";
    eal::ensure_running(OP)?;
    check_worker(OP, lcore_id)?;
    // SAFETY: lcore_id is an enabled worker, inside the lcore table.
    Ok(unsafe { sys::rte_eal_wait_lcore(lcore_id) })
}

/// Blocks until every worker lcore is idle.
pub fn wait_all() {
    if eal::is_running() {
        // SAFETY: EAL is running; waiting on idle lcores returns at once.
        unsafe { sys::rte_eal_mp_wait_lcore() };
    }
}

/// Enabled lcores other than the main one, in increasing id order.
pub fn worker_lcores() -> WorkerLcores {
    WorkerLcores { prev: None }
}

/// Iterator returned by [`worker_lcores`].
#[derive(Debug, Clone)]
pub struct WorkerLcores {
    prev: Option<u32>,
}

impl Iterator for WorkerLcores {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        // Before init DPDK reports every lcore as enabled.
        if !eal::is_running() {
            return None;
        }
        // rte_get_next_lcore starts after `i`; u32::MAX (-1) means "from 0".
        let start = self.prev.unwrap_or(u32::MAX);
        if start != u32::MAX && start >= eal::MAX_LCORE {
            return None;
        }
        // SAFETY: start is -1 or a valid lcore id; skip_main=1, wrap=0.
        let id = unsafe { sys::rte_get_next_lcore(start, 1, 0) };
        self.prev = Some(id);
        (id < eal::MAX_LCORE).then_some(id)
    }
}

fn check_worker(op: &'static str, lcore_id: u32) -> Result<()> {
    // SAFETY: plain read of the EAL configuration.
    let main = unsafe { sys::rte_get_main_lcore() };
    if lcore_id == main || !eal::lcore_enabled(lcore_id) {
        return Err(Error::new(op, libc::EINVAL));
    }
    Ok(())
}

/// Entry point run by the worker thread: takes back the boxed closure and
/// runs it. Panics must not unwind into DPDK's C frames.
extern "C" fn trampoline<F>(arg: *mut c_void) -> c_int
where
    F: FnOnce() -> i32 + Send + 'static,
{
    // SAFETY: arg is the Box<F> leaked by `launch`, handed to us once.
    let f = unsafe { Box::from_raw(arg.cast::<F>()) };
    panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or(PANICKED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trampoline_runs_and_frees_the_closure() {
        let payload = std::sync::Arc::new(());
        let held = std::sync::Arc::clone(&payload);
        let arg = Box::into_raw(Box::new(move || {
            let _keep = &held;
            7
        }));
        assert_eq!(trampoline_of(arg)(arg.cast()), 7);
        // The closure (and its captured Arc) was dropped by the trampoline.
        assert_eq!(std::sync::Arc::strong_count(&payload), 1);
    }

    #[test]
    fn trampoline_turns_panics_into_error_code() {
        let arg = Box::into_raw(Box::new(|| -> i32 { panic!("deliberate test panic") }));
        assert_eq!(trampoline_of(arg)(arg.cast()), PANICKED);
    }

    #[test]
    fn no_workers_without_eal() {
        assert_eq!(worker_lcores().count(), 0);
        assert_eq!(launch(1, || 0).unwrap_err().errno(), libc::ENODEV);
        assert_eq!(wait(1).unwrap_err().errno(), libc::ENODEV);
    }

    /// Names the trampoline instance for the closure type behind `_p`.
    fn trampoline_of<F>(_p: *mut F) -> extern "C" fn(*mut c_void) -> c_int
    where
        F: FnOnce() -> i32 + Send + 'static,
    {
        trampoline::<F>
    }
}
