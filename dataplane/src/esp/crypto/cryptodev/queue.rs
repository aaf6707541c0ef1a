//! The enqueue/dequeue side of the crypto device: a queue pair fed with `rte_crypto_op`s, each
//! naming its own session. One enqueue and one dequeue carry a whole burst whatever SAs its
//! packets belong to, where CPU crypto (`DeviceGcm::process`) takes one call per session.

use super::super::batch::{AeadOps, NONCE_LEN};
use super::super::{DeviceSession, QueuePair};
use crate::burst::MAX_BURST;
use dpdk_sys::{eal, sys, Cryptodev, Error, Result};
use std::ffi::CString;
use std::mem::ManuallyDrop;
use std::ptr::{self, NonNull};

// The shim copies each nonce block (16 bytes) into its operation's 16-byte private area; the
// session reads the first 12, every session's IV length.
const _: () = assert!(NONCE_LEN == 12);
// The shim reports the outcomes of a trip as the bits of one u32.
const _: () = assert!(MAX_BURST <= 32);

/// One worker's queue pair with the operations it reuses burst after burst: they are taken
/// from their pool once, so a burst costs no allocation, and each is paired with an mbuf
/// header that only describes where the packet's bytes lie (the PMD reads the data through
/// `m_src`; nothing frees these headers or returns them to a pool).
pub struct DeviceQueue {
    dev: u8,
    qp: u16,
    pool: NonNull<sys::rte_mempool>,
    ops: [*mut sys::rte_crypto_op; MAX_BURST],
    /// Each op's descriptor, bound to it once (`espgw_aead_op_bind`): reached only through
    /// the op's `m_src` from then on, and kept as long as the ops.
    descs: ManuallyDrop<Box<[sys::rte_mbuf; MAX_BURST]>>,
    /// The device kept operations it was given: they may still be read or written by it, so
    /// they are never refilled, and never freed.
    stuck: bool,
}

// SAFETY: the queue is used by one thread at a time (&mut self); ops and pool are plain DPDK
// memory.
unsafe impl Send for DeviceQueue {}

impl DeviceQueue {
    /// Queue pair `qp` of a started device, with an operation pool of its own.
    pub fn new(dev: &Cryptodev, qp: u16, name: &str) -> Result<DeviceQueue> {
        const OP: &str = "rte_crypto_op_pool_create";
        eal::ensure_running(OP)?;
        let c = CString::new(name).map_err(|_| Error::new(OP, libc::EINVAL))?;
        // SAFETY: valid arguments; 16 bytes of private area hold the IV.
        let pool = unsafe {
            sys::rte_crypto_op_pool_create(
                c.as_ptr(),
                sys::rte_crypto_op_type_RTE_CRYPTO_OP_TYPE_SYMMETRIC,
                (2 * MAX_BURST) as u32,
                0,
                16,
                dev.socket(),
            )
        };
        let pool = NonNull::new(pool).ok_or_else(|| Error::from_rte_errno(OP))?;
        let mut ops = [ptr::null_mut(); MAX_BURST];
        // SAFETY: ops has room for MAX_BURST pointers; the pool holds 2 * MAX_BURST.
        let got = unsafe {
            sys::espgw_crypto_op_bulk_alloc(pool.as_ptr(), ops.as_mut_ptr(), MAX_BURST as u16)
        };
        if got != MAX_BURST as i32 {
            // SAFETY: nothing was taken from the pool.
            unsafe { sys::rte_mempool_free(pool.as_ptr()) };
            return Err(Error::new("rte_crypto_op_bulk_alloc", libc::ENOMEM));
        }
        // SAFETY: an all-zero mbuf header is a valid (empty) C struct.
        let mut descs = Box::new(unsafe { std::mem::zeroed::<[sys::rte_mbuf; MAX_BURST]>() });
        for (&op, desc) in ops.iter().zip(descs.iter_mut()) {
            // SAFETY: op is ours, just taken; desc lives in the box, which moves with the
            // queue but never moves in memory, as long as op.
            unsafe { sys::espgw_aead_op_bind(op, desc) };
        }
        Ok(DeviceQueue {
            dev: dev.id(),
            qp,
            pool,
            ops,
            descs: ManuallyDrop::new(descs),
            stuck: false,
        })
    }
}

