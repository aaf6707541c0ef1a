//! The main lcore's control state: it takes each plain-data change (`channel::Change`, from the
//! JSON loader or the control process), checks it against what is installed, and turns it into
//! worker commands, in one place. It allocates tunnel ids and inbound SA indexes, anchors new
//! tunnels (`anchor`), builds each SA's cipher on the crypto backend and the SA itself in its
//! worker's SA pool, keeps what telemetry shows (`View`), and frees what the workers retire.
//!
//! Every change gets a generation; each worker publishes the last one it applied, so
//! `in_force` tells when a change is in force on every worker it concerns (a rekey installs
//! the new inbound SA everywhere before the outbound one switches).

mod apply;
pub mod grants;
pub mod idle;
mod network;
mod network6;
mod policies;
mod sas;
pub mod sync;
mod tunnels;
pub mod view;

use crate::anchor::Anchors;
use crate::counters::{CounterRef, SaCounters, Stat, StatBlock};
use crate::esp::crypto::Backend;
use crate::esp::outer::TunnelEncap;
use crate::forward::lpm::Lpm;
use crate::forward::{
    Capacity, Event, InboundIndex, Interface, Retired, Target, Target6, TunnelId, WorkerIndex,
};
use crate::link::{self, MainEnd, WorkerEnd};
use crate::mem::{Memory, Pool, Slots};
use crate::sa::{Direction, InboundSa, OutboundSa, SaEventKind, Selectors};
use crate::wire::ethernet::Mac;
use channel::{Name, TunnelSpec};
use ipnet::{Ipv4Net, Ipv6Net};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use view::{SaKey, View};

/// Why a change was refused: what it was about, and why. Nothing of it was applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct ChangeError {
    pub what: String,
    pub reason: String,
}

fn refuse<T>(what: impl std::fmt::Display, reason: impl Into<String>) -> Result<T, ChangeError> {
    Err(ChangeError {
        what: what.to_string(),
        reason: reason.into(),
    })
}

/// One worker as the control state knows it.
#[derive(Debug, Clone, Copy)]
pub struct WorkerInfo {
    pub lcore: u32,
    /// Its NUMA socket: its tables and SAs are allocated there.
    pub socket: i32,
}

/// What the control state is built from.
pub struct Setup {
    pub workers: Vec<WorkerInfo>,
    /// Anchor groups, as lists of worker lcores.
    pub groups: Vec<Vec<u32>>,
    pub capacity: Capacity,
    pub memory: Memory,
    pub backend: Backend,
    /// Commands in flight to a worker before they wait in the backlog.
    pub link_capacity: usize,
    /// A port's own MAC, for interfaces that name none.
    pub port_mac: Box<dyn Fn(u16) -> Mac + Send>,
    /// Each worker's global counters, by index (to clear them).
    pub stats: Vec<Arc<StatBlock>>,
}

/// A socket's SA pools.
struct SaPools {
    outbound: Pool<OutboundSa>,
    inbound: Pool<InboundSa>,
}

struct Worker {
    info: WorkerInfo,
    link: MainEnd,
}

struct TunnelRec {
    id: TunnelId,
    spec: TunnelSpec,
    encap: TunnelEncap,
    selectors: Selectors,
    owner: WorkerIndex,
    group: usize,
    /// The SPI of its outbound SA, if it has one.
    outbound: Option<u32>,
    /// What that SA was granted (with a channel).
    grant: Option<grants::TunnelGrant>,
    /// The SPIs of its inbound SAs.
    inbound: BTreeSet<u32>,
}

struct InboundRec {
    tunnel: Name,
    index: InboundIndex,
    /// Watched for idleness when the SA asked for it (`idle_after`).
    idle: Option<idle::Watch>,
    /// Its SPI and key digest, for the windows table (with a channel).
    key: Option<grants::GrantKey>,
}

/// Where a route came from: connected and local routes follow their interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RouteOrigin {
    Static,
    Interface,
}

