//! A worker's tables: interfaces, routes and next hops, neighbors, tunnels with their outbound
//! SAs, inbound SPIs with their SAs, and the route cache in front of the trie. They change
//! only through `WorkerCommand`s applied between bursts (`apply`), and never grow: each is
//! allocated at its full size when the worker starts (`Capacity`).

use super::command::{Retired, WorkerCommand};
use super::lpm::{Lpm, LpmError};
use super::lpm6::Lpm6;
use super::neighbor::NeighborTable;
use super::spi_table::{SpiEntry, SpiTable};
use super::{fibonacci, InboundIndex, Interface, Target, Target6, TunnelId, WorkerIndex, NO_OWNER};
use crate::mem::{Memory, OutOfMemory, Owned, Table};
use crate::sa::{InboundSa, OutboundSa};
use crate::wire::ethernet::Mac;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use config::Capacity;

/// A tunnel's outer next hop, as resolved (VPP would call it the SA's adjacency): the egress
/// port and its MTU, and the Ethernet addresses of the frames that leave there.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Adjacency {
    /// 0 never matches: the tables' generation starts at 1.
    pub generation: u32,
    pub port: u16,
    pub mtu: u16,
    pub mac: Mac,
    /// The egress interface's own MAC.
    pub src: Mac,
}

/// What a worker keeps per tunnel, side by side, so that a packet into the tunnel finds its
/// owner, its outer next hop and its SA through one cache line (two per line, none across two).
#[repr(align(32))]
pub(super) struct TunnelSlot {
    /// The worker that owns the tunnel's outbound SA; `NO_OWNER` for no tunnel.
    pub owner: WorkerIndex,
    pub adj: Adjacency,
    /// The current outbound SA, if this worker holds one.
    pub sa: Option<Owned<OutboundSa>>,
    /// TCP SYNs into and out of the tunnel have their MSS clamped to this; 0: none.
    pub tcp_mss: u16,
}

const _: () = assert!(std::mem::size_of::<TunnelSlot>() == 32);

impl Default for TunnelSlot {
    fn default() -> Self {
        TunnelSlot {
            owner: NO_OWNER,
            adj: Adjacency::default(),
            tcp_mss: 0,
            sa: None,
        }
    }
}

/// Entries of the route cache.
pub(super) const ROUTE_CACHE: usize = 256;

/// A destination's entry in the route cache. (Hosts with the same last octet in many subnets,
/// such as each subnet's .1 or .10, are a common pattern; an xor of shifted address bits
/// mapped 32 such subnets to two entries.)
#[inline(always)]
pub(super) fn route_cache_index(addr: u32) -> usize {
    const _: () = assert!(ROUTE_CACHE.is_power_of_two() && ROUTE_CACHE > 1);
    fibonacci(u64::from(addr), ROUTE_CACHE.trailing_zeros())
}

/// A destination's forwarding as last resolved, as a FIB entry leads to its adjacency (VPP's
/// ip4-lookup to the adjacency holding the rewrite): the route, and for a next hop on a port
/// the Ethernet addresses of the frames to it once the neighbor is known.
#[derive(Debug, Clone, Copy)]
pub(super) struct CachedRoute {
    /// 0 never matches: the tables' generation starts at 1.
    pub generation: u32,
    pub addr: u32,
    pub target: Target,
    /// For `Connected` and `Gateway`: the next hop's MAC and the egress interface's.
    pub rewrite: Option<(Mac, Mac)>,
}

const _: () = assert!(std::mem::size_of::<CachedRoute>() <= 32);

/// Why a command could not be applied: the main lcore sized and checked it, so this is a bug
/// there, counted and never a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyError {
    /// A tunnel id or inbound index beyond the tables.
    OutOfRange,
    /// The SPI table or the route trie is full.
    Full,
}

pub struct Tables {
    /// This worker's index: SAs owned by another index are handed off.
    pub(super) me: WorkerIndex,
    /// By port id; one interface per port.
    ifaces: Vec<Option<Interface>>,
    /// The interfaces' addresses, for the local check before the route lookup.
    pub(super) own: Vec<Ipv4Addr>,
    routes: Lpm,
    /// Next hops by trie value, and the value of each, so that a route add is O(1).
    targets: Vec<Target>,
    target_index: HashMap<Target, u32>,
    neighbors: NeighborTable<u32>,
    /// IPv6: the interfaces' addresses (global and link-local), routes and their next hops,
    /// neighbors, apart from IPv4's so that its per-packet path does not change.
    pub(super) own6: Vec<Ipv6Addr>,
    routes6: Lpm6,
    targets6: Vec<Target6>,
    target6_index: HashMap<Target6, u32>,
    neighbors6: NeighborTable<u128>,
    /// By tunnel id: owner, outer next hop, outbound SA.
    pub(super) tunnels: Table<TunnelSlot>,
    /// Inbound SAs by index; the SPI table says which index. Only the owner fills its entry.
    inbound: Table<Option<Owned<InboundSa>>>,
    pub(super) spis: SpiTable,
    /// UDP ports on which ESP in UDP is accepted.
    pub(super) natt_ports: Vec<u16>,
    /// Recent destinations' routes, and their next hops' Ethernet addresses.
    route_cache: Box<[CachedRoute; ROUTE_CACHE]>,
    /// Bumped by every change of interfaces, routes or neighbors: cached routes and tunnel
    /// adjacencies of an older generation are resolved again.
    pub(super) generation: u32,
    /// The SAs (outbound and inbound) this worker holds.
    pub(super) sas: usize,
    /// The policies of policy-based VPNs; `None` (no policies): no lookup.
    pub(super) policies: Option<std::sync::Arc<super::policy::Policies>>,
}

