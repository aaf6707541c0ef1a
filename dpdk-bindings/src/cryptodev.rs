//! Symmetric crypto devices (`rte_cryptodev`) and their AEAD sessions, driven by synchronous CPU
//! crypto: a session processes a whole vector of buffers in one call on the calling lcore
//! (`rte_cryptodev_sym_cpu_crypto_process`), with no queue pair and no `rte_crypto_op`. This
//! is how a software PMD such as `crypto_aesni_gcm` (intel-ipsec-mb) is cheapest to drive for
//! a batch under one session; `crypto_queue` drives a batch spread over many.

use std::ffi::{c_void, CStr, CString};
use std::ptr::{self, NonNull};
use std::sync::Arc;

use crate::eal;
use crate::error::{Error, Result};
use crate::sys;

/// Most operations one `process` call hands to the PMD; longer slices are cut into chunks.
pub const MAX_VEC: usize = 32;
const _: () = assert!(MAX_VEC <= 256, "chunk indices are kept in a u8");

/// A crypto device by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cryptodev {
    id: u8,
}

impl Cryptodev {
    /// The device created under `name` (by `--vdev` or [`Cryptodev::create_vdev`]).
    pub fn find(name: &str) -> Option<Cryptodev> {
        let c = CString::new(name).ok()?;
        if !eal::is_running() {
            return None;
        }
        // SAFETY: EAL is running; c is a valid C string DPDK only reads.
        let id = unsafe { sys::rte_cryptodev_get_dev_id(c.as_ptr()) };
        u8::try_from(id).ok().map(|id| Cryptodev { id })
    }

    /// Every crypto device the EAL knows.
    pub fn all() -> Vec<Cryptodev> {
        if !eal::is_running() {
            return Vec::new();
        }
        // SAFETY: plain query of the device table.
        let n = unsafe { sys::rte_cryptodev_count() };
        (0..n).map(|id| Cryptodev { id }).collect()
    }

    /// Creates a virtual crypto device, as `--vdev NAME,ARGS` would.
    pub fn create_vdev(name: &str, args: &str) -> Result<Cryptodev> {
        const OP: &str = "rte_vdev_init";
        eal::ensure_running(OP)?;
        let n = CString::new(name).map_err(|_| Error::new(OP, libc::EINVAL))?;
        let a = CString::new(args).map_err(|_| Error::new(OP, libc::EINVAL))?;
        // SAFETY: EAL is running; both strings are valid and copied by DPDK.
        Error::check(OP, unsafe { sys::rte_vdev_init(n.as_ptr(), a.as_ptr()) })?;
        Cryptodev::find(name).ok_or(Error::new(OP, libc::ENODEV))
    }

    pub fn id(&self) -> u8 {
        self.id
    }

    fn info(&self) -> sys::rte_cryptodev_info {
        let mut info = sys::rte_cryptodev_info::default();
        // SAFETY: info is a valid out-parameter; an invalid id leaves it zeroed.
        unsafe { sys::rte_cryptodev_info_get(self.id, &mut info) };
        info
    }

    /// The PMD's driver name, such as `crypto_aesni_gcm`.
    pub fn driver(&self) -> String {
        let info = self.info();
        if info.driver_name.is_null() {
            return String::new();
        }
        // SAFETY: a non-NULL driver_name is a static NUL-terminated string of the PMD.
        unsafe { CStr::from_ptr(info.driver_name) }
            .to_string_lossy()
            .into_owned()
    }

    /// Whether the device can process synchronously on the CPU (`RTE_CRYPTODEV_FF_SYM_CPU_CRYPTO`).
    pub fn supports_cpu_crypto(&self) -> bool {
        self.info().feature_flags & u64::from(sys::RTE_CRYPTODEV_FF_SYM_CPU_CRYPTO) != 0
    }

    pub fn socket(&self) -> i32 {
        // SAFETY: plain query; an invalid id returns an error value, not UB.
        unsafe { sys::rte_cryptodev_socket_id(self.id) }
    }

    /// Most queue pairs the device offers.
    pub fn max_queue_pairs(&self) -> u16 {
        u16::try_from(self.info().max_nb_queue_pairs).unwrap_or(u16::MAX)
    }

