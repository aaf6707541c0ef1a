//! The result of a run: a human summary and the same figures as JSON. Only what the load
//! generator itself measured; the gateway's own counters are in its stats file.

use crate::latency::Summary;
use crate::rx::RxStats;
use crate::tx::TxStats;
use serde::Serialize;
use std::fmt::Write as _;

/// What was asked for.
#[derive(Debug, Clone, Serialize)]
pub struct Params {
    pub direction: &'static str,
    /// A frame size in bytes, or "imix".
    pub frame_size: String,
    pub tunnels: usize,
    pub flows: u64,
    /// Requested packets per second; 0: as fast as the gateway takes them.
    pub rate_pps: u64,
    pub duration_s: f64,
    /// 0: bounded by the duration only.
    pub packets_limit: u64,
    /// Encrypt direction: one received packet in this many is decrypted for latency.
    pub sample_every: u64,
    /// Decrypt direction: prepared ESP packets replayed in order.
    pub pool: usize,
}

/// A packet count over a time window, as a rate.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Rate {
    pub packets: u64,
    /// Ethernet frame bytes without FCS.
    pub bytes: u64,
    pub seconds: f64,
    pub mpps: f64,
    pub gbps: f64,
}

impl Rate {
    pub fn new(packets: u64, bytes: u64, seconds: f64) -> Rate {
        let per_s = |x: f64| if seconds > 0.0 { x / seconds } else { 0.0 };
        Rate {
            packets,
            bytes,
            seconds,
            mpps: per_s(packets as f64) / 1e6,
            gbps: per_s(bytes as f64 * 8.0) / 1e9,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub params: Params,
    /// Accepted by the TX queue, over the time from the first to the last accepted burst.
    pub offered: Rate,
    /// Our packets received, over the time from the first to the last received burst.
    pub received: Rate,
    /// offered - received, after the grace period (negative would mean duplicates).
    pub loss_packets: i64,
    pub loss_ratio: f64,
    pub latency: Summary,
    /// Stamps that could not give a latency (from the future, or an unknown pool index).
    pub latency_invalid: u64,
    pub tx: TxStats,
    pub rx: RxStats,
    /// Share (0..1) of the run the load generator's thread was on its CPU; below 1, something
    /// else ran there and the latency tail shows it.
    pub cpu_share: f64,
}

impl Report {
    pub fn new(
        params: Params,
        tx: TxStats,
        rx: RxStats,
        latency: Summary,
        invalid: u64,
        hz: u64,
    ) -> Report {
        let secs = |a: u64, b: u64| b.saturating_sub(a) as f64 / hz.max(1) as f64;
        let offered = Rate::new(tx.packets, tx.bytes, secs(tx.first_tsc, tx.last_tsc));
        let received = Rate::new(rx.packets, rx.bytes, secs(rx.first_tsc, rx.last_tsc));
        let loss = tx.packets as i64 - rx.packets as i64;
        Report {
            params,
            offered,
            received,
            loss_packets: loss,
            loss_ratio: if tx.packets > 0 {
                loss as f64 / tx.packets as f64
            } else {
                0.0
            },
            latency,
            latency_invalid: invalid,
            tx,
            rx,
            cpu_share: 0.0,
        }
    }

    pub fn render(&self) -> String {
        let p = &self.params;
        let mut s = String::new();
        let rate = if p.rate_pps == 0 {
            "max".to_string()
        } else {
            format!("{} pps", p.rate_pps)
        };
        let size = if p.frame_size == "imix" {
            "IMIX".to_string()
        } else {
            format!("{}-byte", p.frame_size)
        };
        let _ = writeln!(
            s,
            "espgw-loadgen: {}, {size} frames, {} tunnel(s), {} flow(s), rate {rate}",
            p.direction, p.tunnels, p.flows
        );
        for (name, r) in [("offered", &self.offered), ("received", &self.received)] {
            let _ = writeln!(
                s,
                "  {name:<9} {:>12} pkts {:>9.3} Mpps {:>8.3} Gbps  over {:.3} s",
                r.packets, r.mpps, r.gbps, r.seconds
            );
        }
        let _ = writeln!(
            s,
            "  loss      {:>12} pkts ({:.4} %)",
            self.loss_packets,
            self.loss_ratio * 100.0
        );
        let l = &self.latency;
        let us = |ns: u64| ns as f64 / 1000.0;
        let _ = writeln!(
            s,
            "  latency   p50 {:.1} us  p99 {:.1} us  p99.9 {:.1} us  max {:.1} us  ({} samples)",
            us(l.p50_ns),
            us(l.p99_ns),
            us(l.p999_ns),
            us(l.max_ns),
            l.samples
        );
        if p.direction == "encrypt" {
            let _ = writeln!(
                s,
                "  decrypted samples: {} authenticated, {} failed ({} ICV failures)",
                self.rx.samples_ok, self.rx.samples_failed, self.rx.auth_failures
            );
        }
        let full = if self.tx.rounds > 0 {
            100.0 * self.tx.partial_bursts as f64 / self.tx.rounds as f64
        } else {
            0.0
        };
        let _ = writeln!(
            s,
            "  TX queue full in {full:.1} % of rounds; no mbuf {}, not ours {}, bad stamps {}",
            self.tx.no_mbuf,
            self.rx.not_ours,
            self.rx.bad_stamps + self.latency_invalid
        );
        let _ = writeln!(
            s,
            "  this process had its CPU {:.1} % of the run (bytes: Ethernet frames without FCS)",
            self.cpu_share * 100.0
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_loss() {
        let r = Rate::new(2_000_000, 128_000_000, 2.0);
        assert_eq!((r.mpps, r.gbps), (1.0, 0.512));
        assert_eq!(Rate::new(5, 5, 0.0).mpps, 0.0);
        let params = Params {
            direction: "encrypt",
            frame_size: "64".into(),
            tunnels: 1,
            flows: 1,
            rate_pps: 0,
            duration_s: 1.0,
            packets_limit: 0,
            sample_every: 16,
            pool: 0,
        };
        let tx = TxStats {
            packets: 100,
            bytes: 6400,
            first_tsc: 1000,
            last_tsc: 2000,
            ..Default::default()
        };
        let rx = RxStats {
            packets: 90,
            ..Default::default()
        };
        let rep = Report::new(params, tx, rx, Summary::default(), 0, 1000);
        assert_eq!((rep.loss_packets, rep.loss_ratio), (10, 0.1));
        assert_eq!(rep.offered.seconds, 1.0);
        let text = rep.render();
        assert!(text.contains("loss                10 pkts"), "{text}");
        let json = serde_json::to_value(&rep).unwrap();
        assert_eq!(json["offered"]["packets"], 100);
        assert_eq!(json["latency"]["p99_ns"], 0);
    }
}