impl Tables {
    /// Worker `me`'s tables, sized by `cap`, in `memory` on the worker's `socket`.
    pub fn new(
        me: WorkerIndex,
        cap: Capacity,
        memory: Memory,
        socket: i32,
    ) -> Result<Tables, OutOfMemory> {
        Ok(Tables {
            me,
            ifaces: Vec::new(),
            own: Vec::new(),
            routes: Lpm::new(memory, socket, cap.route_tables)?,
            targets: Vec::new(),
            target_index: HashMap::new(),
            neighbors: NeighborTable::default(),
            own6: Vec::new(),
            routes6: Lpm6::new(memory, socket, cap.routes6)?,
            targets6: Vec::new(),
            target6_index: HashMap::new(),
            neighbors6: NeighborTable::default(),
            tunnels: Table::new(memory, socket, cap.tunnels as usize, "tunnel table", |_| {
                TunnelSlot::default()
            })?,
            inbound: Table::new(
                memory,
                socket,
                cap.inbound_sas as usize,
                "inbound SAs",
                |_| None,
            )?,
            spis: SpiTable::new(memory, socket, cap.inbound_sas)?,
            natt_ports: Vec::new(),
            route_cache: Box::new(
                [CachedRoute {
                    generation: 0,
                    addr: 0,
                    target: Target::Local,
                    rewrite: None,
                }; ROUTE_CACHE],
            ),
            generation: 1,
            sas: 0,
            policies: None,
        })
    }

