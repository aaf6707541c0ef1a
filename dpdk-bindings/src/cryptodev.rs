//! Symmetric crypto devices (`rte_cryptodev`), their session pools and AEAD sessions. How a
//! session's work is handed to the PMD (synchronous CPU crypto, or operations through a queue
//! pair: the shim's `espgw_aead_op_*` functions) is up to the user.

use std::ffi::{c_void, CStr, CString};
use std::ptr::{self, NonNull};
use std::sync::Arc;

use crate::eal;
use crate::error::{Error, Result};
use crate::sys;

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
    /// wants a started device; a user of the enqueue/dequeue API takes one per lcore.
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

/// The lengths an AEAD session is made for, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AeadLengths {
    pub iv: u8,
    pub aad: u8,
    pub tag: u8,
}

/// Which way an AEAD session works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AeadDirection {
    Encrypt,
    Decrypt,
}

/// An AES-GCM session on a crypto device. The PMD derives and keeps the key schedule; the key
/// bytes given here are not retained by us. Small (24 bytes), so that an SA can hold it in its
/// own cache lines and a packet reaches the PMD's session in one step.
#[derive(Debug)]
pub struct AeadSession {
    sess: NonNull<c_void>,
    dev: u8,
    /// The AAD length the session was made for (8, or 12 with ESN).
    aad_len: u8,
    _pool: Arc<SessionPool>,
}

const _: () = assert!(std::mem::size_of::<AeadSession>() <= 24);

// SAFETY: a session is immutable after creation; cpu_crypto_process keeps its per-call state
// on the calling thread (the PMD's per-lcore manager), so one owner thread at a time may use it.
unsafe impl Send for AeadSession {}
// SAFETY: as above: processing reads the session only.
unsafe impl Sync for AeadSession {}

impl AeadSession {
    /// The session's lines the PMD reads first for each operation, which with thousands of
    /// sessions miss the cache: the private data's first line (lengths, IV offset, the first
    /// round keys); the line of intel-ipsec-mb's hash key H, which its VAES-AVX512 GCM reads
    /// at 0x3e0 into the key data, itself 80 bytes into a DPDK 22.11 `crypto_aesni_gcm`
    /// session (found with gdb: the key data pointer `aes_gcm_init_128_vaes_avx512` is given,
    /// against the session's); and the line just past the key data, whose session fields the
    /// PMD's dequeue reads 0x440 bytes in (found with callgrind's cache simulation). The
    /// remaining round-key lines are left out: asking for them too made 10 000 tunnels 11 %
    /// slower decrypting. Addresses to prefetch and nothing else: with another layout they are
    /// wasted hints, never wrong.
    #[inline]
    pub fn hot_lines(&self) -> [*const u8; 3] {
        let p = self.sess.as_ptr().cast::<u8>().cast_const();
        [64, 80 + 0x3e0, 1088].map(|off| p.wrapping_add(off))
    }

    /// The session as the PMD takes it.
    #[inline(always)]
    pub fn as_ptr(&self) -> *mut c_void {
        self.sess.as_ptr()
    }

    /// The same, never null.
    #[inline(always)]
    pub fn as_non_null(&self) -> NonNull<c_void> {
        self.sess
    }

    /// The device the session belongs to.
    #[inline(always)]
    pub fn device(&self) -> u8 {
        self.dev
    }

    /// The AAD length the session was made for.
    #[inline(always)]
    pub fn aad_len(&self) -> u8 {
        self.aad_len
    }

    /// An AES-GCM session: a key of 16 or 32 bytes, an IV of `iv_len` bytes, `aad_len` bytes
    /// of AAD and a tag of `tag_len` bytes.
    pub fn aes_gcm(
        dev: &Cryptodev,
        pool: &Arc<SessionPool>,
        dir: AeadDirection,
        key: &[u8],
        lengths: AeadLengths,
    ) -> Result<AeadSession> {
        const OP: &str = "rte_cryptodev_sym_session_create";
        eal::ensure_running(OP)?;
        let key_len = u16::try_from(key.len()).map_err(|_| Error::new(OP, libc::EINVAL))?;
        let AeadLengths { iv, aad, tag } = lengths;
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
            // Where an operation of the enqueue/dequeue API carries its IV;
            // CPU crypto passes the IV by pointer instead.
            iv: sys::rte_crypto_aead_xform__bindgen_ty_2 {
                // SAFETY: a constant of the C layout.
                offset: unsafe { sys::espgw_crypto_op_iv_offset() },
                length: u16::from(iv),
            },
            digest_length: u16::from(tag),
            aad_length: u16::from(aad),
        };
        // SAFETY: xform is fully initialised and only read during the call (the PMD copies
        // what it needs from the key); the pool is a session pool for this device.
        let sess =
            unsafe { sys::rte_cryptodev_sym_session_create(dev.id, &mut xform, pool.as_ptr()) };
        let sess = NonNull::new(sess).ok_or_else(|| Error::from_rte_errno(OP))?;
        Ok(AeadSession {
            sess,
            dev: dev.id,
            aad_len: aad,
            _pool: pool.clone(),
        })
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