    /// Configures `queue_pairs` queue pairs (at least one, at most what the device offers: see
    /// the return value) and starts the device. CPU crypto uses none, but the generic layer
    /// wants a started device; `AeadQueue` takes one per lcore.
    pub fn start(&self, sessions: &SessionPool, queue_pairs: u16) -> Result<u16> {
        let socket = self.socket();
        let n = queue_pairs.clamp(1, self.max_queue_pairs().max(1));
        let conf = sys::rte_cryptodev_config {
            socket_id: socket,
            nb_queue_pairs: n,
            ff_disable: 0,
        };
        // SAFETY: conf is a valid configuration for this device id.
        Error::check("rte_cryptodev_configure", unsafe {
            sys::rte_cryptodev_configure(self.id, &conf as *const _ as *mut _)
        })?;
        let qp = sys::rte_cryptodev_qp_conf {
            nb_descriptors: 128,
            mp_session: sessions.as_ptr(),
        };
        for id in 0..n {
            // SAFETY: qp is valid; the session pool outlives the device's use of it.
            Error::check("rte_cryptodev_queue_pair_setup", unsafe {
                sys::rte_cryptodev_queue_pair_setup(self.id, id, &qp, socket)
            })?;
        }
        // SAFETY: the device is configured.
        Error::check("rte_cryptodev_start", unsafe {
            sys::rte_cryptodev_start(self.id)
        })?;
        Ok(n)
    }
}

/// A mempool of symmetric sessions sized for one device's private session data.
#[derive(Debug)]
pub struct SessionPool(NonNull<sys::rte_mempool>);

// SAFETY: mempool get/put are MT-safe; we only create and free sessions from the main thread.
unsafe impl Send for SessionPool {}
// SAFETY: as above; &self methods only read the pointer.
unsafe impl Sync for SessionPool {}

impl SessionPool {
    /// A pool of `n` sessions for `dev`, on the device's socket.
    pub fn new(name: &str, dev: &Cryptodev, n: u32) -> Result<Arc<SessionPool>> {
        const OP: &str = "rte_cryptodev_sym_session_pool_create";
        eal::ensure_running(OP)?;
        let c = CString::new(name).map_err(|_| Error::new(OP, libc::EINVAL))?;
        // SAFETY: valid device id; returns 0 for an invalid one, which the pool call rejects.
        let size = unsafe { sys::rte_cryptodev_sym_get_private_session_size(dev.id) };
        // SAFETY: valid arguments; DPDK copies the name. No per-lcore cache: sessions are
        // created and freed by the main lcore only.
        let mp = unsafe {
            sys::rte_cryptodev_sym_session_pool_create(
                c.as_ptr(),
                n.max(1),
                size,
                0,
                0,
                dev.socket(),
            )
        };
        NonNull::new(mp)
            .map(|p| Arc::new(SessionPool(p)))
            .ok_or_else(|| Error::from_rte_errno(OP))
    }

    pub fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.0.as_ptr()
    }
}

impl Drop for SessionPool {
    fn drop(&mut self) {
        // Sessions hold an Arc of their pool, so none is left when this runs.
        if eal::is_running() {
            // SAFETY: no session of this pool is alive (see above).
            unsafe { sys::rte_mempool_free(self.0.as_ptr()) };
        }
    }
}

/// Which way an AEAD session works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AeadDirection {
    Encrypt,
    Decrypt,
}

/// A batch of AEAD operations in place, read by [`AeadSession::process`] where they lie.
pub trait AeadBatch {
    fn count(&self) -> usize;
    /// Operation `i` as (IV, AAD, text followed by the tag). The tag is written when
    /// encrypting and checked when decrypting; IV and AAD must have the session's lengths.
    fn op(&mut self, i: usize) -> (&[u8], &[u8], &mut [u8]);
    /// Records whether operation `i` succeeded.
    fn set_ok(&mut self, i: usize, ok: bool);
}

/// A session's IV, AAD and tag lengths: what the PMD reads from an operation's buffers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lengths {
    iv: u8,
    aad: u8,
    tag: u8,
}

impl Lengths {
    /// The length of the text of an operation (IV, AAD, text followed by the tag) that fits
    /// these lengths, with at most `max_text` bytes of text; `None` if it does not fit, and
    /// then it must not reach the PMD.
    #[inline]
    pub(crate) fn text_len(
        self,
        iv: &[u8],
        aad: &[u8],
        buf: &[u8],
        max_text: usize,
    ) -> Option<usize> {
        let text = buf.len().checked_sub(usize::from(self.tag))?;
        (iv.len() == usize::from(self.iv) && aad.len() == usize::from(self.aad) && text <= max_text)
            .then_some(text)
    }
}

