//! The neighbor cache as a worker sees it (ARP's for IPv4, neighbor discovery's for IPv6):
//! resolved MACs, plus a note of which addresses it already asked the main lcore to resolve,
//! so one miss is one request a second. One table per address family, keyed by the address
//! as a number (`u32`, `u128`).

use crate::wire::ethernet::Mac;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// Bounds the table so that traffic to many unresolvable addresses cannot grow it.
pub const MAX_NEIGHBORS: usize = 8192;
const RETRY_MS: u64 = 1000;

/// Multiply-shift hashing for keys that are already well spread or small (SPIs, IPv4
/// addresses): far cheaper per packet than SipHash, and the tables are not attacker-sized.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = (u64::from(n) ^ 0x9e37_79b9_7f4a_7c15).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        self.0 ^= self.0 >> 31;
    }
    fn write_u128(&mut self, n: u128) {
        // IPv6 addresses: both halves through one multiply each.
        let (hi, lo) = ((n >> 64) as u64, n as u64);
        self.0 = (hi.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ lo).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        self.0 ^= self.0 >> 31;
    }
}

pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    Known { mac: Mac, permanent: bool },
    Pending { since_ms: u64 },
}

pub struct NeighborTable<K> {
    map: IdMap<K, Entry>,
}

impl<K: Copy + Eq + Hash> Default for NeighborTable<K> {
    fn default() -> Self {
        // Room for the most learned entries from the start: the table never grows between a
        // worker's bursts.
        let mut map = IdMap::default();
        map.reserve(MAX_NEIGHBORS);
        NeighborTable { map }
    }
}

impl<K: Copy + Eq + Hash> NeighborTable<K> {
    /// Learned entries never replace static ones, and are not added to a full table.
    pub fn set(&mut self, k: K, mac: Mac, permanent: bool) {
        match self.map.get(&k) {
            Some(Entry::Known {
                permanent: true, ..
            }) if !permanent => return,
            None if !permanent && self.map.len() >= MAX_NEIGHBORS => return,
            _ => {}
        }
        self.map.insert(k, Entry::Known { mac, permanent });
    }

    pub fn remove(&mut self, k: K) {
        self.map.remove(&k);
    }

    /// The MAC for `ip`, or `None` and `true` when a resolution request should go out now.
    #[inline]
    pub fn lookup(&mut self, k: K, now_ms: u64) -> (Option<Mac>, bool) {
        match self.map.get_mut(&k) {
            Some(Entry::Known { mac, .. }) => (Some(*mac), false),
            Some(Entry::Pending { since_ms }) => {
                if now_ms.saturating_sub(*since_ms) >= RETRY_MS {
                    *since_ms = now_ms;
                    (None, true)
                } else {
                    (None, false)
                }
            }
            None => {
                if self.map.len() >= MAX_NEIGHBORS {
                    return (None, false);
                }
                self.map.insert(k, Entry::Pending { since_ms: now_ms });
                (None, true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn miss_asks_once_per_second_and_static_wins() {
        let mut t = NeighborTable::default();
        let ip = u32::from(Ipv4Addr::new(192, 0, 2, 2));
        assert_eq!(t.lookup(ip, 10), (None, true));
        assert_eq!(t.lookup(ip, 500), (None, false));
        assert_eq!(t.lookup(ip, 1010), (None, true));
        let m = Mac([2, 0, 0, 0, 2, 2]);
        t.set(ip, m, true);
        t.set(ip, Mac([2, 0, 0, 0, 9, 9]), false);
        assert_eq!(t.lookup(ip, 1020), (Some(m), false));
    }

    #[test]
    fn learned_entries_stop_at_the_cap() {
        let mut t = NeighborTable::default();
        let m = Mac([2, 0, 0, 0, 0, 1]);
        for i in 0..MAX_NEIGHBORS as u32 {
            t.set(0x0a00_0000 + i, m, false);
        }
        let extra = u32::from(Ipv4Addr::new(11, 0, 0, 1));
        t.set(extra, m, false);
        assert_eq!(
            t.lookup(extra, 0),
            (None, false),
            "neither learned nor queued for resolution"
        );
        t.set(extra, m, true);
        assert_eq!(
            t.lookup(extra, 0),
            (Some(m), false),
            "static entries always fit"
        );
    }

    /// The IPv6 table keeps the same rules, keyed by the whole address.
    #[test]
    fn ipv6_keys() {
        let mut t: NeighborTable<u128> = NeighborTable::default();
        let a = u128::from("2001:db8:1::10".parse::<Ipv6Addr>().unwrap());
        let b = u128::from("2001:db8:2::10".parse::<Ipv6Addr>().unwrap());
        let m = Mac([2, 0, 0, 0, 1, 0x10]);
        assert_eq!(t.lookup(a, 0), (None, true));
        t.set(a, m, false);
        assert_eq!(t.lookup(a, 1), (Some(m), false));
        assert_eq!(
            t.lookup(b, 1),
            (None, true),
            "another address, same low bits"
        );
        t.remove(a);
        assert_eq!(t.lookup(a, 2), (None, true));
    }
}
