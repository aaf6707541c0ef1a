//! The crypto of a burst's parked packets (librte_ipsec's "process" step): one call per SA
//! group, or, when the burst is spread over many SAs, one trip through the worker's queue pair.

use super::{AfterCrypto, Forwarder};
use crate::esp::crypto::Aead;
use crate::esp::cryptodev::MixedJobs;
use crate::packet::PacketBuf;
use arrayvec::ArrayVec;
use dpdk_sys::{AeadQueue, MAX_BURST};

impl Forwarder {
    /// One backend call per SA group (`groups`: each group's first parked packet and the set
    /// of its packets), each group's packets in arrival order. `slot[j]` is where parked packet
    /// j sits in `bufs`. Returns the set of parked packets sealed or opened.
    #[inline(always)]
    pub(super) fn run_per_sa<B: PacketBuf>(
        &self,
        bufs: &mut [B],
        slot: &[u8],
        groups: &[(usize, u32)],
    ) -> u32 {
        let mut ok: u32 = 0;
        for &(first, members) in groups {
            let Some(keys) = self.keying(self.pending.step(first)) else {
                continue; // The SA went away: its packets fail.
            };
            let mut jobs: ArrayVec<crate::esp::crypto::Job<'_>, MAX_BURST> = ArrayVec::new();
            let mut which: ArrayVec<u8, MAX_BURST> = ArrayVec::new();
            let mut rest = members;
            let mut walk = Walk::new(bufs);
            while rest != 0 {
                let j = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                let Some(b) = slot.get(j).and_then(|&at| walk.take(usize::from(at))) else {
                    break;
                };
                if let Some(job) = self.pending.prep[j].job(b.data_mut(), &keys) {
                    jobs.push(job);
                    which.push(j as u8);
                }
            }
            keys.cipher.process(&mut jobs);
            let (mut packets, mut bytes) = (0, 0);
            for (job, &j) in jobs.iter().zip(&which) {
                if job.ok {
                    ok |= 1 << j;
                    if let AfterCrypto::Seal { inner_len, .. } = self.pending.step(usize::from(j)) {
                        packets += 1;
                        bytes += u64::from(inner_len);
                    }
                }
            }
            drop(jobs);
            if let AfterCrypto::Seal { tunnel, .. } = self.pending.step(first) {
                self.count_sealed(tunnel, packets, bytes);
            }
        }
        ok
    }

    /// Every parked packet, each under its SA's device session, in one enqueue and one
    /// dequeue on the worker's queue pair. `None`, with nothing done, when an SA's cipher is
    /// not on the device (the caller then goes per SA).
    pub(super) fn run_queued<B: PacketBuf>(
        &self,
        q: &mut AeadQueue,
        bufs: &mut [B],
        slot: &[u8],
    ) -> Option<u32> {
        let mut batch = MixedJobs::default();
        let mut which: ArrayVec<u8, MAX_BURST> = ArrayVec::new();
        let mut walk = Walk::new(bufs);
        for (j, &at) in slot.iter().enumerate() {
            let b = walk.take(usize::from(at))?;
            let Some(keys) = self.keying(self.pending.step(j)) else {
                continue; // The SA went away: the packet fails.
            };
            let session = keys.cipher.device_session()?;
            if let Some(job) = self.pending.prep[j].job(b.data_mut(), &keys) {
                if batch.push(job, session) {
                    which.push(j as u8);
                }
            }
        }
        q.process(&mut batch);
        let mut ok: u32 = 0;
        for (job, &j) in batch.jobs.iter().zip(&which) {
            if job.ok {
                ok |= 1 << j;
                if let AfterCrypto::Seal {
                    tunnel, inner_len, ..
                } = self.pending.step(usize::from(j))
                {
                    self.count_sealed(tunnel, 1, u64::from(inner_len));
                }
            }
        }
        Some(ok)
    }
}

/// One walk of a burst, front to back, lending out the packets at rising positions (parked
/// packets are in arrival order, so their slots rise), each borrowed apart from the others.
struct Walk<'b, B> {
    rest: &'b mut [B],
    /// Position in the burst of `rest[0]`.
    base: usize,
}

impl<'b, B> Walk<'b, B> {
    fn new(bufs: &'b mut [B]) -> Self {
        Walk {
            rest: bufs,
            base: 0,
        }
    }

    /// The packet at `at`; `None` if it is behind the walk or past the burst.
    #[inline(always)]
    fn take(&mut self, at: usize) -> Option<&'b mut B> {
        let skip = at.checked_sub(self.base)?;
        if skip >= self.rest.len() {
            return None;
        }
        let (b, after) = std::mem::take(&mut self.rest)[skip..].split_first_mut()?;
        self.rest = after;
        self.base = at + 1;
        Some(b)
    }
}
