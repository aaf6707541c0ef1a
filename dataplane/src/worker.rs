//! A worker lcore's poll loop: apply the main lcore's commands between bursts (`link`),
//! receive a burst on each of its RX queues, run each packet through its `Forwarder` in place,
//! transmit in bursts, and report what the burst found out.
//!
//! A packet that needs an SA another worker owns is handed to that worker through a bounded
//! single-producer single-consumer ring per (from, to) pair, in bursts; the owner resumes it
//! where this worker stopped. A full ring drops and counts (handoff congestion). A worker with
//! no TX queue on a port (a PMD with fewer queues than workers) hands the frame to one that has.
//!
//! Nothing here takes a lock, allocates or makes a system call per packet; the optional
//! `poll_sleep` only runs when a whole round found no packet.

use crate::burst::MAX_BURST;
use crate::counters::{Counter, Stat};
use crate::forward::{Forwarder, Resume, Verdict};
use crate::link::{WorkerEnd, COMMANDS_PER_ROUND};
use dpdk_sys::{sys::rte_mbuf, Mbuf, Ring};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An injected mbuf whose port is this value is an IPv4 packet to route, not a frame to send.
pub const INJECT_ROUTE: u16 = u16::MAX;
/// The same for another host's packet (fragments the main lcore cut): routed as if received,
/// policies included.
pub const INJECT_TRANSIT: u16 = u16::MAX - 1;

/// How long a worker polled, and how long it had traffic, for rates computed from the stats
/// file. `active` runs from the first burst received to the end of the last, so an offline
/// run's idle wait does not dilute its rate; `busy` sums the rounds that had packets.
#[derive(Default, Debug)]
pub struct RunTime {
    pub nanos: AtomicU64,
    pub active_nanos: AtomicU64,
    pub busy_nanos: AtomicU64,
    /// The longest time one round spent applying the main lcore's commands: the longest pause
    /// between two bursts that changes cost this worker.
    pub longest_apply_nanos: AtomicU64,
    /// Those rounds by duration: bucket i counts [2^i, 2^(i+1)) ns (the last, the rest).
    pub apply_nanos_log2: [AtomicU64; APPLY_BUCKETS],
}

pub const APPLY_BUCKETS: usize = 32;

impl RunTime {
    /// The duration below which `q` (0..1) of the apply rounds fell, in nanoseconds (the
    /// upper edge of its bucket): 0 with no round.
    pub fn apply_quantile(&self, q: f64) -> u64 {
        let counts: Vec<u64> = self
            .apply_nanos_log2
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0;
        }
        let want = (q * total as f64).ceil() as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                return 1u64 << (i + 1).min(63);
            }
        }
        u64::MAX
    }
}

/// One worker's handoff counters, by destination worker index.
#[derive(Debug)]
pub struct HandoffStats {
    pub sent: Vec<Counter>,
    /// The ring to that worker was full ("handoff congestion drops").
    pub congestion_drops: Vec<Counter>,
    pub received: Counter,
}

impl HandoffStats {
    pub fn new(workers: usize) -> HandoffStats {
        HandoffStats {
            sent: (0..workers).map(|_| Counter::default()).collect(),
            congestion_drops: (0..workers).map(|_| Counter::default()).collect(),
            received: Counter::default(),
        }
    }
}

/// How this worker transmits on a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxPath {
    /// On its own TX queue.
    Queue(u16),
    /// Through the worker with this index, which has a queue there.
    Via(u16),
    /// Not a port of ours.
    None,
}

pub struct Worker {
    pub lcore: u32,
    /// (port, RX queue) pairs this worker polls.
    pub rx: Vec<(u16, u16)>,
    /// By port id.
    pub tx: Vec<TxPath>,
    pub fwd: Forwarder,
    /// Commands from the main lcore, and what goes back.
    pub link: WorkerEnd,
    /// Set by the main lcore once the start-up state is in the links: until then the worker
    /// applies commands and polls nothing, so that no early packet meets a half-built table.
    pub ready: Arc<AtomicBool>,
    /// Frames for the main lcore (ARP, ICMP, IKE).
    pub punt: Arc<Ring>,
    /// Frames and packets from the main lcore to send or route.
    pub inject: Arc<Ring>,
    /// Handoff rings to each worker by index (`None` for itself and when alone).
    pub handoff_out: Vec<Option<Arc<Ring>>>,
    /// Handoff rings from the other workers.
    pub handoff_in: Vec<Arc<Ring>>,
    pub handoff_stats: Arc<HandoffStats>,
    pub stop: Arc<AtomicBool>,
    pub poll_sleep: Duration,
    pub run_time: Arc<RunTime>,
}

