//! A worker lcore's poll loop: apply commands between bursts, receive a burst on every port,
//! run each packet through its `Forwarder` in place, transmit in bursts.
//!
//! Nothing here takes a lock, allocates or makes a system call per packet; the optional
//! `poll_sleep` only runs when a whole round found no packet.

use crate::counters::Stat;
use crate::forward::{Command, Forwarder, Verdict};
use crossbeam::channel::{Receiver, Sender};
use dpdk_sys::{sys::rte_mbuf, Mbuf, Ring, MAX_BURST};
use std::net::Ipv4Addr;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An injected mbuf whose port is this value is an IPv4 packet to route, not a frame to send.
pub const INJECT_ROUTE: u16 = u16::MAX;
/// Commands applied per loop round, so a flood of changes cannot starve the packets.
const COMMANDS_PER_ROUND: usize = 64;

/// What a worker tells the main lcore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Resolve this next hop on this port.
    Resolve { port: u16, addr: Ipv4Addr },
}

/// How long a worker polled, and how long it had traffic, for rates computed from the stats
/// file: `active` runs from the first burst received to the end of the last one, so an offline
/// run's idle wait does not dilute its rate.
#[derive(Default, Debug)]
pub struct RunTime {
    pub nanos: AtomicU64,
    pub active_nanos: AtomicU64,
}

pub struct Worker {
    pub lcore: u32,
    /// This worker's RX and TX queue index on every port.
    pub queue: u16,
    pub ports: Vec<u16>,
    pub fwd: Forwarder,
    pub commands: Receiver<Command>,
    pub events: Sender<Event>,
    /// Frames for the main lcore (ARP, ICMP, IKE).
    pub punt: Arc<Ring>,
    /// Frames and packets from the main lcore to send or route.
    pub inject: Arc<Ring>,
    pub stop: Arc<AtomicBool>,
    pub poll_sleep: Duration,
    pub run_time: Arc<RunTime>,
}

struct TxBuf {
    bufs: [*mut rte_mbuf; MAX_BURST],
    n: usize,
}

impl Worker {
    /// The loop; returns when `stop` is set. Runs on its own lcore.
    pub fn run(mut self) -> i32 {
        let max_port = self.ports.iter().copied().max().map_or(0, usize::from);
        let mut tx: Vec<TxBuf> = (0..=max_port)
            .map(|_| TxBuf {
                bufs: [ptr::null_mut(); MAX_BURST],
                n: 0,
            })
            .collect();
        let mut rx = [ptr::null_mut::<rte_mbuf>(); MAX_BURST];
        let hz = dpdk_sys::eal::tsc_hz().max(1000);
        let ms = hz / 1000;
        let started = Instant::now();
        let (mut first_rx, mut last_rx) = (0u64, 0u64);
        while !self.stop.load(Ordering::Relaxed) {
            let now = dpdk_sys::eal::tsc();
            self.fwd.now_ms = now / ms;
            for cmd in self.commands.try_iter().take(COMMANDS_PER_ROUND) {
                self.fwd.apply(cmd);
            }
            let mut got = self.drain_inject(&mut rx, &mut tx);
            for i in 0..self.ports.len() {
                let port = self.ports[i];
                // SAFETY: rx has room for MAX_BURST pointers; the PMD fills the first n.
                let n = unsafe { dpdk_sys::rx_burst(port, self.queue, &mut rx) };
                if n == 0 {
                    continue;
                }
                got += n;
                self.fwd.stats.add(Stat::RxPackets, n as u64);
                for &raw in &rx[..n] {
                    // SAFETY: the PMD handed us ownership of each received mbuf.
                    let mut m = unsafe { Mbuf::from_raw(raw) };
                    let v = if m.is_contiguous() {
                        self.fwd.receive(port, &mut m)
                    } else {
                        self.fwd.stats.inc(Stat::Segmented);
                        Verdict::Drop(Stat::Segmented)
                    };
                    self.dispatch(m, v, &mut tx);
                }
            }
            for (port, t) in tx.iter_mut().enumerate() {
                self.flush(port as u16, t);
            }
            for (port, addr) in self.fwd.resolve.drain(..) {
                // A full channel only delays resolution; the next miss asks again.
                let _ = self.events.try_send(Event::Resolve { port, addr });
            }
            if got > 0 {
                if first_rx == 0 {
                    first_rx = now;
                }
                last_rx = dpdk_sys::eal::tsc();
            } else if !self.poll_sleep.is_zero() {
                std::thread::sleep(self.poll_sleep);
            }
        }
        self.run_time
            .nanos
            .store(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        let active = u128::from(last_rx - first_rx) * 1_000_000_000 / u128::from(hz);
        self.run_time
            .active_nanos
            .store(active as u64, Ordering::Relaxed);
        for (port, t) in tx.iter_mut().enumerate() {
            self.flush(port as u16, t);
        }
        0
    }

    fn drain_inject(
        &mut self,
        scratch: &mut [*mut rte_mbuf; MAX_BURST],
        tx: &mut [TxBuf],
    ) -> usize {
        let n = self.inject.dequeue_mbufs(scratch);
        for &raw in &scratch[..n] {
            // SAFETY: the main lcore gave up ownership when it enqueued the mbuf.
            let mut m = unsafe { Mbuf::from_raw(raw) };
            let v = if m.port() == INJECT_ROUTE {
                self.fwd.output_ip(&mut m)
            } else {
                Verdict::Tx(m.port())
            };
            self.dispatch(m, v, tx);
        }
        n
    }

    #[inline]
    fn dispatch(&mut self, m: Mbuf, v: Verdict, tx: &mut [TxBuf]) {
        match v {
            Verdict::Tx(port) => match tx.get_mut(usize::from(port)) {
                Some(t) => {
                    if t.n == MAX_BURST {
                        self.flush(port, t);
                    }
                    t.bufs[t.n] = m.into_raw();
                    t.n += 1;
                }
                None => self.fwd.stats.inc(Stat::TxDrops),
            },
            Verdict::Punt => {
                let raw = m.into_raw();
                if self.punt.enqueue_mbufs(&[raw]) == 0 {
                    // SAFETY: the ring did not take it, so it is still ours to free.
                    drop(unsafe { Mbuf::from_raw(raw) });
                    self.fwd.stats.inc(Stat::PuntDrops);
                }
            }
            Verdict::Drop(_) => drop(m),
        }
    }

    fn flush(&self, port: u16, t: &mut TxBuf) {
        if t.n == 0 {
            return;
        }
        // SAFETY: the first t.n entries are mbufs we own; tx_burst takes those it sends.
        let sent = unsafe { dpdk_sys::tx_burst(port, self.queue, &mut t.bufs[..t.n]) };
        self.fwd.stats.add(Stat::TxPackets, sent as u64);
        if sent < t.n {
            self.fwd.stats.add(Stat::TxDrops, (t.n - sent) as u64);
            // SAFETY: the unsent mbufs are still ours.
            unsafe { dpdk_sys::mbuf::free_bulk(&mut t.bufs[sent..t.n]) };
        }
        t.n = 0;
    }
}
