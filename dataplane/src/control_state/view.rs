//! What the dataplane shows of itself (telemetry, the stats file): the SAs with their settings
//! and counters, the tunnels and where they are anchored, and the events the workers raised.
//! The main lcore's `ControlState` updates it with every change it applies; readers on other
//! threads take its lock for as long as they read. Never a key.

use crate::anchor::Anchors;
use crate::counters::{CounterRef, Stat, SA_COUNTER_NAMES};
use crate::esp::crypto::Algorithm;
use crate::sa::Direction;
use channel::Name;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// An SA as listed: outbound SAs by their tunnel (a tunnel has one, and outbound SPIs are the
/// peers' choice, so two tunnels may share one), inbound SAs by SPI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SaKey {
    Out(Name),
    In(u32),
}

#[derive(Debug, Clone)]
pub struct SaView {
    pub spi: u32,
    pub direction: Direction,
    pub tunnel: Name,
    pub algorithm: Algorithm,
    pub esn: bool,
    /// Inbound only; 0 for outbound SAs.
    pub replay_window: u32,
    pub local: IpAddr,
    pub remote: IpAddr,
    pub udp_encap: Option<(u16, u16)>,
    /// The worker lcore that owns the SA, and its anchor group.
    pub worker: u32,
    pub group: usize,
    /// Its lifetimes (packets, bytes; `None`: no limit).
    pub soft: channel::Lifetime,
    pub hard: channel::Lifetime,
    pub counters: CounterRef,
    /// The counters' values when they were last cleared.
    pub cleared: [u64; 8],
}

impl SaView {
    /// The counters as the operator sees them (since the last clear), named as
    /// `SA_COUNTER_NAMES`.
    pub fn counters(&self) -> [(&'static str, u64); 8] {
        let v = self.counters.values();
        std::array::from_fn(|i| (SA_COUNTER_NAMES[i], v[i].wrapping_sub(self.cleared[i])))
    }
}

#[derive(Debug, Clone)]
pub struct TunnelView {
    pub id: u32,
    pub local: IpAddr,
    pub remote: IpAddr,
    pub worker: u32,
    pub group: usize,
}

/// Events the workers raised, counted by the main lcore.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct EventCounts {
    pub soft_lifetimes: u64,
    pub hard_lifetimes: u64,
    pub seq_near_exhaustion: u64,
    pub acquires: u64,
}

pub struct View {
    pub sas: BTreeMap<SaKey, SaView>,
    pub tunnels: BTreeMap<Name, TunnelView>,
    pub anchors: Anchors,
    pub events: EventCounts,
    /// Each worker's global counters when they were last cleared.
    pub cleared: Vec<[u64; Stat::COUNT]>,
    /// Per tunnel, the traffic of its SAs that are gone (replaced by a rekey, or deleted):
    /// packets and bytes out, packets and bytes in. A tunnel's traffic is its SAs' past and
    /// present, so that a graph of it does not fall to zero at each rekey.
    pub retired: BTreeMap<Name, [u64; 4]>,
}

impl View {
    pub fn new(anchors: Anchors, workers: usize) -> View {
        View {
            sas: BTreeMap::new(),
            tunnels: BTreeMap::new(),
            anchors,
            events: EventCounts::default(),
            cleared: vec![[0; Stat::COUNT]; workers],
            retired: BTreeMap::new(),
        }
    }

    /// Keeps or replaces the SA of `key`; a replaced one's traffic stays with its tunnel.
    pub fn set_sa(&mut self, key: SaKey, sa: SaView) {
        if let Some(old) = self.sas.insert(key, sa) {
            self.retire(&old);
        }
    }

    /// Removes the SA of `key`; its traffic stays with its tunnel.
    pub fn remove_sa(&mut self, key: &SaKey) {
        if let Some(old) = self.sas.remove(key) {
            self.retire(&old);
        }
    }

    fn retire(&mut self, sa: &SaView) {
        let c = sa.counters();
        let at = if sa.direction == Direction::Out { 0 } else { 2 };
        let e = self.retired.entry(sa.tunnel).or_default();
        e[at] += c[0].1;
        e[at + 1] += c[1].1;
    }
}
