//! A burst's crypto, batched (librte_ipsec's "process" step): the packets that need an AEAD are
//! parked as jobs while the burst runs through the pipeline, then their crypto runs in one call
//! per SA, or, when the burst is spread over many SAs, in one trip through the worker's queue
//! pair. The batch owns the parked jobs and the queue pair; the tables lend it the SAs.

use super::tables::Tables;
use super::{fibonacci, InboundIndex, TunnelId, Verdict};
use crate::burst::MAX_BURST;
use crate::esp::crypto::{Aead, AeadOps, DeviceSession, QueuePair};
use crate::esp::Prepared;
use crate::packet::PacketBuf;
use crate::sa::SaCrypto;
use arrayvec::ArrayVec;

/// A packet's place among the parked jobs of its burst, carried by its `Verdict::Crypto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parked(pub u8);

/// Seal a packet into a tunnel, then send the frame (Ethernet header already written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealJob {
    pub tunnel: TunnelId,
    pub port: u16,
    /// The inner packet's length, for the SA's byte counters.
    pub inner_len: u16,
    /// ESP in UDP over IPv6: the UDP checksum is filled once sealed.
    pub udp6: bool,
}

/// Open the ESP at `esp_off` under an inbound SA, then finish the decapsulation and route the
/// inner packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenJob {
    pub sa: InboundIndex,
    pub esp_off: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    Seal(SealJob),
    Open(OpenJob),
}

impl Job {
    /// One value per SA, so that a batch can be grouped by SA: a tunnel's outbound SA and an
    /// inbound index with the same number are different SAs.
    #[inline(always)]
    pub(super) fn sa_key(&self) -> u64 {
        match self {
            Job::Seal(s) => (1 << 32) | u64::from(s.tunnel),
            Job::Open(o) => u64::from(o.sa.0),
        }
    }

    /// The SA the job runs under, as the tables hold it now.
    #[inline(always)]
    pub fn sa<'t>(&self, tables: &'t Tables) -> Option<&'t SaCrypto> {
        match self {
            Job::Seal(s) => tables.outbound(s.tunnel).map(|sa| &sa.crypto),
            Job::Open(o) => tables.inbound(o.sa).map(|sa| &sa.crypto),
        }
    }
}

/// Whether new jobs are parked, or run at once: while a batch's jobs are being finished, a
/// decrypted packet routed into a tunnel runs its crypto at once, since the batch has run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Parking,
    Finishing,
}

/// The parked packets of a burst, in arrival order, kept field by field: writing each field in
/// place (rather than moving a built struct in) spares the store-forwarding stalls a per-packet
/// struct copy costs.
pub struct CryptoBatch {
    len: usize,
    prep: [Prepared; MAX_BURST],
    job: [Job; MAX_BURST],
    /// Each job's SA as one number (`Job::sa_key`), taken when it is parked: the passes that
    /// group the burst by SA then read plain words, without a branch per job.
    key: [u64; MAX_BURST],
    phase: Phase,
    /// The worker's queue pair on the crypto device, for bursts spread over many SAs.
    queue: Option<Box<dyn QueuePair>>,
}

/// Where each parked job's packet lies in the burst (`CryptoBatch::locate`).
pub type Positions = [u8; MAX_BURST];

impl Default for CryptoBatch {
    fn default() -> Self {
        CryptoBatch {
            len: 0,
            prep: [Prepared {
                offset: 0,
                len: 0,
                seq: 0,
            }; MAX_BURST],
            job: [Job::Open(OpenJob {
                sa: InboundIndex(0),
                esp_off: 0,
            }); MAX_BURST],
            key: [0; MAX_BURST],
            phase: Phase::Parking,
            queue: None,
        }
    }
}

/// What one run of a batch did.
pub struct Ran {
    /// Bit k: job k sealed, or opened with an ICV that verified.
    pub ok: u32,
    /// The jobs went through the queue pair.
    pub queued: bool,
    /// The jobs were under more than one SA.
    pub mixed: bool,
}

impl CryptoBatch {
    pub fn set_queue(&mut self, q: Box<dyn QueuePair>) {
        self.queue = Some(q);
    }

    /// Whether a job can be parked now (not when the batch is full, or being finished: then
    /// it runs at once).
    #[inline(always)]
    pub fn can_park(&self) -> bool {
        self.len < MAX_BURST && self.phase == Phase::Parking
    }

