//! IPv6 longest-prefix match: one hash table of (prefix, length) rules, and the lengths that
//! have rules, longest first. A lookup masks the address to each of those lengths in turn and
//! probes the table once for each, so it costs one probe (usually one cache line) per distinct
//! length in use, not per bit: a gateway's table has a handful (its /128s, /64s, /48s, ::/0),
//! where a 16-8-8-... trie would walk up to 15 dependent levels to reach a /128.
//!
//! The table is open-addressed with linear probing, at most half full, allocated once at its
//! full size (`mem::Table`) so that it never grows between a worker's bursts; deletes shift
//! later entries back (no tombstones), as in `spi_table`.

use crate::mem::{Memory, OutOfMemory, Table};
use arrayvec::ArrayVec;
use std::net::Ipv6Addr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Lpm6Error {
    #[error("prefix length above 128")]
    BadLength,
    #[error("all {0} IPv6 route slots are in use")]
    Full(usize),
}

/// A rule; two to a cache line.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(32))]
struct Bucket {
    prefix: u128,
    next_hop: u32,
    len: u8,
    used: bool,
}

const _: () = assert!(std::mem::size_of::<Bucket>() == 32);

pub struct Lpm6 {
    buckets: Table<Bucket>,
    rules: usize,
    /// Rules of each length, and the lengths that have any, longest first.
    per_length: [u32; 129],
    lengths: ArrayVec<u8, 129>,
}

fn mask(len: u8) -> u128 {
    match len {
        0 => 0,
        l => u128::MAX << (128 - u32::from(l.min(128))),
    }
}

impl Lpm6 {
    /// Room for `rules` rules, in `memory` on `socket`.
    pub fn new(memory: Memory, socket: i32, rules: u32) -> Result<Lpm6, OutOfMemory> {
        let n = (rules.max(8) as usize * 2).next_power_of_two();
        Ok(Lpm6 {
            buckets: Table::new(memory, socket, n, "IPv6 routes", |_| Bucket::default())?,
            rules: 0,
            per_length: [0; 129],
            lengths: ArrayVec::new(),
        })
    }

    /// The rules it has room for.
    pub fn capacity(&self) -> usize {
        self.buckets.len() / 2
    }

    #[inline(always)]
    fn home(&self, prefix: u128, len: u8) -> usize {
        let (hi, lo) = ((prefix >> 64) as u64, prefix as u64);
        let key = hi.wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ lo ^ u64::from(len);
        super::fibonacci(key, self.buckets.len().trailing_zeros())
    }

    /// Where the rule is, or the empty bucket it would go in.
    #[inline(always)]
    fn find(&self, prefix: u128, len: u8) -> (usize, bool) {
        let m = self.buckets.len() - 1;
        let mut i = self.home(prefix, len);
        loop {
            let b = &self.buckets[i];
            if !b.used {
                return (i, false);
            }
            if b.prefix == prefix && b.len == len {
                return (i, true);
            }
            i = (i + 1) & m;
        }
    }

    /// The next hop of the longest matching prefix.
    #[inline]
    pub fn lookup(&self, addr: Ipv6Addr) -> Option<u32> {
        let a = u128::from(addr);
        self.lengths
            .iter()
            .find_map(|&len| match self.find(a & mask(len), len) {
                (i, true) => Some(self.buckets[i].next_hop),
                _ => None,
            })
    }

    /// Adds or replaces a rule. `Full`, with nothing changed, when the table holds as many
    /// rules as it is sized for.
    pub fn insert(&mut self, addr: Ipv6Addr, len: u8, nh: u32) -> Result<(), Lpm6Error> {
        if len > 128 {
            return Err(Lpm6Error::BadLength);
        }
        let prefix = u128::from(addr) & mask(len);
        let (i, found) = self.find(prefix, len);
        if !found {
            if self.rules >= self.capacity() {
                return Err(Lpm6Error::Full(self.capacity()));
            }
            self.rules += 1;
            self.per_length[usize::from(len)] += 1;
            if self.per_length[usize::from(len)] == 1 {
                let at = self.lengths.iter().position(|&l| l < len);
                self.lengths.insert(at.unwrap_or(self.lengths.len()), len);
            }
        }
        self.buckets[i] = Bucket {
            prefix,
            next_hop: nh,
            len,
            used: true,
        };
        Ok(())
    }

    /// Removes a rule; returns whether it existed.
    pub fn remove(&mut self, addr: Ipv6Addr, len: u8) -> bool {
        if len > 128 {
            return false;
        }
        let (mut hole, found) = self.find(u128::from(addr) & mask(len), len);
        if !found {
            return false;
        }
        self.rules -= 1;
        self.per_length[usize::from(len)] -= 1;
        if self.per_length[usize::from(len)] == 0 {
            self.lengths.retain(|l| *l != len);
        }
        // Shift back each later entry of the run whose home is not between the hole and it.
        let m = self.buckets.len() - 1;
        let mut i = hole;
        loop {
            i = (i + 1) & m;
            let b = self.buckets[i];
            if !b.used {
                break;
            }
            let home = self.home(b.prefix, b.len);
            if (i.wrapping_sub(home) & m) >= (i.wrapping_sub(hole) & m) {
                self.buckets[hole] = b;
                hole = i;
            }
        }
        self.buckets[hole] = Bucket::default();
        true
    }

