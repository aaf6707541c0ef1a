//! The load generator's loop, on one lcore: send what the pacer allows, receive, and stop by
//! itself once the packet or time bound is reached and the replies have drained.

use crate::latency::Latency;
use crate::rx::{self, Receiver};
use crate::tx::{Pacer, Sender, Source};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// At most this many RX bursts per TX round.
const RX_BURSTS_PER_ROUND: usize = 4;

#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Stop sending after this many packets (0: no packet bound).
    pub packets: u64,
    /// Stop sending after this long.
    pub duration: Duration,
    /// Then receive for at most this long, or until everything sent came back.
    pub grace: Duration,
}

/// Runs until the bounds are met or `stop` is set (then the grace period still runs).
/// Returns the share (0..1) of the loop's wall time this thread was on a CPU: below 1, something
/// else ran on our CPU and the figures carry that noise.
pub fn run(
    tx: &mut Sender,
    rx: &mut Receiver,
    idle_port: u16,
    rate: u64,
    bounds: Bounds,
    stop: &AtomicBool,
    lat: &mut Latency,
) -> f64 {
    // A memif client hands its receive buffers to the server in its first RX burst: until
    // then the gateway has no room to send us anything and would drop its first replies.
    rx::drain(rx.port());
    rx::drain(idle_port);
    let hz = dpdk_sys::eal::tsc_hz().max(1);
    let cycles = |d: Duration| (d.as_secs_f64() * hz as f64) as u64;
    let start = dpdk_sys::eal::tsc();
    let pacer = Pacer::new(rate, hz, start);
    let end = start.saturating_add(cycles(bounds.duration));
    let grace = cycles(bounds.grace);
    let mut tx_done: Option<u64> = None;
    let (wall, cpu) = (std::time::Instant::now(), thread_cpu());
    loop {
        let now = dpdk_sys::eal::tsc();
        match tx_done {
            None => {
                let reached = bounds.packets > 0 && tx.stats.packets >= bounds.packets;
                if now >= end || reached || stop.load(Ordering::Relaxed) {
                    tx.discard_pending();
                    tx_done = Some(now);
                } else {
                    let left = if bounds.packets > 0 {
                        bounds.packets.saturating_sub(tx.offered())
                    } else {
                        u64::MAX
                    };
                    let new = pacer.allowance(now, tx.offered()).min(left);
                    if new > 0 || tx.offered() > tx.stats.packets {
                        tx.round(new, now);
                    }
                }
            }
            Some(done) => {
                if rx.stats.packets >= tx.stats.packets || now.saturating_sub(done) >= grace {
                    break;
                }
            }
        }
        let tx_tsc: &[u64] = match &tx.source {
            Source::Esp(p) => &p.tx_tsc,
            Source::Clear(_) => &[],
        };
        // Receive first: while replies keep coming in full bursts, take a few more before the
        // next TX round, so that a moment of delay on our side does not overflow the ring the
        // gateway sends into.
        for _ in 0..RX_BURSTS_PER_ROUND {
            if rx.poll(tx_tsc, lat) < dataplane::burst::MAX_BURST {
                break;
            }
        }
        rx::drain(idle_port);
    }
    let secs = wall.elapsed().as_secs_f64();
    if secs > 0.0 {
        (thread_cpu() - cpu).as_secs_f64() / secs
    } else {
        0.0
    }
}

/// CPU time (user + system) of the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write into; the clock id is a constant.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}