impl QueuePair for DeviceQueue {
    /// An operation whose AAD length is not its session's, or whose text is longer than an
    /// mbuf segment, fails without reaching the PMD.
    fn process(&mut self, ops: &mut AeadOps<'_>, sessions: &[DeviceSession]) -> bool {
        let n = ops.len();
        let m = n.min(sessions.len()).min(MAX_BURST);
        if sessions[..m].iter().any(|s| s.device != self.dev) {
            return false;
        }
        let mut which = [0u8; MAX_BURST];
        let mut k = 0;
        for (i, s) in sessions[..m].iter().enumerate() {
            let Some(op) = ops.raw(i) else { break };
            if self.stuck || op.aad_len != s.aad_len || op.text.len > u32::from(u16::MAX) {
                continue;
            }
            // SAFETY: ops[k] (k <= i < MAX_BURST) is ours and bound to descs[k] (at creation),
            // and not in the device's queue now; the text and tag (borrowed by `ops`), the
            // 16-byte nonce block and the AAD block (owned by `ops`) outlive the enqueue and
            // dequeue below, the only time the PMD reads them.
            unsafe {
                sys::espgw_aead_op_fill(
                    *self.ops.get_unchecked(k),
                    s.session.as_ptr(),
                    op.text.base,
                    op.text.len as u16,
                    op.nonce,
                    op.aad.cast_mut(),
                )
            };
            which[k] = i as u8;
            k += 1;
        }
        // Operations past the sessions given, or left out above, stay not run: they fail.
        if k == 0 {
            return true;
        }
        // SAFETY: the first k ops are filled; a software PMD does the work in dequeue.
        let queued = unsafe {
            sys::espgw_cryptodev_enqueue_burst(self.dev, self.qp, self.ops.as_mut_ptr(), k as u16)
        };
        let mut back = [ptr::null_mut(); MAX_BURST];
        let mut done = 0;
        // Bounded: a software PMD completes everything it took in one dequeue.
        for _ in 0..4 {
            if done >= usize::from(queued) {
                break;
            }
            // SAFETY: back has room for what is left.
            done += usize::from(unsafe {
                sys::espgw_cryptodev_dequeue_burst(
                    self.dev,
                    self.qp,
                    back.as_mut_ptr(),
                    (usize::from(queued) - done) as u16,
                )
            });
        }
        // A software PMD never keeps an operation past its dequeue; if one ever did, its slot
        // could not be refilled safely.
        self.stuck |= done < usize::from(queued);
        // Ops come back in the order they went in; one the device did not take, or did not
        // give back, counts as failed whatever its status.
        // SAFETY: the first `done` ops are valid ops of ours, back from the device.
        let ok = unsafe { sys::espgw_crypto_ops_succeeded(self.ops.as_ptr(), done as u16) };
        for (j, &w) in which[..k].iter().enumerate() {
            ops.set_ok(usize::from(w), ok & (1 << j) != 0);
        }
        true
    }

    fn is_stuck(&self) -> bool {
        self.stuck
    }
}

impl Drop for DeviceQueue {
    fn drop(&mut self) {
        // A device that kept operations may still read or write them and their descriptors:
        // all of it is left to the device, never freed.
        if self.stuck || !eal::is_running() {
            return;
        }
        // SAFETY: the ops are ours and idle, so are their descriptors; then the pool is empty
        // of users.
        unsafe {
            sys::espgw_crypto_op_bulk_free(self.ops.as_mut_ptr(), MAX_BURST as u16);
            sys::rte_mempool_free(self.pool.as_ptr());
            ManuallyDrop::drop(&mut self.descs);
        }
    }
}
