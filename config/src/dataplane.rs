//! The `dataplane` section: EAL arguments, workers and anchor groups, rings, mbufs, the crypto
//! backend, and how large the workers' tables are.

use super::file::DataplaneFile;
use super::{err, ConfigError, Dataplane, InterfaceConfig, ManualSa, Route, Route6, Tunnel};
use crate::Capacity;
use crate::MAX_TUNNEL_ID;
use channel::Direction;
use std::collections::HashSet;

pub const DEFAULT_MBUFS: u32 = 16383;
pub const DEFAULT_HANDOFF_RING: u32 = 1024;
pub const DEFAULT_DESCRIPTORS: u16 = 1024;
/// The fewest tunnels the tables have room for by default.
pub const MIN_TUNNELS: u32 = 4096;
/// The fewest route-trie tables (1 KB each) by default.
pub const MIN_ROUTE_TABLES: u32 = 1024;
/// The fewest IPv6 routes the table has room for by default.
pub const MIN_ROUTES6: u32 = 1024;
/// The most tunnels a dataplane can be sized for (ids travel in 30 bits; this is far below).
const MAX_TUNNELS: u32 = 1 << 22;

pub(super) fn dataplane(
    dp: &DataplaneFile,
    interfaces: &[InterfaceConfig],
    tunnels: &[Tunnel],
    routes: (&[Route], &[Route6]),
    sas: &[ManualSa],
) -> Result<Dataplane, ConfigError> {
    if dp.workers.is_empty() {
        return err("dataplane.workers", "list at least one worker lcore");
    }
    for (i, w) in dp.workers.iter().enumerate() {
        if dp.workers[..i].contains(w) {
            return err(
                format!("dataplane.workers[{i}]"),
                format!("lcore {w} is listed twice"),
            );
        }
    }
    if let Some(groups) = &dp.anchor_groups {
        anchor_groups(groups, &dp.workers)?;
    }
    let handoff_ring_size = dp.handoff_ring_size.unwrap_or(DEFAULT_HANDOFF_RING);
    if !(64..=65536).contains(&handoff_ring_size) || !handoff_ring_size.is_power_of_two() {
        return err(
            "dataplane.handoff_ring_size",
            "a power of two from 64 to 65536",
        );
    }
    let mbufs = dp.mbufs.unwrap_or(DEFAULT_MBUFS);
    if mbufs < 1024 {
        return err("dataplane.mbufs", "at least 1024");
    }
    if dp.poll_sleep_us > 100_000 {
        return err("dataplane.poll_sleep_us", "at most 100000");
    }
    let channel = dp.channel.as_deref().map(channel_path).transpose()?;
    Ok(Dataplane {
        eal: dp.eal.clone(),
        workers: dp.workers.clone(),
        anchor_groups: dp.anchor_groups.clone(),
        handoff_ring_size,
        mbufs,
        rx_descriptors: dp.rx_descriptors.unwrap_or(DEFAULT_DESCRIPTORS),
        tx_descriptors: dp.tx_descriptors.unwrap_or(DEFAULT_DESCRIPTORS),
        poll_sleep_us: dp.poll_sleep_us,
        crypto: dp.crypto,
        capacity: capacity(dp, interfaces, tunnels, routes, sas)?,
        channel,
    })
}

/// The channel's segment: an absolute path to a file (under `/dev/shm` as a rule).
fn channel_path(p: &str) -> Result<std::path::PathBuf, ConfigError> {
    let path = std::path::PathBuf::from(p);
    if !path.is_absolute() || path.file_name().is_none() || p.ends_with('/') {
        return err(
            "dataplane.channel",
            format!("{p:?} is not an absolute file path (e.g. /dev/shm/espgw-gw1)"),
        );
    }
    Ok(path)
}

fn anchor_groups(groups: &[Vec<u32>], workers: &[u32]) -> Result<(), ConfigError> {
    for (g, group) in groups.iter().enumerate() {
        if group.is_empty() {
            return err(format!("dataplane.anchor_groups[{g}]"), "empty group");
        }
        for (j, w) in group.iter().enumerate() {
            let field = format!("dataplane.anchor_groups[{g}][{j}]");
            if !workers.contains(w) {
                return err(field, format!("lcore {w} is not in dataplane.workers"));
            }
            if groups.iter().flatten().filter(|x| *x == w).count() > 1 {
                return err(field, format!("lcore {w} is in more than one group"));
            }
        }
    }
    if let Some(w) = workers
        .iter()
        .find(|w| !groups.iter().flatten().any(|x| x == *w))
    {
        return err(
            "dataplane.anchor_groups",
            format!("worker lcore {w} is in no group"),
        );
    }
    Ok(())
}

