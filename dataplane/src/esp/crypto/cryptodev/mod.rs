//! The fast-path AEAD backend: a DPDK crypto device (`crypto_aesni_gcm`, intel-ipsec-mb). A batch
//! under one SA goes through synchronous CPU crypto, one call per SA batch (`DeviceGcm`); a
//! burst spread over many SAs goes through a worker's queue pair (`queue`), one enqueue and one
//! dequeue for all of it. CPU crypto costs about 20 ns a call beyond the AEAD on these
//! machines, and an operation through the queue about 7 ns more than one of a CPU-crypto call
//! (criterion's `seal-queue` and `seal-32-sas-queue` rows): the queue pays off once a burst
//! holds more than about a third as many SAs as packets. Where no such device can be had, the
//! dataplane falls back to `ring` (see `Backend`).

mod queue;

pub use queue::DeviceQueue;

use super::batch::{AeadOps, Segment, NONCE_LEN, TAG_LEN};
use super::{Aead, CryptoError, DeviceSession, KeyMaterial, Op};
use crate::burst::MAX_BURST;
use dpdk_sys::{sys, AeadDirection, AeadLengths, AeadSession, Cryptodev, SessionPool};
use std::mem::{offset_of, size_of, MaybeUninit};
use std::ptr;
use std::sync::Arc;

// The batch's text segments go to the PMD as they are: they must be `rte_crypto_vec`s.
const _: () = {
    assert!(size_of::<Segment>() == size_of::<sys::rte_crypto_vec>());
    assert!(offset_of!(Segment, base) == offset_of!(sys::rte_crypto_vec, base));
    assert!(offset_of!(Segment, iova) == offset_of!(sys::rte_crypto_vec, iova));
    assert!(offset_of!(Segment, len) == offset_of!(sys::rte_crypto_vec, len));
    assert!(offset_of!(Segment, tot_len) == offset_of!(sys::rte_crypto_vec, tot_len));
};

/// The driver we use by default: intel-ipsec-mb's GCM, the fastest on these machines.
pub const DRIVER: &str = "crypto_aesni_gcm";

/// A started crypto device with a pool of sessions for the SAs and a queue pair per worker.
pub struct Device {
    dev: Cryptodev,
    driver: String,
    pool: Arc<SessionPool>,
    queue_pairs: u16,
}

impl Device {
    /// Uses a `crypto_aesni_gcm` device given on the EAL command line (`--vdev
    /// crypto_aesni_gcm0`), or creates one, with room for `sessions` sessions and a queue pair
    /// for each of `workers`. Call after EAL init, on the main lcore.
    pub fn open(sessions: u32, workers: u16) -> Result<Device, String> {
        Self::open_driver(DRIVER, sessions, workers)
    }

    /// The same with another CPU-crypto driver (`crypto_aesni_mb`), for comparisons.
    pub fn open_driver(driver: &str, sessions: u32, workers: u16) -> Result<Device, String> {
        let dev = match Cryptodev::all()
            .into_iter()
            .find(|d| d.driver() == driver && d.supports_cpu_crypto())
        {
            Some(d) => d,
            None => Cryptodev::create_vdev(
                &format!("{driver}_espgw"),
                &format!("max_nb_queue_pairs={}", workers.max(1)),
            )
            .map_err(|e| format!("cannot create {driver}: {e}"))?,
        };
        if !dev.supports_cpu_crypto() {
            return Err(format!("{} cannot do CPU crypto", dev.driver()));
        }
        let pool = SessionPool::new(&format!("espgw_sess_{}", dev.id()), &dev, sessions)
            .map_err(|e| format!("session pool of {sessions}: {e}"))?;
        let queue_pairs = dev
            .start(&pool, workers)
            .map_err(|e| format!("starting {}: {e}", dev.driver()))?;
        Ok(Device {
            driver: dev.driver(),
            dev,
            pool,
            queue_pairs,
        })
    }

    /// Worker `index`'s queue pair, for bursts spread over many SAs; `None` when the device
    /// has fewer queue pairs than workers (those workers keep to CPU crypto).
    pub fn queue(&self, index: u16) -> Option<Result<DeviceQueue, String>> {
        (index < self.queue_pairs).then(|| {
            DeviceQueue::new(
                &self.dev,
                index,
                &format!("espgw_ops_{}_{index}", self.dev.id()),
            )
            .map_err(|e| format!("queue pair {index} of {}: {e}", self.driver))
        })
    }

    pub fn driver(&self) -> &str {
        &self.driver
    }