pub struct ControlState {
    workers: Vec<Worker>,
    capacity: Capacity,
    memory: Memory,
    backend: Backend,
    anchors: Anchors,
    pools: BTreeMap<i32, SaPools>,
    counters: Slots<SaCounters>,
    port_mac: Box<dyn Fn(u16) -> Mac + Send>,
    stats: Vec<Arc<StatBlock>>,
    interfaces: BTreeMap<Name, Interface>,
    /// Static neighbors of both families.
    neighbors: HashMap<IpAddr, Mac>,
    routes: BTreeMap<Ipv4Net, (Target, RouteOrigin)>,
    /// IPv6 routes: the workers' table holds `capacity.routes6` of them.
    routes6: BTreeMap<Ipv6Net, (Target6, RouteOrigin)>,
    /// The workers' route trie as it will be once they applied every route: a route that
    /// would not fit their tables is refused here.
    trie: Lpm,
    tunnels: BTreeMap<Name, TunnelRec>,
    tunnel_ids: IdPool,
    inbound: HashMap<u32, InboundRec>,
    inbound_ids: IdPool,
    /// NAT-T ports in use, and by how many tunnels.
    natt_ports: HashMap<u16, usize>,
    generation: u64,
    view: Arc<Mutex<View>>,
    /// Per object installed by a `Set*`, the digest of that change (`sync`).
    digests: HashMap<channel::ObjectKey, sync::Digest>,
    /// Per tunnel with an outbound SA, the digest of that SA's SPI and key.
    key_digests: HashMap<Name, sync::Digest>,
    /// During a resync, what has not been set again yet.
    stale: Option<BTreeSet<channel::ObjectKey>>,
    /// What the workers reported, for the control process (`take_notices`).
    notices: Vec<channel::message::Event>,
    /// Next hops to resolve before traffic needs them (`take_wanted`).
    wanted: Vec<(u16, IpAddr)>,
    /// Sequence-number grants for outbound SAs, with a channel.
    grants: Option<grants::Grants>,
    /// Policies of policy-based VPNs by name, and whether the workers' table is behind them.
    policies: BTreeMap<Name, channel::PolicySpec>,
    policies_dirty: bool,
}

impl ControlState {
    /// The control state of `setup.workers`, and the workers' ends of their links.
    pub fn new(setup: Setup) -> Result<(ControlState, Vec<WorkerEnd>), String> {
        let anchors = Anchors::new(&setup.groups).map_err(|e| e.to_string())?;
        for w in &setup.workers {
            if anchors.group_of(w.lcore).is_none() {
                return Err(format!("worker lcore {} is in no anchor group", w.lcore));
            }
        }
        let cap = setup.capacity;
        let mut pools = BTreeMap::new();
        for w in &setup.workers {
            if pools.contains_key(&w.socket) {
                continue;
            }
            let oom = |e: crate::mem::OutOfMemory| e.to_string();
            let outbound = Pool::new(
                setup.memory,
                w.socket,
                with_spare(cap.tunnels),
                "outbound SAs",
            )
            .map_err(oom)?;
            let inbound = Pool::new(
                setup.memory,
                w.socket,
                with_spare(cap.inbound_sas),
                "inbound SAs",
            )
            .map_err(oom)?;
            pools.insert(w.socket, SaPools { outbound, inbound });
        }
        let counter_slots = with_spare(cap.tunnels).saturating_add(with_spare(cap.inbound_sas));
        let counters = Slots::new(setup.memory, -1, counter_slots, "SA counters")
            .map_err(|e| e.to_string())?;
        let trie = Lpm::new(Memory::Heap, -1, cap.route_tables).map_err(|e| e.to_string())?;
        let mut workers = Vec::new();
        let mut ends = Vec::new();
        for &info in &setup.workers {
            let (main, worker) = link::pair(setup.link_capacity);
            workers.push(Worker { info, link: main });
            ends.push(worker);
        }
        let view = Arc::new(Mutex::new(View::new(anchors.clone(), workers.len())));
        Ok((
            ControlState {
                workers,
                capacity: cap,
                memory: setup.memory,
                backend: setup.backend,
                anchors,
                pools,
                counters,
                port_mac: setup.port_mac,
                stats: setup.stats,
                interfaces: BTreeMap::new(),
                neighbors: HashMap::new(),
                routes: BTreeMap::new(),
                routes6: BTreeMap::new(),
                trie,
                tunnels: BTreeMap::new(),
                tunnel_ids: IdPool::new(cap.tunnels),
                inbound: HashMap::new(),
                inbound_ids: IdPool::new(cap.inbound_sas),
                natt_ports: HashMap::new(),
                generation: 0,
                view,
                digests: HashMap::new(),
                key_digests: HashMap::new(),
                stale: None,
                notices: Vec::new(),
                wanted: Vec::new(),
                grants: None,
                policies: BTreeMap::new(),
                policies_dirty: false,
            },
            ends,
        ))
    }