    /// Applies one command; the SAs it takes out of service go to `retired`.
    pub fn apply(
        &mut self,
        cmd: WorkerCommand,
        retired: &mut Vec<Retired>,
    ) -> Result<(), ApplyError> {
        use WorkerCommand::*;
        if matches!(
            cmd,
            SetInterface(_)
                | DelInterface { .. }
                | AddRoute { .. }
                | DelRoute { .. }
                | AddRoute6 { .. }
                | DelRoute6 { .. }
                | SetNeighbor { .. }
                | DelNeighbor { .. }
        ) {
            self.generation = self.generation.wrapping_add(1).max(1);
        }
        match cmd {
            SetInterface(i) => {
                let p = usize::from(i.port);
                if self.ifaces.len() <= p {
                    self.ifaces.resize(p + 1, None);
                }
                if let Some(old) = self.ifaces[p].replace(i) {
                    self.forget_own(&old);
                }
                self.own.push(i.addr);
                self.own6.push(i.link_local());
                self.own6.extend(i.ipv6.map(|n| n.addr()));
            }
            DelInterface { port } => {
                if let Some(old) = self
                    .ifaces
                    .get_mut(usize::from(port))
                    .and_then(Option::take)
                {
                    self.forget_own(&old);
                }
            }
            AddRoute { prefix, target } => {
                // Routes sharing a next hop share its entry, so the list grows with next hops.
                let next = self.targets.len() as u32;
                let nh = *self.target_index.entry(target).or_insert(next);
                if nh == next {
                    self.targets.push(target);
                }
                return match self.routes.insert(prefix.addr(), prefix.prefix_len(), nh) {
                    Ok(()) => Ok(()),
                    Err(LpmError::Full(_)) => Err(ApplyError::Full),
                    Err(_) => Err(ApplyError::OutOfRange),
                };
            }
            DelRoute { prefix } => {
                self.routes.remove(prefix.addr(), prefix.prefix_len());
            }
            AddRoute6 { prefix, target } => {
                let next = self.targets6.len() as u32;
                let nh = *self.target6_index.entry(target).or_insert(next);
                if nh == next {
                    self.targets6.push(target);
                }
                return self
                    .routes6
                    .insert(prefix.addr(), prefix.prefix_len(), nh)
                    .map_err(|_| ApplyError::Full);
            }
            DelRoute6 { prefix } => {
                self.routes6.remove(prefix.addr(), prefix.prefix_len());
            }
            SetNeighbor {
                addr: IpAddr::V4(a),
                mac,
                permanent,
            } => self.neighbors.set(u32::from(a), mac, permanent),
            SetNeighbor {
                addr: IpAddr::V6(a),
                mac,
                permanent,
            } => self.neighbors6.set(u128::from(a), mac, permanent),
            DelNeighbor {
                addr: IpAddr::V4(a),
            } => self.neighbors.remove(u32::from(a)),
            DelNeighbor {
                addr: IpAddr::V6(a),
            } => self.neighbors6.remove(u128::from(a)),
            AddNattPort(p) => {
                if !self.natt_ports.contains(&p) {
                    self.natt_ports.push(p);
                }
            }
            DelNattPort(p) => self.natt_ports.retain(|&x| x != p),
            SetTunnel {
                tunnel,
                owner,
                tcp_mss,
            } => {
                let t = self.tunnel_slot(tunnel)?;
                t.owner = owner;
                t.tcp_mss = tcp_mss;
                t.adj.generation = 0;
            }
            DelTunnel { tunnel } => {
                let t = self.tunnel_slot(tunnel)?;
                t.owner = NO_OWNER;
                if let Some(sa) = t.sa.take() {
                    retired.push(Retired::Outbound(sa));
                    self.sas -= 1;
                }
            }
            InstallOutbound { tunnel, sa } => {
                let t = self.tunnel_slot(tunnel)?;
                // The new SA may have another peer: resolve its next hop afresh.
                t.adj.generation = 0;
                match t.sa.replace(sa) {
                    Some(old) => retired.push(Retired::Outbound(old)),
                    None => self.sas += 1,
                }
            }
            RemoveOutbound { tunnel } => {
                if let Some(sa) = self.tunnel_slot(tunnel)?.sa.take() {
                    retired.push(Retired::Outbound(sa));
                    self.sas -= 1;
                }
            }
            SetInboundMss { tunnel, tcp_mss } => {
                for sa in self.inbound.iter_mut().flatten() {
                    if sa.tunnel == tunnel {
                        sa.tcp_mss = tcp_mss;
                    }
                }
            }
            Reencap { tunnel, encap } => {
                let t = self.tunnel_slot(tunnel)?;
                if let Some(sa) = t.sa.as_mut() {
                    sa.outer = crate::esp::outer::OuterTemplate::new(&encap, sa.crypto.spi);
                    // Another peer: its next hop afresh.
                    t.adj.generation = 0;
                }
            }
            ExtendLease { tunnel, spi, lease } => {
                // A grant for an SA since replaced finds nothing to extend.
                if let Some(sa) = self.tunnel_slot(tunnel)?.sa.as_mut() {
                    if sa.crypto.spi == spi {
                        sa.extend_lease(lease);
                    }
                }
            }
            SetSpi { spi, owner } => {
                let index = self
                    .spis
                    .get(spi)
                    .map_or(InboundIndex(u32::MAX), |e| e.index);
                if !self.spis.set(spi, SpiEntry { owner, index }) {
                    return Err(ApplyError::Full);
                }
            }
            DelSpi { spi } => self.spis.remove(spi),
            InstallInbound { spi, index, sa } => {
                let Some(entry) = self.inbound.get_mut(index.0 as usize) else {
                    {
                        sa.publish_top();
                        retired.push(Retired::Inbound(sa));
                    }
                    return Err(ApplyError::OutOfRange);
                };
                if !self.spis.set(
                    spi,
                    SpiEntry {
                        owner: self.me,
                        index,
                    },
                ) {
                    {
                        sa.publish_top();
                        retired.push(Retired::Inbound(sa));
                    }
                    return Err(ApplyError::Full);
                }
                match entry.replace(sa) {
                    Some(old) => {
                        old.publish_top();
                        retired.push(Retired::Inbound(old))
                    }
                    None => self.sas += 1,
                }
            }
            RemoveInbound { spi } => {
                if let Some(e) = self.spis.get(spi) {
                    self.spis.remove(spi);
                    if let Some(sa) = self
                        .inbound
                        .get_mut(e.index.0 as usize)
                        .and_then(Option::take)
                    {
                        {
                            sa.publish_top();
                            retired.push(Retired::Inbound(sa));
                        }
                        self.sas -= 1;
                    }
                }
            }
            RetireAll => {
                for t in self.tunnels.iter_mut() {
                    if let Some(sa) = t.sa.take() {
                        retired.push(Retired::Outbound(sa));
                    }
                }
                for s in self.inbound.iter_mut() {
                    if let Some(sa) = s.take() {
                        {
                            sa.publish_top();
                            retired.push(Retired::Inbound(sa));
                        }
                    }
                }
                self.sas = 0;
            }
            SetPolicies(table) => self.policies = table,
        }
        Ok(())
    }

