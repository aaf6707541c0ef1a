//! Error type shared by the safe layer: which DPDK operation failed and the
//! errno it reported.

use std::ffi::CStr;
use std::fmt;

use crate::sys;

/// A failed DPDK call: the operation name and a positive errno value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error {
    op: &'static str,
    errno: i32,
}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// `errno` may be given with either sign; DPDK mixes `-EINVAL` return
    /// values with positive `rte_errno`, and we always store it positive.
    pub fn new(op: &'static str, errno: i32) -> Self {
        Error {
            op,
            errno: errno.saturating_abs(),
        }
    }

    /// Builds an error from the calling thread's `rte_errno`.
    pub fn from_rte_errno(op: &'static str) -> Self {
        Error::new(op, rte_errno())
    }

    /// Maps DPDK's "0 or negative errno" convention to a `Result`.
    pub fn check(op: &'static str, ret: i32) -> Result<()> {
        if ret < 0 {
            Err(Error::new(op, ret))
        } else {
            Ok(())
        }
    }

    /// Name of the DPDK operation that failed.
    pub fn op(&self) -> &'static str {
        self.op
    }

    /// Positive errno value (compare with `libc::E*`).
    pub fn errno(&self) -> i32 {
        self.errno
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: rte_strerror accepts any int and returns a pointer to a
        // static or thread-local NUL-terminated string (never NULL); we copy
        // it out before returning.
        let msg = unsafe { CStr::from_ptr(sys::rte_strerror(self.errno)) };
        write!(
            f,
            "{}: {} (errno {})",
            self.op,
            msg.to_string_lossy(),
            self.errno
        )
    }
}

impl std::error::Error for Error {}

/// The calling thread's `rte_errno` (a thread-local, hence read via the shim).
pub fn rte_errno() -> i32 {
    // SAFETY: espgw_errno only reads a thread-local int.
    unsafe { sys::espgw_errno() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_is_stored_positive() {
        assert_eq!(Error::new("x", -libc::EINVAL).errno(), libc::EINVAL);
        assert_eq!(Error::new("x", libc::ENOMEM).errno(), libc::ENOMEM);
        assert_eq!(Error::new("x", i32::MIN).errno(), i32::MAX);
    }

    #[test]
    fn check_maps_negative_returns() {
        assert!(Error::check("op", 0).is_ok());
        assert!(Error::check("op", 5).is_ok());
        let e = Error::check("rte_op", -libc::ENOTSUP).unwrap_err();
        assert_eq!(e.op(), "rte_op");
        assert_eq!(e.errno(), libc::ENOTSUP);
    }

    #[test]
    fn display_uses_rte_strerror() {
        let text = Error::new("rte_ring_create", libc::EEXIST).to_string();
        assert!(text.starts_with("rte_ring_create: "), "{text}");
        assert!(text.contains("File exists"), "{text}");
        assert!(
            text.ends_with(&format!("(errno {})", libc::EEXIST)),
            "{text}"
        );
        // DPDK-specific codes are translated by rte_strerror, not libc.
        let rte = Error::new("rte_eal_init", sys::RTE_MIN_ERRNO as i32 + 1).to_string();
        assert!(rte.contains("secondary"), "{rte}");
    }
}
