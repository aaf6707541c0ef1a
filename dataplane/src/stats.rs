//! Where the counters are, and their snapshot as JSON (the `--stats-file` written at every
//! clean stop, and what telemetry shows).

use crate::control_state::view::View;
use crate::counters::{Stat, StatBlock};
use crate::main_lcore::MainStats;
use crate::worker::{HandoffStats, RunTime};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Every counter of a running dataplane, by owner. Readers only; the owners write.
pub struct Sources {
    pub workers: Vec<WorkerSource>,
    /// By worker index, as `workers`.
    pub handoff: Vec<Arc<HandoffStats>>,
    pub main: Arc<MainStats>,
    /// The SAs, tunnels and anchors as the main lcore's control state keeps them.
    pub view: Arc<Mutex<View>>,
    /// (port id, interface name)
    pub ports: Vec<(u16, String)>,
    /// The AEAD backend the SAs run on, for the record.
    pub crypto: String,
}

pub struct WorkerSource {
    pub lcore: u32,
    pub stats: Arc<StatBlock>,
    pub run_time: Arc<RunTime>,
}

/// A port's hardware/PMD counters.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct PortCounters {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_missed: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_nombuf: u64,
}

impl From<dpdk_sys::PortStats> for PortCounters {
    fn from(s: dpdk_sys::PortStats) -> Self {
        PortCounters {
            rx_packets: s.ipackets,
            tx_packets: s.opackets,
            rx_bytes: s.ibytes,
            tx_bytes: s.obytes,
            rx_missed: s.imissed,
            rx_errors: s.ierrors,
            tx_errors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Snapshot {
    /// The AEAD backend: `cryptodev crypto_aesni_gcm` or `ring`.
    pub crypto: String,
    /// Longest worker poll time, seconds.
    pub run_seconds: f64,
    /// Longest time a worker had traffic (first burst received to end of last), seconds:
    /// divide packet counts by it for a rate.
    pub active_seconds: f64,
    /// Counters summed over all workers.
    pub global: BTreeMap<&'static str, u64>,
    pub workers: Vec<WorkerSnapshot>,
    pub main: BTreeMap<&'static str, u64>,
    /// What the workers reported: lifetimes reached, traffic without an SA.
    pub events: crate::control_state::view::EventCounts,
    pub ports: Vec<PortSnapshot>,
    pub sas: Vec<SaSnapshot>,
    pub tunnels: Vec<TunnelSnapshot>,
    pub tunnel_map: Vec<GroupMap>,
}

/// A tunnel: where it is anchored, and the traffic of its SAs now installed.
#[derive(Debug, Serialize)]
pub struct TunnelSnapshot {
    pub name: String,
    pub index: u32,
    pub local: String,
    pub remote: String,
    pub worker: u32,
    pub group: usize,
    pub sas: usize,
    pub packets_out: u64,
    pub bytes_out: u64,
    pub packets_in: u64,
    pub bytes_in: u64,
}

#[derive(Debug, Serialize)]
pub struct WorkerSnapshot {
    pub lcore: u32,
    pub run_seconds: f64,
    pub active_seconds: f64,
    /// Time spent in rounds that had packets: the worker's share of the work.
    pub busy_seconds: f64,
    /// The longest pause between two bursts spent applying changes, microseconds, and the
    /// 99th percentile of those pauses (the upper edge of its power-of-two bucket).
    pub longest_change_pause_us: f64,
    pub p99_change_pause_us: f64,
    pub counters: BTreeMap<&'static str, u64>,
    pub handoff: HandoffSnapshot,
}

/// Handoffs from one worker, by destination worker lcore.
#[derive(Debug, Serialize)]
pub struct HandoffSnapshot {
    pub sent: BTreeMap<String, u64>,
    pub congestion_drops: BTreeMap<String, u64>,
    pub received: u64,
}

/// One anchor group in the tunnel map (as Junos `show security ike tunnel-map`).
#[derive(Debug, Serialize)]
pub struct GroupMap {
    pub group: usize,
    /// Tunnels anchored on the group per worker in it.
    pub load_factor: f64,
    pub tunnels: u32,
    pub workers: Vec<WorkerMap>,
}

#[derive(Debug, Serialize)]
pub struct WorkerMap {
    pub lcore: u32,
    pub tunnels: u32,
    pub sas: usize,
    /// Packets and bytes through the SAs this worker owns.
    pub packets: u64,
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct PortSnapshot {
    pub port: u16,
    pub interface: String,
    #[serde(flatten)]
    pub counters: PortCounters,
}

#[derive(Debug, Serialize)]
pub struct SaSnapshot {
    pub spi: String,
    pub direction: crate::sa::Direction,
    pub tunnel: String,
    /// The tunnel's index (Junos `index N`).
    pub index: Option<u32>,
    pub algorithm: &'static str,
    pub esn: bool,
    pub replay_window: u32,
    pub local: String,
    pub remote: String,
    pub udp_encap: Option<(u16, u16)>,
    /// The owning worker lcore and its anchor group.
    pub worker: u32,
    pub group: usize,
    /// Soft and hard lifetimes: `{"packets": N|null, "bytes": N|null}`.
    pub soft_lifetime: channel::Lifetime,
    pub hard_lifetime: channel::Lifetime,
    #[serde(flatten)]
    pub counters: BTreeMap<&'static str, u64>,
}

impl Sources {
    fn view(&self) -> MutexGuard<'_, View> {
        // The writer never leaves it half-written: take it even if a reader panicked.
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A counter summed over all workers, since it was last cleared.
    pub fn total(&self, s: Stat) -> u64 {
        let v = self.view();
        self.workers
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let cleared = v.cleared.get(i).map_or(0, |c| c[s as usize]);
                w.stats.get(s).wrapping_sub(cleared)
            })
            .sum()
    }

    pub fn global(&self) -> BTreeMap<&'static str, u64> {
        Stat::ALL
            .iter()
            .map(|&s| (s.name(), self.total(s)))
            .collect()
    }

    pub fn sa_snapshots(&self) -> Vec<SaSnapshot> {
        let v = self.view();
        v.sas
            .values()
            .map(|s| SaSnapshot {
                spi: format!("{:#x}", s.spi),
                direction: s.direction,
                tunnel: s.tunnel.to_string(),
                index: v.tunnels.get(&s.tunnel).map(|t| t.id),
                algorithm: s.algorithm.name(),
                esn: s.esn,
                replay_window: s.replay_window,
                local: s.local.to_string(),
                remote: s.remote.to_string(),
                udp_encap: s.udp_encap,
                worker: s.worker,
                group: s.group,
                soft_lifetime: s.soft,
                hard_lifetime: s.hard,
                counters: s.counters().into_iter().collect(),
            })
            .collect()
    }

    /// Every tunnel, with its SAs' traffic summed by direction (one pass over the SAs).
    pub fn tunnel_snapshots(&self) -> Vec<TunnelSnapshot> {
        let v = self.view();
        // Per tunnel: SAs, packets and bytes out, packets and bytes in.
        let mut sums: std::collections::HashMap<channel::Name, [u64; 5]> = Default::default();
        for s in v.sas.values() {
            let c = s.counters();
            let e = sums.entry(s.tunnel).or_default();
            e[0] += 1;
            let at = if s.direction == crate::sa::Direction::Out {
                1
            } else {
                3
            };
            e[at] += c[0].1;
            e[at + 1] += c[1].1;
        }
        v.tunnels
            .iter()
            .map(|(name, t)| {
                let mut e = sums.get(name).copied().unwrap_or_default();
                // Its SAs that are gone count too.
                if let Some(r) = v.retired.get(name) {
                    for (x, r) in e[1..].iter_mut().zip(r) {
                        *x += r;
                    }
                }
                TunnelSnapshot {
                    name: name.to_string(),
                    index: t.id,
                    local: t.local.to_string(),
                    remote: t.remote.to_string(),
                    worker: t.worker,
                    group: t.group,
                    sas: e[0] as usize,
                    packets_out: e[1],
                    bytes_out: e[2],
                    packets_in: e[3],
                    bytes_in: e[4],
                }
            })
            .collect()
    }

    /// The tunnel map: per anchor group and worker, load factor, tunnels, SAs and traffic.
    pub fn tunnel_map(&self) -> Vec<GroupMap> {
        let v = self.view();
        let a = &v.anchors;
        (0..a.groups())
            .map(|g| GroupMap {
                group: g,
                load_factor: a.load_factor(g),
                tunnels: a.tunnels_in(g),
                workers: a
                    .workers(g)
                    .iter()
                    .map(|&(lcore, tunnels)| {
                        let owned = || v.sas.values().filter(move |s| s.worker == lcore);
                        let sum = |k: usize| owned().map(|s| s.counters()[k].1).sum();
                        WorkerMap {
                            lcore,
                            tunnels,
                            sas: owned().count(),
                            packets: sum(0),
                            bytes: sum(1),
                        }
                    })
                    .collect(),
            })
            .collect()
    }

    fn handoff_snapshot(&self, index: usize) -> HandoffSnapshot {
        let per = |c: &[crate::counters::Counter]| -> BTreeMap<String, u64> {
            self.workers
                .iter()
                .zip(c)
                .filter(|(_, c)| c.get() > 0)
                .map(|(w, c)| (w.lcore.to_string(), c.get()))
                .collect()
        };
        match self.handoff.get(index) {
            Some(h) => HandoffSnapshot {
                sent: per(&h.sent),
                congestion_drops: per(&h.congestion_drops),
                received: h.received.get(),
            },
            None => HandoffSnapshot {
                sent: BTreeMap::new(),
                congestion_drops: BTreeMap::new(),
                received: 0,
            },
        }
    }

    pub fn snapshot(&self, port_counters: impl Fn(u16) -> PortCounters) -> Snapshot {
        let secs = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64 / 1e9;
        let workers: Vec<WorkerSnapshot> = self
            .workers
            .iter()
            .enumerate()
            .map(|(i, w)| WorkerSnapshot {
                lcore: w.lcore,
                run_seconds: secs(&w.run_time.nanos),
                active_seconds: secs(&w.run_time.active_nanos),
                busy_seconds: secs(&w.run_time.busy_nanos),
                longest_change_pause_us: w.run_time.longest_apply_nanos.load(Ordering::Relaxed)
                    as f64
                    / 1e3,
                p99_change_pause_us: w.run_time.apply_quantile(0.99) as f64 / 1e3,
                counters: Stat::ALL
                    .iter()
                    .map(|&s| {
                        let cleared = self.view().cleared.get(i).map_or(0, |c| c[s as usize]);
                        (s.name(), w.stats.get(s).wrapping_sub(cleared))
                    })
                    .collect(),
                handoff: self.handoff_snapshot(i),
            })
            .collect();
        // Read apart: a guard in the literal below would live through it, and the SAs'
        // snapshot takes the lock again.
        let events = self.view().events;
        Snapshot {
            crypto: self.crypto.clone(),
            run_seconds: workers.iter().map(|w| w.run_seconds).fold(0.0, f64::max),
            active_seconds: workers.iter().map(|w| w.active_seconds).fold(0.0, f64::max),
            global: self.global(),
            workers,
            main: self.main.fields().into_iter().collect(),
            events,
            ports: self
                .ports
                .iter()
                .map(|(p, name)| PortSnapshot {
                    port: *p,
                    interface: name.clone(),
                    counters: port_counters(*p),
                })
                .collect(),
            sas: self.sa_snapshots(),
            tunnels: self.tunnel_snapshots(),
            tunnel_map: self.tunnel_map(),
        }
    }
}

impl Snapshot {
    /// A text report in the spirit of Junos `show security ipsec statistics`, plus the other
    /// non-zero drop counters, the SAs and the ports.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let g = |k: &str| self.global.get(k).copied().unwrap_or(0);
        let mut s = String::new();
        let _ = writeln!(s, "ESP Statistics:");
        for (label, k) in [
            ("Encrypted bytes", "encrypted_bytes"),
            ("Decrypted bytes", "decrypted_bytes"),
            ("Encrypted packets", "encrypted_packets"),
            ("Decrypted packets", "decrypted_packets"),
        ] {
            let _ = writeln!(s, "  {:<22}{:>14}", format!("{label}:"), g(k));
        }
        let _ = writeln!(s, "Errors:");
        let _ = writeln!(
            s,
            "  ESP authentication failures: {}, Replay errors: {}",
            g("esp_auth_failures"),
            g("replay_errors")
        );
        let _ = writeln!(
            s,
            "  Bad headers: {}, Bad trailers: {}",
            g("bad_headers"),
            g("bad_trailers")
        );
        let _ = writeln!(
            s,
            "  Invalid SPI: {}, TS check fail: {}",
            g("invalid_spi"),
            g("ts_check_fail")
        );
        let _ = writeln!(
            s,
            "  Exceeds tunnel MTU: {}, Sequence exhausted: {}",
            g("exceeds_tunnel_mtu"),
            g("seq_exhausted")
        );
        let shown = [
            "encrypted_bytes",
            "decrypted_bytes",
            "encrypted_packets",
            "decrypted_packets",
            "esp_auth_failures",
            "replay_errors",
            "bad_headers",
            "bad_trailers",
            "invalid_spi",
            "ts_check_fail",
            "exceeds_tunnel_mtu",
            "seq_exhausted",
            "rx_packets",
            "tx_packets",
            "forwarded_packets",
            "decrypted_bytes",
        ];
        let others: Vec<String> = self
            .global
            .iter()
            .filter(|(k, v)| **v > 0 && !shown.contains(k))
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(
            s,
            "Forwarding: rx {} tx {} forwarded in clear {} in {:.3} s active ({:.3} s polling)",
            g("rx_packets"),
            g("tx_packets"),
            g("forwarded_packets"),
            self.active_seconds,
            self.run_seconds
        );
        if !others.is_empty() {
            let _ = writeln!(s, "Other counters: {}", others.join(", "));
        }
        let main: Vec<String> = self
            .main
            .iter()
            .filter(|(_, v)| **v > 0)
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        if !main.is_empty() {
            let _ = writeln!(s, "Main lcore: {}", main.join(", "));
        }
        let e = &self.events;
        if e.soft_lifetimes + e.hard_lifetimes + e.seq_near_exhaustion + e.acquires > 0 {
            let _ = writeln!(
                s,
                "Events: soft lifetimes {}, hard lifetimes {}, sequence near exhaustion {}, traffic without an SA {}",
                e.soft_lifetimes, e.hard_lifetimes, e.seq_near_exhaustion, e.acquires
            );
        }
        let _ = writeln!(s, "SAs:");
        let _ = writeln!(
            s,
            "  {:<12}{:<5}{:<10}{:<13}{:>12}{:>14}  errors",
            "SPI", "dir", "tunnel", "algorithm", "packets", "bytes"
        );
        for sa in &self.sas {
            let c = |k: &str| sa.counters.get(k).copied().unwrap_or(0);
            let errors = c("auth_failures")
                + c("replay_errors")
                + c("bad_trailers")
                + c("ts_check_fail")
                + c("seq_exhausted")
                + c("hard_limit_drops");
            let dir = match sa.direction {
                crate::sa::Direction::In => "in",
                crate::sa::Direction::Out => "out",
            };
            let _ = writeln!(
                s,
                "  {:<12}{:<5}{:<10}{:<13}{:>12}{:>14}  {}",
                sa.spi,
                dir,
                sa.tunnel,
                sa.algorithm,
                c("packets"),
                c("bytes"),
                errors
            );
        }
        let _ = writeln!(s, "Tunnel map:");
        let _ = writeln!(
            s,
            "  {:<7}{:<8}{:>12}{:>9}{:>6}{:>12}{:>14}",
            "group", "worker", "load factor", "tunnels", "SAs", "packets", "bytes"
        );
        for g in &self.tunnel_map {
            for w in &g.workers {
                let _ = writeln!(
                    s,
                    "  {:<7}{:<8}{:>12.2}{:>9}{:>6}{:>12}{:>14}",
                    g.group, w.lcore, g.load_factor, w.tunnels, w.sas, w.packets, w.bytes
                );
            }
        }
        for w in &self.workers {
            let h = &w.handoff;
            if h.received > 0 || !h.sent.is_empty() || !h.congestion_drops.is_empty() {
                let list = |m: &BTreeMap<String, u64>| {
                    m.iter()
                        .map(|(k, v)| format!("{k}:{v}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                let _ = writeln!(
                    s,
                    "Handoff from worker {}: sent [{}] congestion drops [{}]; received {}",
                    w.lcore,
                    list(&h.sent),
                    list(&h.congestion_drops),
                    h.received
                );
            }
        }
        let _ = writeln!(s, "Ports:");
        for p in &self.ports {
            let c = &p.counters;
            let _ = writeln!(
                s,
                "  {} (port {}): rx {} tx {} missed {} rx errors {} tx errors {} no mbuf {}",
                p.interface,
                p.port,
                c.rx_packets,
                c.tx_packets,
                c.rx_missed,
                c.rx_errors,
                c.tx_errors,
                c.rx_nombuf
            );
        }
        s
    }
}
