//! The fast-path AEAD backend: a DPDK crypto device (`crypto_aesni_gcm`, intel-ipsec-mb). A batch
//! under one SA goes through synchronous CPU crypto, one call per SA batch; a burst spread over
//! many SAs goes through a worker's queue pair (`AeadQueue`), one enqueue and one dequeue for
//! all of it. CPU crypto costs about 20 ns a call beyond the AEAD on these machines, and an
//! operation through the queue about 7 ns more than one of a CPU-crypto call (criterion's
//! `seal-queue` and `seal-32-sas-queue` rows): the queue pays off once a burst holds more than
//! about a third as many SAs as packets. Where no such device can be had, the dataplane falls
//! back to `ring` (see `Backend`).

use super::crypto::{Aead, AeadOps, CryptoError, Keymat, Op};
use dpdk_sys::{AeadDirection, AeadQueue, AeadSession, Cryptodev, SessionPool};
use std::sync::Arc;

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
    pub fn queue(&self, index: u16) -> Option<Result<AeadQueue, String>> {
        (index < self.queue_pairs).then(|| {
            AeadQueue::new(
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
    fn process(&self, ops: &mut AeadOps<'_>) {
        self.0.process(ops);
    }
    #[inline]
    fn device_session(&self) -> Option<&AeadSession> {
        Some(&self.0)
    }
}
