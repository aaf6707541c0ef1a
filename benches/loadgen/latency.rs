//! Latency samples: TSC cycles from the moment a packet is handed to the TX queue to the moment
//! it is read back from the RX queue, converted to nanoseconds into an HDR histogram.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency recorded exactly (60 s); anything above is clamped to it.
const MAX_NS: u64 = 60_000_000_000;

pub struct Latency {
    hist: Histogram<u64>,
    ns_per_cycle: f64,
    /// Stamps from the future (or garbage): not recorded.
    pub invalid: u64,
}

/// Percentiles in nanoseconds.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Summary {
    pub samples: u64,
    pub min_ns: u64,
    pub mean_ns: f64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
}

impl Latency {
    /// `tsc_hz`: the TSC frequency the stamps are counted in.
    pub fn new(tsc_hz: u64) -> Result<Latency, String> {
        let hist = Histogram::new_with_bounds(1, MAX_NS, 3).map_err(|e| e.to_string())?;
        Ok(Latency {
            hist,
            ns_per_cycle: 1e9 / tsc_hz.max(1) as f64,
            invalid: 0,
        })
    }

    /// Records one packet sent at TSC `sent` and received at TSC `now`.
    #[inline]
    pub fn record(&mut self, sent: u64, now: u64) {
        if sent == 0 || sent > now {
            self.invalid += 1;
            return;
        }
        let ns = ((now - sent) as f64 * self.ns_per_cycle) as u64;
        self.hist.saturating_record(ns.clamp(1, MAX_NS));
    }

    pub fn summary(&self) -> Summary {
        let h = &self.hist;
        if h.is_empty() {
            return Summary::default();
        }
        Summary {
            samples: h.len(),
            min_ns: h.min(),
            mean_ns: h.mean(),
            p50_ns: h.value_at_quantile(0.5),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            max_ns: h.max(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_cycles_and_takes_percentiles() {
        // 2 GHz: 2 cycles per ns.
        let mut l = Latency::new(2_000_000_000).unwrap();
        assert_eq!(l.summary(), Summary::default());
        for i in 1..=1000u64 {
            l.record(1000, 1000 + 2 * 1000 * i);
        }
        l.record(5, 4);
        l.record(0, 4);
        let s = l.summary();
        assert_eq!((s.samples, l.invalid), (1000, 2));
        let near = |v: u64, want: u64| v.abs_diff(want) * 100 <= want;
        assert!(near(s.p50_ns, 500_000), "{s:?}");
        assert!(near(s.p99_ns, 990_000), "{s:?}");
        assert!(near(s.max_ns, 1_000_000), "{s:?}");
        assert!(near(s.min_ns, 1_000), "{s:?}");
    }
}