    /// Parks a packet's job; only after `can_park`.
    #[inline(always)]
    pub fn park(&mut self, prep: Prepared, job: Job) -> Parked {
        debug_assert!(self.can_park());
        // The mask only keeps the index in bounds without a check; `can_park` has said k fits.
        let k = self.len & (MAX_BURST - 1);
        self.key[k] = job.sa_key();
        self.job[k] = job;
        let p = &mut self.prep[k];
        p.offset = prep.offset;
        p.len = prep.len;
        p.seq = prep.seq;
        self.len = k + 1;
        Parked(k as u8)
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Parked job `k` (the index its verdict carries, below `MAX_BURST`).
    #[inline(always)]
    pub fn job(&self, k: Parked) -> &Job {
        &self.job[usize::from(k.0) & (MAX_BURST - 1)]
    }

    #[inline(always)]
    pub fn prepared(&self, k: Parked) -> Prepared {
        self.prep[usize::from(k.0) & (MAX_BURST - 1)]
    }

    /// From here until `clear`, new jobs run at once.
    pub fn finishing(&mut self) {
        self.phase = Phase::Finishing;
    }

    /// Empties the batch and parks again.
    pub fn clear(&mut self) {
        self.len = 0;
        self.phase = Phase::Parking;
    }

    /// Where each parked job's packet lies in the burst, from the jobs' indexes in the
    /// verdicts. `None` unless every job is met exactly once and in the order parked.
    pub fn locate(&self, verdicts: &[Verdict]) -> Option<Positions> {
        let mut pos = [0u8; MAX_BURST];
        let mut next = 0;
        for (i, v) in verdicts.iter().enumerate().take(u8::MAX.into()) {
            if let Verdict::Crypto(Parked(k)) = *v {
                if usize::from(k) != next || next >= MAX_BURST {
                    return None;
                }
                pos[next] = i as u8;
                next += 1;
            }
        }
        (next == self.len).then_some(pos)
    }

    /// How the parked jobs spread over SAs, in branch-free passes: whether they are under more
    /// than one, and if so a lower bound on how many (each SA sets one bit of a 64-bit filter
    /// by its hash; SAs whose hashes collide count once). Enough to send a burst spread over
    /// many tunnels to the queue pair without grouping it first.
    #[inline(always)]
    pub fn spread(&self) -> (bool, u32) {
        let n = self.len.min(MAX_BURST);
        if n == 0 {
            return (false, 0);
        }
        let keys = &self.key[..n];
        let first = keys[0];
        let mixed = keys.iter().fold(0, |d, &k| d | (k ^ first));
        if mixed == 0 {
            return (false, 1);
        }
        let seen = keys
            .iter()
            .fold(0u64, |seen, &k| seen | 1 << fibonacci(k, 6));
        (true, seen.count_ones())
    }

    /// The parked jobs grouped by SA, in order of first appearance: each group's first job and
    /// the set of its jobs (bit j = job j). A job of the same SA as the one before joins its
    /// group at once (a burst is usually one SA, or runs of one); any other is looked up in a
    /// small open-addressed table from SA to group, so a burst spread over many tunnels costs
    /// one probe sequence per job, not a rescan of the burst per SA.
    pub fn groups(&self) -> ArrayVec<(usize, u32), MAX_BURST> {
        const SLOTS: usize = 2 * MAX_BURST;
        const EMPTY: u8 = u8::MAX;
        // The u32 member sets, the u8 group numbers and the hash's shift rely on these.
        const _: () = assert!(MAX_BURST.is_power_of_two() && MAX_BURST <= 32);
        let mut groups: ArrayVec<(usize, u32), MAX_BURST> = ArrayVec::new();
        let mut table = [EMPTY; SLOTS];
        let mut last: Option<(u64, usize)> = None;
        for (j, &key) in self.key[..self.len.min(MAX_BURST)].iter().enumerate() {
            if let Some((k, g)) = last {
                if k == key {
                    groups[g].1 |= 1 << j;
                    continue;
                }
            }
            let mut h = fibonacci(key, SLOTS.trailing_zeros());
            let g = loop {
                let g = usize::from(table[h]);
                if table[h] == EMPTY {
                    // At most MAX_BURST jobs, so at most MAX_BURST groups.
                    table[h] = groups.len() as u8;
                    let _ = groups.try_push((j, 0));
                    break groups.len() - 1;
                }
                if self.key[groups[g].0] == key {
                    break g;
                }
                h = (h + 1) % SLOTS;
            };
            groups[g].1 |= 1 << j;
            last = Some((key, g));
        }
        groups
    }

    /// Runs every parked job's crypto: one CPU-crypto call for a burst under one SA (the usual
    /// one), in one pass over the burst; for a burst spread over many SAs, one trip through
    /// the queue pair, or one call per SA (see `esp::crypto::cryptodev` for the costs).
    /// `verdicts` say which packet of `bufs` is which job: `None`, with nothing run, unless
    /// every job is met exactly once and in the order parked.
    pub fn run<B: PacketBuf>(
        &mut self,
        tables: &Tables,
        bufs: &mut [B],
        verdicts: &[Verdict],
    ) -> Option<Ran> {
        let n = self.len;
        let (mixed, sas) = self.spread();
        if !mixed {
            return self.run_in_order(tables, bufs, verdicts).map(|ok| Ran {
                ok,
                queued: false,
                mixed: false,
            });
        }
        // The filter's count settles most bursts; the groups settle the rest.
        let groups = (sas as usize * 3 <= n).then(|| self.groups());
        let many = groups.as_ref().is_none_or(|g| g.len() * 3 > n);
        if many {
            if let Some(ok) = self.run_queued(tables, bufs, verdicts) {
                return Some(Ran {
                    ok,
                    queued: true,
                    mixed: true,
                });
            }
        }
        let pos = self.locate(verdicts)?;
        let groups = groups.unwrap_or_else(|| self.groups());
        let ok = groups.iter().fold(0, |ok, &(first, members)| {
            ok | self.run_group(tables, bufs, &pos, first, members)
        });
        Some(Ran {
            ok,
            queued: false,
            mixed: true,
        })
    }

    /// Every job under one SA (the usual burst), met in one pass over the burst. `None`,
    /// with nothing run, when the verdicts do not name the jobs in order.
    #[inline(always)]
    fn run_in_order<B: PacketBuf>(
        &self,
        tables: &Tables,
        bufs: &mut [B],
        verdicts: &[Verdict],
    ) -> Option<u32> {
        let mut next = 0;
        let len = self.len.min(MAX_BURST);
        let sa = match self.job.first().and_then(|j| j.sa(tables)) {
            Some(sa) if len > 0 => sa,
            // Nothing parked, or the SA went away: its packets fail.
            _ => return (self.locate(verdicts).is_some()).then_some(0),
        };
        let mut ops = AeadOps::new();
        let mut which = [0u8; MAX_BURST];
        for (b, v) in bufs.iter_mut().zip(verdicts) {
            let Verdict::Crypto(Parked(k)) = *v else {
                continue;
            };
            let k = usize::from(k);
            if k != next || k >= len {
                return None;
            }
            next += 1;
            if let Some(i) = self.prep[k].push(b.data_mut(), sa, &mut ops) {
                which[i & (MAX_BURST - 1)] = k as u8;
            }
        }
        if next != len {
            return None;
        }
        sa.cipher.process(&mut ops);
        Some(outcomes(&ops, &which))
    }

    /// One SA's jobs (`members`, the SA that of job `first`) in one call to its cipher: which
    /// of them succeeded.
    #[inline(always)]
    fn run_group<B: PacketBuf>(
        &self,
        tables: &Tables,
        bufs: &mut [B],
        pos: &Positions,
        first: usize,
        members: u32,
    ) -> u32 {
        let Some(sa) = self.job[first].sa(tables) else {
            return 0; // The SA went away: its packets fail.
        };
        let mut ops = AeadOps::new();
        let mut which = [0u8; MAX_BURST];
        let mut walk = Walk::new(bufs);
        let mut rest = members;
        while rest != 0 {
            let j = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            let Some(b) = walk.take(usize::from(pos[j])) else {
                break;
            };
            if let Some(i) = self.prep[j].push(b.data_mut(), sa, &mut ops) {
                which[i] = j as u8;
            }
        }
        sa.cipher.process(&mut ops);
        outcomes(&ops, &which)
    }

    /// Every parked job, each under its SA's device session, in one enqueue and one dequeue on
    /// the queue pair, met in one pass over the burst as in `run_in_order`. `None`, with
    /// nothing done, without a queue pair, when an SA's cipher is not on the device, or when
    /// the verdicts do not name the jobs in order (the caller then goes per SA, which checks
    /// the order itself).
    fn run_queued<B: PacketBuf>(
        &mut self,
        tables: &Tables,
        bufs: &mut [B],
        verdicts: &[Verdict],
    ) -> Option<u32> {
        let q = self.queue.as_mut()?;
        let len = self.len.min(MAX_BURST);
        let mut next = 0;
        let mut ops = AeadOps::new();
        let mut sessions: ArrayVec<DeviceSession, MAX_BURST> = ArrayVec::new();
        let mut which = [0u8; MAX_BURST];
        for (b, v) in bufs.iter_mut().zip(verdicts) {
            let Verdict::Crypto(Parked(k)) = *v else {
                continue;
            };
            let k = usize::from(k);
            if k != next || k >= len {
                return None;
            }
            next += 1;
            // An SA gone away leaves its packet out: it fails.
            let Some(sa) = self.job[k].sa(tables) else {
                continue;
            };
            let session = sa.cipher.device_session()?;
            if let Some(i) = self.prep[k].push(b.data_mut(), sa, &mut ops) {
                which[i & (MAX_BURST - 1)] = k as u8;
                let _ = sessions.try_push(session);
            }
        }
        if next != len {
            return None;
        }
        let done = q.process(&mut ops, &sessions);
        if q.is_stuck() {
            // Never seen with a software PMD; the queue's drop leaves to the device what it
            // holds, and the worker goes on with CPU crypto.
            self.queue = None;
        }
        done.then(|| outcomes(&ops, &which))
    }
}

/// Which jobs succeeded: operation i of `ops` ran job `which[i]`.
#[inline(always)]
fn outcomes(ops: &AeadOps<'_>, which: &[u8; MAX_BURST]) -> u32 {
    let mut ok = 0;
    for (i, &j) in which[..ops.len().min(MAX_BURST)].iter().enumerate() {
        if ops.ok(i) {
            ok |= 1 << j;
        }
    }
    ok
}

/// One walk of a burst, front to back, lending out the packets at rising positions (parked
/// packets are in arrival order, so their positions rise), each borrowed apart from the others.
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