    /// Forgets the addresses of an interface replaced or deleted.
    fn forget_own(&mut self, old: &Interface) {
        self.own.retain(|a| *a != old.addr);
        self.own6.retain(|a| !old.has_ipv6(a));
    }

    fn tunnel_slot(&mut self, tunnel: TunnelId) -> Result<&mut TunnelSlot, ApplyError> {
        self.tunnels
            .get_mut(tunnel as usize)
            .ok_or(ApplyError::OutOfRange)
    }

    /// The interface on a port.
    #[inline]
    pub fn interface(&self, port: u16) -> Option<&Interface> {
        self.ifaces.get(usize::from(port)).and_then(Option::as_ref)
    }

    /// The route to `dst` and its entry in the route cache: a small direct-mapped cache of
    /// recent destinations (our own addresses among them) in front of the trie (whose host
    /// routes take three dependent loads), valid until the next change of interfaces, routes
    /// or neighbors.
    #[inline(always)]
    pub(super) fn route(&mut self, dst: Ipv4Addr) -> Option<(Target, usize)> {
        let a = u32::from(dst);
        let at = route_cache_index(a);
        let e = self.route_cache[at];
        if e.generation == self.generation && e.addr == a {
            return Some((e.target, at));
        }
        // Our own addresses before the trie: every ESP packet is for one of them, and their
        // /32 routes are the deepest (three levels) there.
        let target = if self.own.contains(&dst) {
            Target::Local
        } else {
            self.lookup(dst)?
        };
        self.route_cache[at] = CachedRoute {
            generation: self.generation,
            addr: a,
            target,
            rewrite: None,
        };
        Some((target, at))
    }

    /// The trie's answer for `dst`, without the cache.
    #[inline]
    pub(super) fn lookup(&self, dst: Ipv4Addr) -> Option<Target> {
        self.routes
            .lookup(dst)
            .and_then(|i| self.targets.get(i as usize).copied())
    }

    /// The route cache's entry `at`.
    #[inline(always)]
    pub(super) fn cached(&mut self, at: usize) -> Option<&mut CachedRoute> {
        self.route_cache.get_mut(at)
    }

    /// A neighbor's MAC, and whether to ask the main lcore to resolve it now.
    #[inline]
    pub(super) fn neighbor(&mut self, ip: Ipv4Addr, now_ms: u64) -> (Option<Mac>, bool) {
        self.neighbors.lookup(u32::from(ip), now_ms)
    }

    /// The IPv6 route to `dst`: one of our addresses, or the longest prefix's next hop.
    #[inline]
    pub(super) fn route6(&self, dst: &Ipv6Addr) -> Option<Target6> {
        if self.own6.contains(dst) {
            return Some(Target6::Local);
        }
        self.routes6
            .lookup(*dst)
            .and_then(|i| self.targets6.get(i as usize).copied())
    }

    /// An IPv6 neighbor's MAC, and whether to ask the main lcore to resolve it now.
    #[inline]
    pub(super) fn neighbor6(&mut self, ip: &Ipv6Addr, now_ms: u64) -> (Option<Mac>, bool) {
        self.neighbors6.lookup(u128::from(*ip), now_ms)
    }

    /// The outbound SA of a tunnel, if this worker holds it.
    #[inline]
    pub fn outbound(&self, tunnel: TunnelId) -> Option<&OutboundSa> {
        self.tunnels
            .get(tunnel as usize)
            .and_then(|t| t.sa.as_deref())
    }

    #[inline]
    pub fn outbound_mut(&mut self, tunnel: TunnelId) -> Option<&mut OutboundSa> {
        self.tunnels
            .get_mut(tunnel as usize)
            .and_then(|t| t.sa.as_deref_mut())
    }

    /// The inbound SA at an index, if this worker holds it.
    #[inline]
    pub fn inbound(&self, index: InboundIndex) -> Option<&InboundSa> {
        self.inbound
            .get(index.0 as usize)
            .and_then(|s| s.as_deref())
    }

    #[inline]
    pub fn inbound_mut(&mut self, index: InboundIndex) -> Option<&mut InboundSa> {
        self.inbound
            .get_mut(index.0 as usize)
            .and_then(|s| s.as_deref_mut())
    }

    /// The inbound SA for an SPI, if this worker holds it.
    pub fn inbound_by_spi(&mut self, spi: u32) -> Option<&mut InboundSa> {
        let e = self.spis.get(spi)?;
        self.inbound_mut(e.index)
    }

    /// SAs (outbound and inbound) this worker holds.
    pub fn sas(&self) -> usize {
        self.sas
    }
}
