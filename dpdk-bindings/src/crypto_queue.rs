//! The enqueue/dequeue side of a crypto device: a queue pair fed with `rte_crypto_op`s, each
//! naming its own session. One enqueue and one dequeue carry a whole burst whatever SAs its
//! packets belong to, where CPU crypto (`AeadSession::process`) takes one call per session.

use std::ffi::CString;
use std::ptr::{self, NonNull};

use crate::aead_ops::{AeadOps, MAX_OPS};
use crate::cryptodev::{AeadSession, Cryptodev};
use crate::eal;
use crate::error::{Error, Result};
use crate::sys;

// The shim copies each nonce block (16 bytes) into its operation's 16-byte private area;
// the session reads the first 12, every session's IV length.
const _: () = assert!(crate::cryptodev::IV_LEN == 12);

/// One lcore's queue pair with the operations it reuses burst after burst: they are taken
/// from their pool once, so a burst costs no allocation, and each is paired with an mbuf
/// header that only describes where the packet's bytes lie (the PMD reads the data through
/// `m_src`; nothing frees these headers or returns them to a pool).
pub struct AeadQueue {
    dev: u8,
    qp: u16,
    pool: NonNull<sys::rte_mempool>,
    ops: [*mut sys::rte_crypto_op; MAX_OPS],
    /// Each op's descriptor, bound to it once (`espgw_aead_op_bind`): reached only through
    /// the op's `m_src` from then on, and kept here as long as the ops.
    _descs: Box<[sys::rte_mbuf; MAX_OPS]>,
    /// The device kept operations it was given: they may still be read or written by it, so
    /// they are never refilled (nor freed) again.
    stuck: bool,
}

// SAFETY: the queue is used by one thread at a time (&mut self); ops and pool are plain DPDK
// memory.
unsafe impl Send for AeadQueue {}

impl AeadQueue {
    /// Queue pair `qp` of a started device, with an operation pool of its own.
    pub fn new(dev: &Cryptodev, qp: u16, name: &str) -> Result<AeadQueue> {
        const OP: &str = "rte_crypto_op_pool_create";
        eal::ensure_running(OP)?;
        let c = CString::new(name).map_err(|_| Error::new(OP, libc::EINVAL))?;
        // SAFETY: valid arguments; 16 bytes of private area hold the IV.
        let pool = unsafe {
            sys::rte_crypto_op_pool_create(
                c.as_ptr(),
                sys::rte_crypto_op_type_RTE_CRYPTO_OP_TYPE_SYMMETRIC,
                (2 * MAX_OPS) as u32,
                0,
                16,
                dev.socket(),
            )
        };
        let pool = NonNull::new(pool).ok_or_else(|| Error::from_rte_errno(OP))?;
        let mut ops = [ptr::null_mut(); MAX_OPS];
        // SAFETY: ops has room for MAX_OPS pointers; the pool holds 2 * MAX_OPS.
        let got = unsafe {
            sys::espgw_crypto_op_bulk_alloc(pool.as_ptr(), ops.as_mut_ptr(), MAX_OPS as u16)
        };
        if got != MAX_OPS as i32 {
            // SAFETY: nothing was taken from the pool.
            unsafe { sys::rte_mempool_free(pool.as_ptr()) };
            return Err(Error::new("rte_crypto_op_bulk_alloc", libc::ENOMEM));
        }
        // SAFETY: an all-zero mbuf header is a valid (empty) C struct.
        let mut descs = Box::new(unsafe { std::mem::zeroed::<[sys::rte_mbuf; MAX_OPS]>() });
        for (&op, desc) in ops.iter().zip(descs.iter_mut()) {
            // SAFETY: op is ours, just taken; desc lives in the box, which moves with the
            // queue but never moves in memory, as long as op.
            unsafe { sys::espgw_aead_op_bind(op, desc) };
        }
        Ok(AeadQueue {
            dev: dev.id(),
            qp,
            pool,
            ops,
            _descs: descs,
            stuck: false,
        })
    }

    /// Whether the device kept operations (see `process`): the queue then fails every job,
    /// and its owner should go back to CPU crypto.
    pub fn is_stuck(&self) -> bool {
        self.stuck
    }

    /// Seals or opens every operation of `ops`, operation `i` under `sessions[i]`, in one
    /// enqueue and one dequeue, and records for each whether it was sealed, or opened with a
    /// tag that verified. An operation without a session, whose session is on another device,
    /// whose AAD length is not its session's, or whose text is longer than an mbuf segment,
    /// fails without reaching the PMD.
    pub fn process(&mut self, ops: &mut AeadOps<'_>, sessions: &[&AeadSession]) {
        let n = ops.len();
        if self.stuck {
            (0..n).for_each(|i| ops.set_ok(i, false));
            return;
        }
        // Operations past the sessions given never run.
        let m = n.min(sessions.len()).min(MAX_OPS);
        (m..n).for_each(|i| ops.set_ok(i, false));
        let mut which = [0u8; MAX_OPS];
        let mut k = 0;
        for (i, &s) in sessions[..m].iter().enumerate() {
            let (text, nonce, aad) = ops.raw(i);
            let fits = (s.device() == self.dev)
                & (ops.aad_len[i] == s.aad_len())
                & (text.len <= u32::from(u16::MAX));
            if !fits {
                ops.set_ok(i, false);
                continue;
            }
            // SAFETY: ops[k] (k <= i < MAX_OPS) is ours and bound to descs[k] (at creation),
            // and not in the device's queue now; the text and tag (borrowed by `ops`), the
            // 16-byte nonce block and the AAD block (owned by `ops`) outlive the enqueue and
            // dequeue below, the only time the PMD reads them.
            unsafe {
                sys::espgw_aead_op_fill(
                    *self.ops.get_unchecked(k),
                    s.as_ptr(),
                    text.base.cast(),
                    text.len as u16,
                    nonce,
                    aad.cast_mut(),
                )
            };
            which[k] = i as u8;
            k += 1;
        }
        if k == 0 {
            return;
        }
        // SAFETY: the first k ops are filled; a software PMD does the work in dequeue.
        let queued = unsafe {
            sys::espgw_cryptodev_enqueue_burst(self.dev, self.qp, self.ops.as_mut_ptr(), k as u16)
        };
        let mut back = [ptr::null_mut(); MAX_OPS];
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
        // A software PMD never keeps an operation past its dequeue; if one ever did, its
        // slot could not be refilled safely.
        self.stuck |= done < usize::from(queued);
        // Ops come back in the order they went in; one the device did not take, or did not
        // give back, counts as failed whatever its status.
        // SAFETY: the first `done` ops are valid ops of ours, back from the device.
        let ok = unsafe { sys::espgw_crypto_ops_succeeded(self.ops.as_ptr(), done as u16) };
        for (j, &w) in which[..k].iter().enumerate() {
            ops.set_ok(usize::from(w), ok & (1 << j) != 0);
        }
    }
}

impl Drop for AeadQueue {
    fn drop(&mut self) {
        // Operations the device may still hold are left to it.
        if eal::is_running() && !self.stuck {
            // SAFETY: the ops are ours and idle; then the pool is empty of users.
            unsafe {
                sys::espgw_crypto_op_bulk_free(self.ops.as_mut_ptr(), MAX_OPS as u16);
                sys::rte_mempool_free(self.pool.as_ptr());
            }
        }
    }
}
