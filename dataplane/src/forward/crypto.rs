//! The crypto of a burst's parked packets (librte_ipsec's "process" step): one call per SA
//! group, or, when the burst is spread over many SAs, one trip through the worker's queue pair.

use super::{parked, AfterCrypto, Forwarder, Verdict};
use crate::counters::Stat;
use crate::esp::crypto::{Aead, AeadOps};
use crate::esp::Keying;
use crate::packet::PacketBuf;
use arrayvec::ArrayVec;
use dpdk_sys::{AeadQueue, AeadSession, MAX_BURST};

impl Forwarder {
    /// One backend call per SA group (`groups`: each group's first parked packet and the set
    /// of its packets), each group's packets in arrival order. `slot[j]` is where parked packet
    /// j sits in `bufs`. Returns the set of parked packets sealed or opened.
    pub(super) fn run_per_sa<B: PacketBuf>(
        &self,
        bufs: &mut [B],
        slot: &[u8],
        groups: &[(usize, u32)],
    ) -> u32 {
        let mut ok: u32 = 0;
        for &(first, members) in groups {
            let step = self.pending.step(first);
            let Some(keys) = self.keying(step) else {
                continue; // The SA went away: its packets fail.
            };
            let mut ops = AeadOps::new();
            let mut pushed = 0;
            let mut rest = members;
            let mut walk = Walk::new(bufs);
            while rest != 0 {
                let j = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                let Some(b) = slot.get(j).and_then(|&at| walk.take(usize::from(at))) else {
                    break;
                };
                if self.pending.prep[j]
                    .push(b.data_mut(), &keys, &mut ops)
                    .is_some()
                {
                    pushed |= 1 << j;
                }
            }
            ok |= self.run_group(step, &keys, &mut ops, pushed);
        }
        ok
    }

    /// `run_per_sa` for a burst all under one SA (the usual one), whose parked packets are
    /// met in one pass over the burst: the k-th `Crypto` of `verdicts` is parked packet k.
    #[inline(always)]
    pub(super) fn run_one_sa<B: PacketBuf>(&self, bufs: &mut [B], verdicts: &[Verdict]) -> u32 {
        let step = self.pending.step(0);
        let Some(keys) = self.keying(step) else {
            return 0; // The SA went away: its packets fail.
        };
        let mut ops = AeadOps::new();
        let mut pushed = 0;
        for (j, b, _) in parked(bufs, verdicts) {
            if self.pending.prep[j]
                .push(b.data_mut(), &keys, &mut ops)
                .is_some()
            {
                pushed |= 1 << j;
            }
        }
        self.run_group(step, &keys, &mut ops, pushed)
    }

    /// One SA's batch through its cipher: which of the parked packets of `pushed` (the set
    /// whose operations are in `ops`, in order) succeeded, the sealed ones counted.
    #[inline(always)]
    fn run_group(
        &self,
        step: AfterCrypto,
        keys: &Keying<'_>,
        ops: &mut AeadOps<'_>,
        pushed: u32,
    ) -> u32 {
        keys.cipher.process(ops);
        let done = outcomes(ops, pushed);
        if let AfterCrypto::Seal { tunnel, .. } = step {
            self.count_sealed(tunnel, done.count_ones().into(), self.inner_bytes(done));
        }
        done
    }

    /// Every parked packet, each under its SA's device session, in one enqueue and one
    /// dequeue on the worker's queue pair, met in one pass over the burst as in `run_one_sa`.
    /// `None`, with nothing done, when an SA's cipher is not on the device (the caller then
    /// goes per SA).
    pub(super) fn run_queued<B: PacketBuf>(
        &self,
        q: &mut AeadQueue,
        bufs: &mut [B],
        verdicts: &[Verdict],
    ) -> Option<u32> {
        let mut ops = AeadOps::new();
        let mut sessions: ArrayVec<&AeadSession, MAX_BURST> = ArrayVec::new();
        let mut pushed = 0;
        for (j, b, _) in parked(bufs, verdicts) {
            // An SA gone away leaves its packet out: it fails.
            if let Some(keys) = self.keying(self.pending.step(j)) {
                let session = keys.cipher.device_session()?;
                if self.pending.prep[j]
                    .push(b.data_mut(), &keys, &mut ops)
                    .is_some()
                {
                    sessions.push(session);
                    pushed |= 1 << j;
                }
            }
        }
        q.process(&mut ops, &sessions);
        self.stats.inc(Stat::QueuedBursts);
        let ok = outcomes(&ops, pushed);
        // Each sealed packet on its tunnel's counters; the worker's totals once.
        let (mut packets, mut bytes) = (0, 0);
        let mut rest = ok;
        while rest != 0 {
            let j = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            if self.pending.seal[j] {
                let inner = u64::from(self.pending.extra[j]);
                if let Some(sa) = self.outbound_sa(self.pending.sa[j]) {
                    sa.counters.carried(1, inner);
                }
                packets += 1;
                bytes += inner;
            }
        }
        self.count_encrypted(packets, bytes);
        Some(ok)
    }

    /// The inner bytes of the parked packets in `set` that were sealed.
    #[inline(always)]
    fn inner_bytes(&self, set: u32) -> u64 {
        let mut rest = set;
        let mut bytes = 0;
        while rest != 0 {
            let j = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            if self.pending.seal[j] {
                bytes += u64::from(self.pending.extra[j]);
            }
        }
        bytes
    }
}

/// Which parked packets of `pushed` (the set whose operations went into `ops`, in order)
/// succeeded: the k-th operation is the k-th packet of the set.
#[inline(always)]
fn outcomes(ops: &AeadOps<'_>, pushed: u32) -> u32 {
    let (mut ok, mut rest, mut k) = (0, pushed, 0);
    while rest != 0 {
        let j = rest.trailing_zeros();
        rest &= rest - 1;
        if ops.ok(k) {
            ok |= 1 << j;
        }
        k += 1;
    }
    ok
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
