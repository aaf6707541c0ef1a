//! Transmit: fill fresh mbufs from the traffic source, stamp them with the TSC just before the
//! burst, and hand them to the port. What the queue does not take stays pending and is
//! re-stamped and offered again next round, so a full queue costs no rebuilt packets and the
//! timestamp is always the moment of the accepted burst. No heap allocation per packet: mbufs
//! come from the mempool and frames are written in place.

use crate::traffic::{ClearFrames, EspPool, TSC_OFF};
use dataplane::burst::MAX_BURST;
use dpdk_sys::sys::rte_mbuf;
use dpdk_sys::{Mbuf, Mempool};
use serde::Serialize;
use std::ptr;

/// Where frames come from.
pub enum Source {
    /// Encrypt direction: cleartext built per packet, the TSC in its payload.
    Clear(ClearFrames),
    /// Decrypt direction: prepared ESP frames, the TSC in `EspPool::tx_tsc`.
    Esp(EspPool),
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct TxStats {
    /// Packets and frame bytes accepted by the TX queue.
    pub packets: u64,
    pub bytes: u64,
    /// Rounds that offered packets to the queue, and those in which it took fewer than
    /// offered (backpressure: at rate 0, a high share means the gateway, not this process,
    /// set the pace).
    pub rounds: u64,
    pub partial_bursts: u64,
    /// Times the mempool was empty.
    pub no_mbuf: u64,
    #[serde(skip)]
    pub first_tsc: u64,
    #[serde(skip)]
    pub last_tsc: u64,
}

/// Sends at most `rate` packets per second (0: as fast as the queue takes them), judged
/// against the TSC since `start`.
pub struct Pacer {
    rate: u64,
    hz: u64,
    start: u64,
}

impl Pacer {
    pub fn new(rate: u64, hz: u64, start: u64) -> Pacer {
        Pacer {
            rate,
            hz: hz.max(1),
            start,
        }
    }

    /// How many more packets may go out at `now`, given `done` already sent or pending.
    #[inline]
    pub fn allowance(&self, now: u64, done: u64) -> u64 {
        if self.rate == 0 {
            return u64::MAX;
        }
        let elapsed = u128::from(now.saturating_sub(self.start));
        let due = elapsed * u128::from(self.rate) / u128::from(self.hz);
        u64::try_from(due).unwrap_or(u64::MAX).saturating_sub(done)
    }
}

pub struct Sender<'a> {
    port: u16,
    pool: &'a Mempool,
    pub source: Source,
    pending: [*mut rte_mbuf; MAX_BURST],
    /// Per pending packet: its pool index (decrypt) and its frame length.
    tags: [usize; MAX_BURST],
    lens: [u16; MAX_BURST],
    npend: usize,
    /// Next packet number of the schedule.
    next: u64,
    pub stats: TxStats,
}

impl<'a> Sender<'a> {
    pub fn new(port: u16, pool: &'a Mempool, source: Source) -> Sender<'a> {
        Sender {
            port,
            pool,
            source,
            pending: [ptr::null_mut(); MAX_BURST],
            tags: [0; MAX_BURST],
            lens: [0; MAX_BURST],
            npend: 0,
            next: 0,
            stats: TxStats::default(),
        }
    }

    /// Packets sent or waiting to be.
    pub fn offered(&self) -> u64 {
        self.stats.packets + self.npend as u64
    }

    /// Builds up to `new` packets, stamps everything pending with `now` and offers it to the
    /// queue. Returns how many the queue took.
    pub fn round(&mut self, new: u64, now: u64) -> usize {
        let room = (MAX_BURST - self.npend) as u64;
        for _ in 0..new.min(room) {
            if !self.fill_one() {
                break;
            }
        }
        if self.npend == 0 {
            return 0;
        }
        for i in 0..self.npend {
            self.stamp(i, now);
        }
        self.stats.rounds += 1;
        // SAFETY: port 0 queue 0 of a started port, polled by this thread only; the first
        // npend entries are mbufs we own.
        let sent = unsafe { dpdk_sys::tx_burst(self.port, 0, &mut self.pending[..self.npend]) };
        if sent > 0 {
            if self.stats.first_tsc == 0 {
                self.stats.first_tsc = now;
            }
            self.stats.last_tsc = now;
            self.stats.packets += sent as u64;
            self.stats.bytes += self.lens[..sent].iter().map(|&l| u64::from(l)).sum::<u64>();
        }
        if sent < self.npend {
            self.stats.partial_bursts += 1;
            self.pending.copy_within(sent..self.npend, 0);
            self.tags.copy_within(sent..self.npend, 0);
            self.lens.copy_within(sent..self.npend, 0);
        }
        self.npend -= sent;
        sent
    }

    /// Frees what is still pending (at the end of the run); it was never sent.
    pub fn discard_pending(&mut self) {
        // SAFETY: the first npend entries are mbufs we own and never touch again.
        unsafe { dpdk_sys::mbuf::free_bulk(&mut self.pending[..self.npend]) };
        self.npend = 0;
    }

    /// Appends the next scheduled packet to the pending burst; false if no mbuf is free.
    fn fill_one(&mut self) -> bool {
        let Some(mut m) = self.pool.alloc() else {
            self.stats.no_mbuf += 1;
            return false;
        };
        let k = self.next;
        let (tag, len) = match &self.source {
            Source::Clear(c) => {
                let size = c.size(k);
                let built = u16::try_from(size)
                    .ok()
                    .and_then(|s| m.append(s))
                    .is_some_and(|buf| c.build(k, buf));
                if !built {
                    return false;
                }
                (0, size)
            }
            Source::Esp(p) => {
                let i = (k % p.len().max(1) as u64) as usize;
                let frame = p.frame(i);
                let Some(buf) = u16::try_from(frame.len()).ok().and_then(|l| m.append(l)) else {
                    return false;
                };
                buf.copy_from_slice(frame);
                (i, frame.len())
            }
        };
        self.next += 1;
        self.tags[self.npend] = tag;
        self.lens[self.npend] = len as u16;
        self.pending[self.npend] = m.into_raw();
        self.npend += 1;
        true
    }

    #[inline]
    fn stamp(&mut self, i: usize, now: u64) {
        match &mut self.source {
            Source::Clear(_) => {
                // SAFETY: pending[i] is an mbuf we own; ownership goes back into the array.
                let mut m = unsafe { Mbuf::from_raw(self.pending[i]) };
                if let Some(t) = m.data_mut().get_mut(TSC_OFF..TSC_OFF + 8) {
                    t.copy_from_slice(&now.to_be_bytes());
                }
                self.pending[i] = m.into_raw();
            }
            Source::Esp(p) => {
                if let Some(t) = p.tx_tsc.get_mut(self.tags[i]) {
                    *t = now;
                }
            }
        }
    }
}

impl Drop for Sender<'_> {
    fn drop(&mut self) {
        self.discard_pending();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacer_allows_what_is_due() {
        let p = Pacer::new(1000, 1_000_000, 500);
        assert_eq!(p.allowance(500, 0), 0);
        assert_eq!(p.allowance(1500, 0), 1);
        assert_eq!(p.allowance(1_000_500, 400), 600);
        assert_eq!(p.allowance(1_000_500, 2000), 0);
        assert_eq!(p.allowance(100, 0), 0, "before the start");
        assert_eq!(Pacer::new(0, 1, 0).allowance(0, 1 << 40), u64::MAX);
    }
}