/// A burst being gathered for one destination (TX queue or handoff ring).
struct Burst {
    bufs: [*mut rte_mbuf; MAX_BURST],
    n: usize,
}

impl Burst {
    fn new() -> Burst {
        Burst {
            bufs: [ptr::null_mut(); MAX_BURST],
            n: 0,
        }
    }
}

/// Where this round's packets are going.
struct Out {
    /// By port id.
    tx: Vec<Burst>,
    /// By worker index.
    handoff: Vec<Burst>,
}

/// Where a burst comes from, which decides each packet's first step.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// Received on this port.
    Port(u16),
    /// From the main lcore: a frame to send, or a packet to route.
    Inject,
    /// From another worker, resuming where it stopped.
    Handoff,
}

impl Worker {
    /// The loop; returns when `stop` is set. Runs on its own lcore.
    pub fn run(mut self) -> i32 {
        let mut out = Out {
            tx: self.tx.iter().map(|_| Burst::new()).collect(),
            handoff: self.handoff_out.iter().map(|_| Burst::new()).collect(),
        };
        let mut rx = [ptr::null_mut::<rte_mbuf>(); MAX_BURST];
        let hz = dpdk_sys::eal::tsc_hz().max(1000);
        let ms = hz / 1000;
        while !self.ready.load(Ordering::Acquire) && !self.stop.load(Ordering::Relaxed) {
            if self.link.apply(&mut self.fwd, usize::MAX) == 0 {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
        self.link.apply(&mut self.fwd, usize::MAX);
        let started = Instant::now();
        let (mut first_rx, mut last_rx, mut busy) = (0u64, 0u64, 0u64);
        let mut longest_apply = 0u64;
        while !self.stop.load(Ordering::Relaxed) {
            let now = dpdk_sys::eal::tsc();
            self.fwd.now_ms = now / ms;
            if self.link.apply(&mut self.fwd, COMMANDS_PER_ROUND) > 0 {
                let took = dpdk_sys::eal::tsc().saturating_sub(now);
                let nanos = (u128::from(took) * 1_000_000_000 / u128::from(hz)) as u64;
                let b = (63 - nanos.max(1).leading_zeros() as usize).min(APPLY_BUCKETS - 1);
                let c = &self.run_time.apply_nanos_log2[b];
                c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                if took > longest_apply {
                    longest_apply = took;
                    self.run_time
                        .longest_apply_nanos
                        .store(nanos, Ordering::Relaxed);
                }
            }
            let mut got = self.drain_inject(&mut rx, &mut out);
            got += self.drain_handoff(&mut rx, &mut out);
            for i in 0..self.rx.len() {
                let (port, queue) = self.rx[i];
                // SAFETY: rx has room for MAX_BURST pointers; only this worker polls this queue.
                let n = unsafe { dpdk_sys::rx_burst(port, queue, &mut rx) };
                if n == 0 {
                    continue;
                }
                got += n;
                self.fwd.stats.add(Stat::RxPackets, n as u64);
                // SAFETY: the PMD handed us ownership of each received mbuf.
                unsafe { self.process_burst(&mut rx[..n], Source::Port(port), &mut out) };
            }
            self.flush_all(&mut out);
            self.link.report(&mut self.fwd);
            if got > 0 {
                if first_rx == 0 {
                    first_rx = now;
                }
                last_rx = dpdk_sys::eal::tsc();
                busy += last_rx - now;
            } else if !self.poll_sleep.is_zero() {
                std::thread::sleep(self.poll_sleep);
            }
        }
        self.flush_all(&mut out);
        // What the worker still holds goes back to the main lcore, which frees it.
        self.link.apply(&mut self.fwd, usize::MAX);
        self.link.retire_all(&mut self.fwd);
        let nanos = |cycles: u64| (u128::from(cycles) * 1_000_000_000 / u128::from(hz)) as u64;
        self.run_time
            .nanos
            .store(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.run_time
            .active_nanos
            .store(nanos(last_rx - first_rx), Ordering::Relaxed);
        self.run_time
            .busy_nanos
            .store(nanos(busy), Ordering::Relaxed);
        0
    }

    fn drain_inject(&mut self, scratch: &mut [*mut rte_mbuf; MAX_BURST], out: &mut Out) -> usize {
        let n = self.inject.dequeue_mbufs(scratch);
        if n > 0 {
            // SAFETY: the main lcore gave up ownership when it enqueued the mbufs.
            unsafe { self.process_burst(&mut scratch[..n], Source::Inject, out) };
        }
        n
    }

    fn drain_handoff(&mut self, scratch: &mut [*mut rte_mbuf; MAX_BURST], out: &mut Out) -> usize {
        let mut total = 0;
        for r in 0..self.handoff_in.len() {
            let n = self.handoff_in[r].dequeue_mbufs(scratch);
            if n == 0 {
                continue;
            }
            total += n;
            self.handoff_stats.received.add(n as u64);
            // SAFETY: the sending worker gave up ownership when it enqueued the mbufs.
            unsafe { self.process_burst(&mut scratch[..n], Source::Handoff, out) };
        }
        total
    }

    /// Runs a burst through the pipeline: every packet up to its crypto, then the crypto per
    /// SA, then each packet on its way, in the order received. The packets are worked on where
    /// they lie in `raws`, whose entries are stale once this returns.
    ///
    /// # Safety
    /// Each entry of `raws` (at most `MAX_BURST`) is a valid mbuf whose ownership passes here.
    unsafe fn process_burst(&mut self, raws: &mut [*mut rte_mbuf], src: Source, out: &mut Out) {
        debug_assert!(raws.len() <= MAX_BURST, "a burst is at most MAX_BURST");
        let n = raws.len().min(MAX_BURST);
        // SAFETY: `Mbuf` is a transparent non-null mbuf pointer, and every entry is a valid
        // mbuf the caller gave us; the slice borrows `raws` for as long as it is used.
        let burst: &mut [Mbuf] =
            unsafe { &mut *ptr::slice_from_raw_parts_mut(raws.as_mut_ptr().cast::<Mbuf>(), n) };
        let mut verdicts = [Verdict::Drop(Stat::Malformed); MAX_BURST];
        let fwd = &mut self.fwd;
        match src {
            Source::Port(port) => {
                fwd.prefetch_sas(burst);
                for (m, v) in burst.iter_mut().zip(verdicts.iter_mut()) {
                    *v = if m.is_contiguous() {
                        fwd.receive(port, m)
                    } else {
                        fwd.stats.inc(Stat::Segmented);
                        Verdict::Drop(Stat::Segmented)
                    };
                }
            }
            Source::Inject => {
                for (m, v) in burst.iter_mut().zip(verdicts.iter_mut()) {
                    *v = match m.port() {
                        INJECT_ROUTE => fwd.output_ip(m),
                        INJECT_TRANSIT => fwd.transit_ip(m),
                        port => Verdict::Tx(port),
                    };
                }
            }
            Source::Handoff => {
                for (m, v) in burst.iter_mut().zip(verdicts.iter_mut()) {
                    *v = match Resume::from_tag(m.tag()) {
                        Some(resume) => fwd.resume(m, resume),
                        None => {
                            fwd.stats.inc(Stat::Malformed);
                            Verdict::Drop(Stat::Malformed)
                        }
                    };
                }
            }
        }
        if fwd.has_parked() {
            fwd.complete(burst, &mut verdicts[..n]);
        }
        for (i, &v) in verdicts.iter().enumerate().take(n) {
            // SAFETY: each mbuf is taken out of the burst exactly once, here, and the burst is
            // not used again (`raws` holds plain pointers: nothing frees them twice).
            let m = unsafe { ptr::read(&burst[i]) };
            self.dispatch(m, v, out);
        }
    }

    #[inline]
    fn dispatch(&mut self, mut m: Mbuf, v: Verdict, out: &mut Out) {
        match v {
            Verdict::Tx(port) => match self
                .tx
                .get(usize::from(port))
                .copied()
                .unwrap_or(TxPath::None)
            {
                TxPath::Queue(queue) => {
                    let b = &mut out.tx[usize::from(port)];
                    if b.n == MAX_BURST {
                        self.flush_tx(port, queue, b);
                    }
                    b.bufs[b.n] = m.into_raw();
                    b.n += 1;
                }
                TxPath::Via(worker) => self.dispatch(
                    m,
                    Verdict::Handoff {
                        worker,
                        resume: Resume::Transmit(port).into(),
                    },
                    out,
                ),
                TxPath::None => self.fwd.stats.inc(Stat::TxDrops),
            },
            Verdict::Handoff { worker, resume } => {
                let w = usize::from(worker);
                if self.handoff_out.get(w).is_none_or(|r| r.is_none()) {
                    // No ring to that worker: a bug in the start-up, but never a crash.
                    self.fwd.stats.inc(Stat::TxDrops);
                    return;
                }
                m.set_tag(resume.0);
                if out.handoff[w].n == MAX_BURST {
                    self.flush_handoff(w, &mut out.handoff[w]);
                }
                let b = &mut out.handoff[w];
                b.bufs[b.n] = m.into_raw();
                b.n += 1;
            }
            Verdict::Punt(why) => {
                m.set_tag(why.tag());
                let raw = m.into_raw();
                if self.punt.enqueue_mbufs(&[raw]) == 0 {
                    // SAFETY: the ring did not take it, so it is still ours to free.
                    drop(unsafe { Mbuf::from_raw(raw) });
                    self.fwd.stats.inc(Stat::PuntDrops);
                }
            }
            Verdict::Drop(_) => drop(m),
            // `complete` replaced every one of these; never a leak if that changes.
            Verdict::Crypto(_) => {
                drop(m);
                self.fwd.stats.inc(Stat::CryptoErrors);
            }
        }
    }

    fn flush_all(&self, out: &mut Out) {
        // Handoffs first: a handed-off frame may come back to us for nothing, but the TX
        // bursts are ours alone.
        for (w, b) in out.handoff.iter_mut().enumerate() {
            self.flush_handoff(w, b);
        }
        for (port, b) in out.tx.iter_mut().enumerate() {
            if let Some(TxPath::Queue(q)) = self.tx.get(port) {
                self.flush_tx(port as u16, *q, b);
            }
        }
    }

    fn flush_tx(&self, port: u16, queue: u16, b: &mut Burst) {
        if b.n == 0 {
            return;
        }
        // SAFETY: the first b.n entries are mbufs we own; tx_burst takes those it sends, and
        // only this worker uses this TX queue.
        let sent = unsafe { dpdk_sys::tx_burst(port, queue, &mut b.bufs[..b.n]) };
        self.fwd.stats.add(Stat::TxPackets, sent as u64);
        if sent < b.n {
            self.fwd.stats.add(Stat::TxDrops, (b.n - sent) as u64);
            // SAFETY: the unsent mbufs are still ours.
            unsafe { dpdk_sys::mbuf::free_bulk(&mut b.bufs[sent..b.n]) };
        }
        b.n = 0;
    }

    fn flush_handoff(&self, w: usize, b: &mut Burst) {
        if b.n == 0 {
            return;
        }
        let Some(ring) = self.handoff_out.get(w).and_then(|r| r.as_ref()) else {
            return;
        };
        let sent = ring.enqueue_mbufs(&b.bufs[..b.n]);
        self.handoff_stats.sent[w].add(sent as u64);
        if sent < b.n {
            self.handoff_stats.congestion_drops[w].add((b.n - sent) as u64);
            // SAFETY: the ring did not take these; they are still ours.
            unsafe { dpdk_sys::mbuf::free_bulk(&mut b.bufs[sent..b.n]) };
        }
        b.n = 0;
    }
}