    /// A session for one SA.
    pub fn session(&self, keys: &KeyMaterial, op: Op, esn: bool) -> Result<DeviceGcm, CryptoError> {
        let dir = match op {
            Op::Seal => AeadDirection::Encrypt,
            Op::Open => AeadDirection::Decrypt,
        };
        let lengths = AeadLengths {
            iv: NONCE_LEN as u8,
            aad: if esn { 12 } else { 8 },
            tag: TAG_LEN as u8,
        };
        AeadSession::aes_gcm(&self.dev, &self.pool, dir, keys.key(), lengths)
            .map(DeviceGcm)
            .map_err(|e| CryptoError::Device(e.to_string()))
    }
}

/// An SA's cipher on the crypto device.
pub struct DeviceGcm(AeadSession);

impl DeviceGcm {
    /// The session as a queue pair's operations name it.
    #[inline(always)]
    pub(crate) fn handle(&self) -> DeviceSession {
        DeviceSession {
            session: self.0.as_non_null(),
            device: self.0.device(),
            aad_len: self.0.aad_len(),
        }
    }

    #[inline]
    pub(crate) fn prefetch_key(&self) {
        self.0
            .hot_lines()
            .into_iter()
            .for_each(crate::prefetch::line);
    }
}

impl Aead for DeviceGcm {
    /// Seals or opens every operation of `ops` in one call to the PMD (synchronous CPU
    /// crypto), and records for each whether it was sealed, or opened with a tag that verified.
    /// An operation whose AAD length is not the session's fails without reaching the PMD (its
    /// bytes are left as they were).
    fn process(&self, ops: &mut AeadOps<'_>) {
        let s = &self.0;
        let n = ops.len().min(MAX_BURST);
        // Pointers into `ops`, made here where `ops` cannot move: the SGL of each operation
        // (its one text segment), and where its nonce, AAD and tag lie.
        let mut sgls = [const { MaybeUninit::<sys::rte_crypto_sgl>::uninit() }; MAX_BURST];
        let mut ivs = [const { MaybeUninit::<sys::rte_crypto_va_iova_ptr>::uninit() }; MAX_BURST];
        let mut aads = [const { MaybeUninit::<sys::rte_crypto_va_iova_ptr>::uninit() }; MAX_BURST];
        let mut tags = [const { MaybeUninit::<sys::rte_crypto_va_iova_ptr>::uninit() }; MAX_BURST];
        // Which operation each entry handed to the PMD is (all of them, in order, as a rule).
        let mut which = [0u8; MAX_BURST];
        let va = |p: *const u8| sys::rte_crypto_va_iova_ptr {
            va: p.cast_mut().cast(),
            iova: 0,
        };
        let mut k = 0;
        for i in 0..n {
            if ops.aad_len[i] != s.aad_len() {
                ops.status[i] = libc::EINVAL;
                continue;
            }
            // SAFETY: entries below `len` were written by `push`.
            let text = unsafe { ops.text[i].assume_init_ref() };
            sgls[k].write(sys::rte_crypto_sgl {
                vec: ptr::from_ref(text).cast_mut().cast(),
                num: 1,
            });
            ivs[k].write(va(ops.nonce[i].as_ptr().cast()));
            aads[k].write(va(ops.aad[i].as_ptr().cast()));
            // `push` took text.len + TAG_LEN bytes at text.base: the tag is in them.
            tags[k].write(va(text.base.wrapping_add(text.len as usize)));
            which[k] = i as u8;
            k += 1;
        }
        if k == 0 {
            return;
        }
        // Statuses straight into `ops` when every operation went (the rule), else scattered.
        let mut scattered = [0i32; MAX_BURST];
        let status = if k == n {
            ops.status.as_mut_ptr()
        } else {
            scattered.as_mut_ptr()
        };
        let mut vec = sys::rte_crypto_sym_vec {
            num: k as u32,
            src_sgl: sgls.as_mut_ptr().cast(),
            dest_sgl: ptr::null_mut(),
            iv: ivs.as_mut_ptr().cast(),
            digest: tags.as_mut_ptr().cast(),
            status,
            ..Default::default()
        };
        vec.__bindgen_anon_1.aad = aads.as_mut_ptr().cast();
        // The SGLs cover exactly the text to process: no head or tail offsets.
        let ofs = sys::rte_crypto_sym_ofs { raw: 0 };
        // SAFETY: the first k entries of every array are initialised and describe memory `ops`
        // holds borrowed (text and tag of each buffer) or owns (16-byte nonce and AAD blocks,
        // of which the PMD reads 12 and the session's AAD length); `status` has room for k.
        unsafe { sys::rte_cryptodev_sym_cpu_crypto_process(s.device(), s.as_ptr(), ofs, &mut vec) };
        if k != n {
            for (j, &i) in which.iter().enumerate().take(k) {
                ops.status[usize::from(i)] = scattered[j];
            }
        }
    }
}