    pub fn len(&self) -> usize {
        self.rules
    }

    pub fn is_empty(&self) -> bool {
        self.rules == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn table(rules: u32) -> Lpm6 {
        Lpm6::new(Memory::Heap, -1, rules).unwrap()
    }

    #[test]
    fn longest_prefix_wins_in_any_insert_order() {
        let mut t = table(16);
        t.insert(a("2001:db8:2:3::"), 64, 3).unwrap();
        t.insert(a("::"), 0, 1).unwrap();
        t.insert(a("2001:db8:2:3:8000::"), 65, 4).unwrap();
        t.insert(a("2001:db8:2::"), 48, 2).unwrap();
        t.insert(a("2001:db8:2:3::7"), 128, 5).unwrap();
        assert_eq!(t.lookup(a("2001:4860::8888")), Some(1));
        assert_eq!(t.lookup(a("2001:db8:2:9::9")), Some(2));
        assert_eq!(t.lookup(a("2001:db8:2:3::6")), Some(3));
        assert_eq!(t.lookup(a("2001:db8:2:3::7")), Some(5));
        assert_eq!(t.lookup(a("2001:db8:2:3:ffff::1")), Some(4));
        assert!(t.remove(a("2001:db8:2:3::"), 64));
        assert_eq!(
            t.lookup(a("2001:db8:2:3::6")),
            Some(2),
            "falls back to the /48"
        );
        assert_eq!(
            t.lookup(a("2001:db8:2:3::7")),
            Some(5),
            "longer rule untouched"
        );
        assert!(t.remove(a("::"), 0));
        assert_eq!(t.lookup(a("2001:4860::8888")), None);
        assert!(!t.remove(a("::"), 0));
        assert_eq!(t.insert(a("::1"), 129, 1), Err(Lpm6Error::BadLength));
        assert!(!t.remove(a("::1"), 129));
        // Host bits of an inserted prefix are ignored, as the trie ignores them.
        t.insert(a("2001:db8:9::1"), 48, 9).unwrap();
        assert_eq!(t.lookup(a("2001:db8:9:1::")), Some(9));
        assert!(t.remove(a("2001:db8:9::"), 48));
    }

    #[test]
    fn a_full_table_refuses_new_rules_and_replaces_old_ones() {
        let mut t = table(8);
        for i in 0..8u16 {
            t.insert(Ipv6Addr::new(0x2001, 0xdb8, i, 0, 0, 0, 0, 0), 48, 1)
                .unwrap();
        }
        assert_eq!(t.len(), 8);
        let extra = a("2001:db8:ff::");
        assert_eq!(t.insert(extra, 48, 2), Err(Lpm6Error::Full(8)));
        assert_eq!(t.lookup(extra), None, "nothing of the refused rule");
        t.insert(a("2001:db8:3::"), 48, 7).unwrap();
        assert_eq!(t.len(), 8, "a replacement takes no slot");
        assert_eq!(t.lookup(a("2001:db8:3::1")), Some(7));
    }

    fn naive(rules: &BTreeMap<(u128, u8), u32>, x: u128) -> Option<u32> {
        rules
            .iter()
            .filter(|((p, l), _)| x & mask(*l) == *p)
            .max_by_key(|((_, l), _)| *l)
            .map(|(_, nh)| *nh)
    }

    proptest! {
        /// Inserts and deletes of prefixes that share their first bits (so that lengths and
        /// hash runs collide) agree with a linear search, around each rule and at random.
        #[test]
        fn agrees_with_linear_search(
            ops in prop::collection::vec(
                (0u128..16, any::<u64>(), 0u8..=128, 0u32..100, any::<bool>()), 1..80),
            probes in prop::collection::vec(any::<u64>(), 32),
        ) {
            let mut t = table(128);
            let mut model = BTreeMap::new();
            for (top, low, l, nh, del) in ops {
                let x = (0x2001_0db8u128 << 96) | (top << 80) | u128::from(low);
                let p = x & mask(l);
                if del {
                    prop_assert_eq!(t.remove(Ipv6Addr::from(x), l), model.remove(&(p, l)).is_some());
                } else {
                    t.insert(Ipv6Addr::from(x), l, nh).unwrap();
                    model.insert((p, l), nh);
                }
                prop_assert_eq!(t.len(), model.len());
                let around = [p, p | !mask(l), p.wrapping_sub(1)];
                let random = probes.iter().map(|&r| (0x2001_0db8u128 << 96) | (u128::from(r) << 16));
                for y in around.into_iter().chain(random) {
                    prop_assert_eq!(t.lookup(Ipv6Addr::from(y)), naive(&model, y));
                }
            }
        }
    }
}