/// An AES-GCM session on a crypto device. The PMD derives and keeps the key schedule; the key
/// bytes given here are not retained by us. Small (24 bytes), so that an SA can hold it in its
/// own cache lines and a packet reaches the PMD's session in one step.
#[derive(Debug)]
pub struct AeadSession {
    sess: NonNull<c_void>,
    dev: u8,
    lengths: Lengths,
    _pool: Arc<SessionPool>,
}

const _: () = assert!(std::mem::size_of::<AeadSession>() <= 24);

// SAFETY: a session is immutable after creation; cpu_crypto_process keeps its per-call state
// on the calling thread (the PMD's per-lcore manager), so one owner thread at a time may use it.
unsafe impl Send for AeadSession {}
// SAFETY: as above: processing reads the session only.
unsafe impl Sync for AeadSession {}

/// ESP's GCM tag (RFC 4106 with a 16-byte ICV).
const TAG_LEN: u16 = 16;
/// RFC 4106 nonce: 4-byte salt || 8-byte explicit IV.
pub(crate) const IV_LEN: u16 = 12;

impl AeadSession {
    /// The session's lines the PMD reads first for each operation, which with thousands of
    /// sessions miss the cache: the private data's first line (lengths, IV offset, the first
    /// round keys) and the line of intel-ipsec-mb's hash key H, which its VAES-AVX512 GCM
    /// reads at 0x3e0 into the key data, itself 80 bytes into a DPDK 22.11 `crypto_aesni_gcm`
    /// session (found with gdb: the key data pointer `aes_gcm_init_128_vaes_avx512` is given,
    /// against the session's). Addresses to prefetch and nothing else: with another layout
    /// they are wasted hints, never wrong.
    #[inline]
    pub fn hot_lines(&self) -> [*const u8; 2] {
        let p = self.sess.as_ptr().cast::<u8>().cast_const();
        [p.wrapping_add(64), p.wrapping_add(80 + 0x3e0)]
    }

    pub(crate) fn as_ptr(&self) -> *mut c_void {
        self.sess.as_ptr()
    }

    pub(crate) fn device(&self) -> u8 {
        self.dev
    }

    #[inline]
    pub(crate) fn lengths(&self) -> Lengths {
        self.lengths
    }

    /// An AES-GCM session (key of 16 or 32 bytes) with a 12-byte IV, `aad_len` bytes of AAD and
    /// a 16-byte tag.
    pub fn aes_gcm(
        dev: &Cryptodev,
        pool: &Arc<SessionPool>,
        dir: AeadDirection,
        key: &[u8],
        aad_len: u16,
    ) -> Result<AeadSession> {
        const OP: &str = "rte_cryptodev_sym_session_create";
        eal::ensure_running(OP)?;
        let key_len = u16::try_from(key.len()).map_err(|_| Error::new(OP, libc::EINVAL))?;
        let aad = u8::try_from(aad_len).map_err(|_| Error::new(OP, libc::EINVAL))?;
        let mut xform = sys::rte_crypto_sym_xform {
            next: ptr::null_mut(),
            type_: sys::rte_crypto_sym_xform_type_RTE_CRYPTO_SYM_XFORM_AEAD,
            ..Default::default()
        };
        xform.__bindgen_anon_1.aead = sys::rte_crypto_aead_xform {
            op: match dir {
                AeadDirection::Encrypt => sys::rte_crypto_aead_operation_RTE_CRYPTO_AEAD_OP_ENCRYPT,
                AeadDirection::Decrypt => sys::rte_crypto_aead_operation_RTE_CRYPTO_AEAD_OP_DECRYPT,
            },
            algo: sys::rte_crypto_aead_algorithm_RTE_CRYPTO_AEAD_AES_GCM,
            key: sys::rte_crypto_aead_xform__bindgen_ty_1 {
                data: key.as_ptr(),
                length: key_len,
            },
            // Where an operation of the enqueue/dequeue API carries its IV (`AeadQueue`);
            // CPU crypto passes the IV by pointer instead.
            iv: sys::rte_crypto_aead_xform__bindgen_ty_2 {
                // SAFETY: a constant of the C layout.
                offset: unsafe { sys::espgw_crypto_op_iv_offset() },
                length: IV_LEN,
            },
            digest_length: TAG_LEN,
            aad_length: aad_len,
        };
        // SAFETY: xform is fully initialised and only read during the call (the PMD copies
        // what it needs from the key); the pool is a session pool for this device.
        let sess =
            unsafe { sys::rte_cryptodev_sym_session_create(dev.id, &mut xform, pool.as_ptr()) };
        let sess = NonNull::new(sess).ok_or_else(|| Error::from_rte_errno(OP))?;
        Ok(AeadSession {
            sess,
            dev: dev.id,
            lengths: Lengths {
                iv: IV_LEN as u8,
                aad,
                tag: TAG_LEN as u8,
            },
            _pool: pool.clone(),
        })
    }