    /// The generation of the last change applied.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether every worker has applied everything of changes up to `generation` that
    /// concerns it.
    pub fn in_force(&self, generation: u64) -> bool {
        self.workers.iter().all(|w| w.link.in_force(generation))
    }

    /// Sends what waits in the links' backlogs; how many commands still wait.
    pub fn flush(&mut self) -> usize {
        self.publish_policies();
        self.workers.iter_mut().map(|w| w.link.flush()).sum()
    }

    /// What telemetry and the stats file show.
    pub fn view(&self) -> Arc<Mutex<View>> {
        self.view.clone()
    }

    pub fn interfaces(&self) -> impl Iterator<Item = (&Name, &Interface)> {
        self.interfaces.iter()
    }

    /// The interface on a port.
    pub fn interface_on(&self, port: u16) -> Option<Interface> {
        self.interfaces.values().find(|i| i.port == port).copied()
    }

    /// A neighbor ARP or neighbor discovery learned: every worker learns it (a static
    /// neighbor keeps its MAC).
    pub fn learned(&mut self, addr: IpAddr, mac: Mac) -> u64 {
        self.generation += 1;
        let g = self.generation;
        self.broadcast(g, || crate::forward::WorkerCommand::SetNeighbor {
            addr,
            mac,
            permanent: false,
        });
        g
    }

