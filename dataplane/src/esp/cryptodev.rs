//! The fast-path AEAD backend: a DPDK crypto device (`crypto_aesni_gcm`, intel-ipsec-mb) driven
//! by synchronous CPU crypto, one call per SA batch. Where no such device can be had, the
//! dataplane falls back to `ring` (see `Backend`).

use super::crypto::{Aead, CryptoError, Job, Keymat, Op};
use dpdk_sys::{AeadBatch, AeadDirection, AeadSession, Cryptodev, SessionPool};
use std::sync::Arc;

/// The driver we use by default: intel-ipsec-mb's GCM, the fastest on these machines.
pub const DRIVER: &str = "crypto_aesni_gcm";

/// A started crypto device with a pool of sessions for the SAs.
pub struct Device {
    dev: Cryptodev,
    driver: String,
    pool: Arc<SessionPool>,
}

impl Device {
    /// Uses a `crypto_aesni_gcm` device given on the EAL command line (`--vdev
    /// crypto_aesni_gcm0`), or creates one, with room for `sessions` sessions. Call after EAL
    /// init, on the main lcore.
    pub fn open(sessions: u32) -> Result<Device, String> {
        Self::open_driver(DRIVER, sessions)
    }

    /// The same with another CPU-crypto driver (`crypto_aesni_mb`), for comparisons.
    pub fn open_driver(driver: &str, sessions: u32) -> Result<Device, String> {
        let dev = match Cryptodev::all()
            .into_iter()
            .find(|d| d.driver() == driver && d.supports_cpu_crypto())
        {
            Some(d) => d,
            None => Cryptodev::create_vdev(&format!("{driver}_espgw"), "max_nb_queue_pairs=1")
                .map_err(|e| format!("cannot create {driver}: {e}"))?,
        };
        if !dev.supports_cpu_crypto() {
            return Err(format!("{} cannot do CPU crypto", dev.driver()));
        }
        let pool = SessionPool::new(&format!("espgw_sess_{}", dev.id()), &dev, sessions)
            .map_err(|e| format!("session pool of {sessions}: {e}"))?;
        dev.start(&pool)
            .map_err(|e| format!("starting {}: {e}", dev.driver()))?;
        Ok(Device {
            driver: dev.driver(),
            dev,
            pool,
        })
    }

    pub fn driver(&self) -> &str {
        &self.driver
    }

    /// A session for one SA.
    pub fn session(&self, keymat: &Keymat, op: Op, esn: bool) -> Result<CryptodevGcm, CryptoError> {
        let dir = match op {
            Op::Seal => AeadDirection::Encrypt,
            Op::Open => AeadDirection::Decrypt,
        };
        let aad_len = if esn { 12 } else { 8 };
        AeadSession::aes_gcm(&self.dev, &self.pool, dir, keymat.key(), aad_len)
            .map(CryptodevGcm)
            .map_err(|e| CryptoError::Device(e.to_string()))
    }
}

/// An SA's cipher on the crypto device.
pub struct CryptodevGcm(AeadSession);

impl Aead for CryptodevGcm {
    #[inline]
    fn process(&self, jobs: &mut [Job<'_>]) {
        self.0.process(&mut JobBatch(jobs));
    }
}

/// Jobs as the device reads them, in place.
struct JobBatch<'s, 'a>(&'s mut [Job<'a>]);

impl AeadBatch for JobBatch<'_, '_> {
    #[inline]
    fn count(&self) -> usize {
        self.0.len()
    }
    #[inline]
    fn op(&mut self, i: usize) -> (&[u8], &[u8], &mut [u8]) {
        self.0[i].parts()
    }
    #[inline]
    fn set_ok(&mut self, i: usize, ok: bool) {
        self.0[i].ok = ok;
    }
}