/// The workers' table sizes: as given, or room for twice what the file holds (and at least
/// the defaults), so that the control can add as much again at run time.
fn capacity(
    dp: &DataplaneFile,
    interfaces: &[InterfaceConfig],
    tunnels: &[Tunnel],
    (routes, routes6): (&[Route], &[Route6]),
    sas: &[ManualSa],
) -> Result<Capacity, ConfigError> {
    let n = |x: usize| u32::try_from(x).unwrap_or(u32::MAX);
    let max_tunnels = dp
        .max_tunnels
        .unwrap_or_else(|| MIN_TUNNELS.max(n(tunnels.len()).saturating_mul(2)));
    if !(1..=MAX_TUNNELS).contains(&max_tunnels) || max_tunnels - 1 > MAX_TUNNEL_ID {
        return err("dataplane.max_tunnels", format!("1 to {MAX_TUNNELS}"));
    }
    if tunnels.len() > max_tunnels as usize {
        return err(
            "dataplane.max_tunnels",
            format!(
                "{max_tunnels} is fewer than the {} tunnels below",
                tunnels.len()
            ),
        );
    }
    let inbound = sas.iter().filter(|s| s.direction == Direction::In).count();
    let max_sas = dp.max_sas.unwrap_or_else(|| {
        max_tunnels
            .saturating_mul(2)
            .max(n(inbound).saturating_mul(2))
    });
    if max_sas == 0 || max_sas > 2 * MAX_TUNNELS {
        return err("dataplane.max_sas", format!("1 to {}", 2 * MAX_TUNNELS));
    }
    if inbound > max_sas as usize {
        return err(
            "dataplane.max_sas",
            format!("{max_sas} is fewer than the {inbound} inbound SAs below"),
        );
    }
    let needed = route_tables_needed(interfaces, routes);
    let route_tables = dp
        .route_tables
        .unwrap_or_else(|| MIN_ROUTE_TABLES.max(needed.saturating_mul(2)));
    if route_tables < needed {
        return err(
            "dataplane.route_tables",
            format!("{route_tables} is fewer than the {needed} the routes below need"),
        );
    }
    if route_tables > 1 << 24 {
        return err("dataplane.route_tables", "at most 2^24");
    }
    // Each interface with IPv6 brings its subnet's route and its address's.
    let needed6 = n(routes6.len() + 2 * interfaces.iter().filter(|i| i.ipv6.is_some()).count());
    let routes6 = dp
        .max_routes6
        .unwrap_or_else(|| MIN_ROUTES6.max(needed6.saturating_mul(2)));
    if routes6 < needed6 {
        return err(
            "dataplane.max_routes6",
            format!("{routes6} is fewer than the {needed6} IPv6 routes below (interfaces' own among them)"),
        );
    }
    if routes6 > 1 << 22 {
        return err("dataplane.max_routes6", "at most 2^22");
    }
    Ok(Capacity {
        tunnels: max_tunnels,
        inbound_sas: max_sas,
        route_tables,
        routes6,
    })
}

/// The 256-entry tables of the route trie (`forward::lpm`) the interfaces' and the file's
/// routes take: one per /16 that holds a longer prefix, one per /24 that holds a longer one.
fn route_tables_needed(interfaces: &[InterfaceConfig], routes: &[Route]) -> u32 {
    let prefixes = routes.iter().map(|r| r.prefix).chain(
        interfaces
            .iter()
            .flat_map(|i| [i.subnet(), ipnet::Ipv4Net::from(i.addr)]),
    );
    let (mut l2, mut l3) = (HashSet::new(), HashSet::new());
    for p in prefixes {
        let a = u32::from(p.addr());
        if p.prefix_len() > 16 {
            l2.insert(a >> 16);
        }
        if p.prefix_len() > 24 {
            l3.insert(a >> 8);
        }
    }
    u32::try_from(l2.len() + l3.len()).unwrap_or(u32::MAX)
}