    /// The workers' info, by index.
    pub fn workers(&self) -> impl Iterator<Item = WorkerInfo> + '_ {
        self.workers.iter().map(|w| w.info)
    }

    /// The last generation worker `w` applied.
    pub fn applied(&self, w: WorkerIndex) -> Option<u64> {
        self.workers.get(usize::from(w)).map(|w| w.link.applied())
    }

    /// Takes what the workers sent back: retired SAs are freed (here, on the main lcore, with
    /// their crypto sessions), SA events are counted and reported. The events that are not
    /// the control state's (next hops to resolve) go to `other`, by worker index.
    pub fn poll(&mut self, mut other: impl FnMut(WorkerIndex, Event)) -> usize {
        let mut done = 0;
        for w in 0..self.workers.len() {
            while let Ok(r) = self.workers[w].link.retired.try_recv() {
                self.reclaim(r);
                done += 1;
            }
            while let Ok(e) = self.workers[w].link.events.try_recv() {
                done += 1;
                match e {
                    Event::Sa {
                        spi,
                        direction,
                        kind,
                    } => self.sa_event(spi, direction, kind),
                    Event::Acquire { tunnel } => self.acquire(tunnel),
                    e @ Event::Resolve { .. } => other(w as WorkerIndex, e),
                }
            }
        }
        done
    }

    /// Frees a retired SA and its counters.
    fn reclaim(&mut self, r: Retired) {
        match r {
            Retired::Outbound(sa) => {
                let c = sa.counters.clone();
                let mut sa = Some(sa);
                for p in self.pools.values_mut() {
                    if let Some(s) = sa.take() {
                        sa = p.outbound.free(s).err();
                    }
                }
                if sa.is_none() {
                    self.counters.free(c);
                }
            }
            Retired::Inbound(sa) => {
                let c = sa.counters.clone();
                let mut sa = Some(sa);
                for p in self.pools.values_mut() {
                    if let Some(s) = sa.take() {
                        sa = p.inbound.free(s).err();
                    }
                }
                if sa.is_none() {
                    self.counters.free(c);
                }
            }
        }
    }

    fn lock_view(&self) -> MutexGuard<'_, View> {
        // A reader that panicked holding the lock left nothing half-written: take it anyway.
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sa_event(&mut self, spi: u32, direction: Direction, kind: SaEventKind) {
        use channel::message::SaEvent;
        let event = match kind {
            SaEventKind::SoftLimit => SaEvent::SoftLimit,
            SaEventKind::HardLimit => SaEvent::HardLimit,
            SaEventKind::SeqNearExhaustion => SaEvent::SeqNearExhaustion,
            // Bookkeeping between the main lcore and the worker, nothing to report.
            SaEventKind::LeaseLow => return self.grant_more(spi),
        };
        let tunnel = {
            let mut v = self.lock_view();
            match event {
                SaEvent::SoftLimit => v.events.soft_lifetimes += 1,
                SaEvent::HardLimit => v.events.hard_lifetimes += 1,
                SaEvent::SeqNearExhaustion => v.events.seq_near_exhaustion += 1,
            }
            v.sas
                .values()
                .find(|s| s.spi == spi && s.direction == direction)
                .map(|s| s.tunnel)
        };
        let t = tunnel.map_or_else(|| "?".to_string(), |t| t.to_string());
        eprintln!(
            "espgw: SA {spi:#x} ({}, tunnel {t}): {}",
            direction.name(),
            kind.name()
        );
        self.notice(channel::message::Event::Sa {
            spi,
            direction,
            tunnel,
            event,
        });
    }

    fn acquire(&mut self, tunnel: TunnelId) {
        self.lock_view().events.acquires += 1;
        if let Some((name, _)) = self.tunnels.iter().find(|(_, t)| t.id == tunnel) {
            eprintln!("espgw: traffic for tunnel {name}, which has no outbound SA");
            let tunnel = *name;
            self.notice(channel::message::Event::Acquire { tunnel });
        }
    }

    /// Most notices kept for a control process that does not take them.
    const MAX_NOTICES: usize = 4096;

    fn notice(&mut self, e: channel::message::Event) {
        if self.notices.len() < Self::MAX_NOTICES {
            self.notices.push(e);
        }
    }

    /// What the workers reported since the last call, for the control process.
    pub fn take_notices(&mut self) -> Vec<channel::message::Event> {
        std::mem::take(&mut self.notices)
    }

    /// Zeroes, as the operator sees them, the counters of `scope`: the values now become the
    /// readers' zero (the workers, each its counters' only writer, go on counting).
    fn clear(&mut self, scope: channel::ClearScope) {
        let stats = self.stats.clone();
        let mut v = self.lock_view();
        let clear_sa = |s: &mut view::SaView| s.cleared = s.counters.values();
        match scope {
            channel::ClearScope::All => {
                v.sas.values_mut().for_each(clear_sa);
                v.retired.clear();
                for (c, s) in v.cleared.iter_mut().zip(&stats) {
                    *c = std::array::from_fn(|i| s.get(Stat::ALL[i]));
                }
            }
            channel::ClearScope::InboundSa { spi } => {
                if let Some(s) = v.sas.get_mut(&SaKey::In(spi)) {
                    clear_sa(s);
                }
            }
            channel::ClearScope::OutboundSa { tunnel } => {
                if let Some(s) = v.sas.get_mut(&SaKey::Out(tunnel)) {
                    clear_sa(s);
                }
            }
        }
    }

    /// A counter slot for a new SA.
    fn counter_slot(&mut self) -> Option<CounterRef> {
        self.counters.alloc(|c| c.reset())
    }

    /// Sends `cmd` to every worker.
    fn broadcast(&mut self, g: u64, cmd: impl Fn() -> crate::forward::WorkerCommand) {
        for w in &mut self.workers {
            w.link.send(g, cmd());
        }
    }

    fn send(&mut self, g: u64, w: WorkerIndex, cmd: crate::forward::WorkerCommand) {
        if let Some(w) = self.workers.get_mut(usize::from(w)) {
            w.link.send(g, cmd);
        }
    }

    /// SAs held in the pools (for tests and the stop report).
    pub fn live_sas(&self) -> usize {
        self.pools
            .values()
            .map(|p| p.outbound.live() + p.inbound.live())
            .sum()
    }
}

/// Slots for `n` SAs and those on their way back from the workers after a replacement (an
/// eighth more, at least 64): a change that finds none free is refused, to be tried again.
fn with_spare(n: u32) -> u32 {
    n.saturating_add((n / 8).max(64))
}

/// Dense ids below a bound, lowest free first, so tables stay compact.
struct IdPool {
    free: BTreeSet<u32>,
}

impl IdPool {
    fn new(n: u32) -> IdPool {
        IdPool {
            free: (0..n).collect(),
        }
    }
    fn take(&mut self) -> Option<u32> {
        self.free.pop_first()
    }
    fn give(&mut self, id: u32) {
        self.free.insert(id);
    }
}

#[cfg(test)]
mod tests;
