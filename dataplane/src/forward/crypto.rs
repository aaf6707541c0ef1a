//! The crypto of a burst's parked packets (librte_ipsec's "process" step): one call per SA
//! group, or, when the burst is spread over many SAs, one trip through the worker's queue pair.

use super::{AfterCrypto, Forwarder};
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
            // Walk the burst once, front to back, taking this SA's packets.
            let mut tail: &mut [B] = bufs;
            let mut base = 0;
            while rest != 0 {
                let j = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                let Some(&at) = slot.get(j) else { break };
                let at = usize::from(at);
                let Some((b, after)) = std::mem::take(&mut tail)
                    .get_mut(at - base..)
                    .and_then(|t| t.split_first_mut())
                else {
                    break;
                };
                tail = after;
                base = at + 1;
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
        let mut tail: &mut [B] = bufs;
        let mut base = 0;
        // Parked packets are in arrival order, so their slots rise: one walk of the burst.
        for (j, &at) in slot.iter().enumerate() {
            let at = usize::from(at);
            let (b, after) = std::mem::take(&mut tail)
                .get_mut(at - base..)
                .and_then(|t| t.split_first_mut())?;
            tail = after;
            base = at + 1;
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