    /// Processes every operation of `batch` in place, in chunks of [`MAX_VEC`] per call to the
    /// PMD, and records for each whether it was encrypted, or decrypted with a tag that
    /// verified. An operation whose IV, AAD or buffer does not fit the session fails without
    /// reaching the PMD.
    pub fn process<B: AeadBatch + ?Sized>(&self, batch: &mut B) {
        let total = batch.count();
        let mut start = 0;
        while start < total {
            let end = total.min(start + MAX_VEC);
            self.process_chunk(batch, start, end);
            start = end;
        }
    }

    fn process_chunk<B: AeadBatch + ?Sized>(&self, batch: &mut B, start: usize, end: usize) {
        use std::mem::MaybeUninit;
        // Only the first n entries are written and handed to the PMD.
        let mut vecs = [const { MaybeUninit::<sys::rte_crypto_vec>::uninit() }; MAX_VEC];
        let mut sgls = [const { MaybeUninit::<sys::rte_crypto_sgl>::uninit() }; MAX_VEC];
        let mut ivs = [const { MaybeUninit::<sys::rte_crypto_va_iova_ptr>::uninit() }; MAX_VEC];
        let mut aads = [const { MaybeUninit::<sys::rte_crypto_va_iova_ptr>::uninit() }; MAX_VEC];
        let mut tags = [const { MaybeUninit::<sys::rte_crypto_va_iova_ptr>::uninit() }; MAX_VEC];
        let mut status = [0i32; MAX_VEC];
        // Index in the chunk of each entry handed to the PMD (a small array: this runs once per
        // SA and burst, and with many tunnels that is once per packet).
        let mut which = [0u8; MAX_VEC];
        let mut n = 0;
        for i in start..end {
            let (iv, aad, buf) = batch.op(i);
            let Some(text_len) = self.lengths().text_len(iv, aad, buf, u32::MAX as usize) else {
                batch.set_ok(i, false);
                continue;
            };
            let base = buf.as_mut_ptr();
            let va = |p: *const u8| sys::rte_crypto_va_iova_ptr {
                va: p.cast_mut().cast(),
                iova: 0,
            };
            vecs[n].write(sys::rte_crypto_vec {
                base: base.cast(),
                iova: 0,
                len: text_len as u32,
                tot_len: text_len as u32,
            });
            ivs[n].write(va(iv.as_ptr()));
            aads[n].write(va(aad.as_ptr()));
            // SAFETY: text_len + tag_len == buf.len(), so the tag lies inside buf.
            tags[n].write(va(unsafe { base.add(text_len) }));
            sgls[n].write(sys::rte_crypto_sgl {
                vec: vecs[n].as_mut_ptr(),
                num: 1,
            });
            // i - start < MAX_VEC <= 256.
            which[n] = (i - start) as u8;
            n += 1;
        }
        if n == 0 {
            return;
        }
        let mut vec = sys::rte_crypto_sym_vec {
            num: n as u32,
            src_sgl: sgls.as_mut_ptr().cast(),
            dest_sgl: ptr::null_mut(),
            iv: ivs.as_mut_ptr().cast(),
            digest: tags.as_mut_ptr().cast(),
            status: status.as_mut_ptr(),
            ..Default::default()
        };
        vec.__bindgen_anon_1.aad = aads.as_mut_ptr().cast();
        // The SGLs cover exactly the text to process: no head or tail offsets.
        let ofs = sys::rte_crypto_sym_ofs { raw: 0 };
        // SAFETY: the first n entries of every array are initialised and describe memory the
        // batch lends us for the call: text_len bytes of each buffer, IV/AAD/tag of the
        // session's lengths (checked above); status has n entries. The batch is not touched
        // until the call returns.
        unsafe {
            sys::rte_cryptodev_sym_cpu_crypto_process(self.dev, self.sess.as_ptr(), ofs, &mut vec)
        };
        for j in 0..n {
            batch.set_ok(start + usize::from(which[j]), status[j] == 0);
        }
    }
}

impl Drop for AeadSession {
    fn drop(&mut self) {
        if eal::is_running() {
            // SAFETY: the session came from this device and is used by nobody else now.
            unsafe { sys::rte_cryptodev_sym_session_free(self.dev, self.sess.as_ptr()) };
        }
    }
}
