//! IPv4 longest-prefix match: a 16-8-8 multibit trie (as DPDK's rte_lpm is 24-8), so a lookup
//! is at most three dependent loads.
//!
//! Entries carry the prefix length that produced them, so inserting a shorter prefix never
//! overwrites a longer one and deleting a prefix restores the next shorter one, as in rte_lpm.
//!
//! The tables are allocated once at their full size (`mem::Table`): the 2^16-entry root and a
//! fixed number of 256-entry child tables, which a route longer than /16 or /24 takes and a
//! delete gives back when the child holds nothing of its own any more.

use crate::mem::{Memory, OutOfMemory, Table};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

const VALID: u32 = 1 << 31;
const CHILD: u32 = 1 << 30;
const DEPTH_SHIFT: u32 = 24;
const PAYLOAD: u32 = (1 << 24) - 1;
/// Next hops are 24-bit indexes.
pub const MAX_NEXT_HOP: u32 = PAYLOAD;

/// Bits consumed by each level: 16, then 8, then 8.
const STRIDES: [u32; 3] = [16, 8, 8];

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LpmError {
    #[error("prefix length above 32")]
    BadLength,
    #[error("next hop index above 2^24 - 1")]
    BadNextHop,
    #[error("all {0} child tables are in use")]
    Full(usize),
}

pub struct Lpm {
    root: Table<u32>,
    /// Child tables of 256 entries for levels two and three.
    children: Table<[u32; 256]>,
    /// Child tables not in use.
    free: Vec<u32>,
    /// The rules, by (masked address, length), for deletes and listing.
    rules: BTreeMap<(u32, u8), u32>,
}

fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

fn leaf(depth: u8, nh: u32) -> u32 {
    VALID | (u32::from(depth) << DEPTH_SHIFT) | nh
}

fn depth_of(e: u32) -> u8 {
    ((e >> DEPTH_SHIFT) & 0x3f) as u8
}

impl Lpm {
    /// A trie with room for `child_tables` child tables, in `memory` on `socket`.
    pub fn new(memory: Memory, socket: i32, child_tables: u32) -> Result<Lpm, OutOfMemory> {
        Ok(Lpm {
            root: Table::new(memory, socket, 1 << 16, "route trie", |_| 0)?,
            children: Table::new(memory, socket, child_tables as usize, "route trie", |_| {
                [0; 256]
            })?,
            free: (0..child_tables).rev().collect(),
            rules: BTreeMap::new(),
        })
    }

    /// Child tables in use.
    pub fn child_tables(&self) -> usize {
        self.children.len() - self.free.len()
    }

    /// The next hop of the longest matching prefix.
    #[inline]
    pub fn lookup(&self, addr: Ipv4Addr) -> Option<u32> {
        let a = u32::from(addr);
        let mut e = self.root[(a >> 16) as usize];
        if e & CHILD != 0 {
            e = self.children[(e & PAYLOAD) as usize][((a >> 8) & 0xff) as usize];
            if e & CHILD != 0 {
                e = self.children[(e & PAYLOAD) as usize][(a & 0xff) as usize];
            }
        }
        if e & VALID != 0 {
            Some(e & PAYLOAD)
        } else {
            None
        }
    }

    /// Adds or replaces a route. `Full`, with nothing changed, when it needs a child table and
    /// none is free.
    pub fn insert(&mut self, addr: Ipv4Addr, len: u8, nh: u32) -> Result<(), LpmError> {
        if len > 32 {
            return Err(LpmError::BadLength);
        }
        if nh > MAX_NEXT_HOP {
            return Err(LpmError::BadNextHop);
        }
        let a = u32::from(addr) & mask(len);
        if self.tables_needed(a, len) > self.free.len() {
            return Err(LpmError::Full(self.children.len()));
        }
        self.rules.insert((a, len), nh);
        self.write(
            a,
            len,
            |e| e & VALID == 0 || depth_of(e) <= len,
            leaf(len, nh),
        );
        Ok(())
    }

    /// How many child tables inserting a/len would take: one for each level below the last
    /// child on its path that the prefix reaches into.
    fn tables_needed(&self, a: u32, len: u8) -> usize {
        let len = u32::from(len);
        let mut table: Option<usize> = None;
        let mut consumed = 0;
        for (level, stride) in STRIDES.into_iter().enumerate() {
            if len <= consumed + stride {
                return 0;
            }
            let idx = ((a << consumed) >> (32 - stride)) as usize;
            let e = self.entry(table, idx);
            if e & CHILD == 0 {
                // A new table at each level the prefix goes below, from here on.
                let mut below = consumed + stride;
                let mut n = 0;
                for s in &STRIDES[level + 1..] {
                    if len > below {
                        n += 1;
                    }
                    below += s;
                }
                return n.max(1);
            }
            table = Some((e & PAYLOAD) as usize);
            consumed += stride;
        }
        0
    }

    /// Removes a route; returns whether it existed. Addresses it covered fall back to the
    /// next shorter matching rule.
    pub fn remove(&mut self, addr: Ipv4Addr, len: u8) -> bool {
        if len > 32 {
            return false;
        }
        let a = u32::from(addr) & mask(len);
        if self.rules.remove(&(a, len)).is_none() {
            return false;
        }
        let parent = (0..len)
            .rev()
            .find_map(|l| self.rules.get(&(a & mask(l), l)).map(|&nh| leaf(l, nh)))
            .unwrap_or(0);
        self.write(a, len, |e| e & VALID != 0 && depth_of(e) == len, parent);
        self.collapse(a);
        true
    }

    /// Gives back the child tables on a's path that hold nothing of their own any more: all
    /// 256 entries the same leaf (or empty), which their parent entry then holds instead.
    fn collapse(&mut self, a: u32) {
        let i1 = (a >> 16) as usize;
        let e1 = self.root[i1];
        if e1 & CHILD == 0 {
            return;
        }
        let c2 = (e1 & PAYLOAD) as usize;
        let i2 = ((a >> 8) & 0xff) as usize;
        let e2 = self.children[c2][i2];
        if e2 & CHILD != 0 {
            let c3 = (e2 & PAYLOAD) as usize;
            if let Some(v) = self.uniform(c3) {
                self.children[c2][i2] = v;
                self.free.push(c3 as u32);
            }
        }
        if let Some(v) = self.uniform(c2) {
            self.root[i1] = v;
            self.free.push(c2 as u32);
        }
    }

    /// The one value of a child table whose entries are all the same and none a child.
    fn uniform(&self, c: usize) -> Option<u32> {
        let t = &self.children[c];
        let v = t[0];
        (v & CHILD == 0 && t.iter().all(|&e| e == v)).then_some(v)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// All rules as (prefix, length, next hop).
    pub fn rules(&self) -> impl Iterator<Item = (Ipv4Addr, u8, u32)> + '_ {
        self.rules
            .iter()
            .map(|(&(a, l), &nh)| (Ipv4Addr::from(a), l, nh))
    }

    /// Sets every entry covered by a/len for which `replace` holds to `value`, descending
    /// into (and creating) child tables as the prefix length needs.
    fn write(&mut self, a: u32, len: u8, replace: impl Fn(u32) -> bool + Copy, value: u32) {
        let len = u32::from(len);
        let mut table: Option<usize> = None; // None = root
        let mut consumed = 0;
        for stride in STRIDES {
            let idx = ((a << consumed) >> (32 - stride)) as usize;
            if len <= consumed + stride {
                let span = 1usize << (consumed + stride - len);
                for i in idx..idx + span {
                    let e = self.entry(table, i);
                    if e & CHILD != 0 {
                        self.fill_child((e & PAYLOAD) as usize, replace, value);
                    } else if replace(e) {
                        self.set_entry(table, i, value);
                    }
                }
                return;
            }
            let e = self.entry(table, idx);
            let child = if e & CHILD != 0 {
                (e & PAYLOAD) as usize
            } else {
                // Expand: the new child starts as copies of the entry it replaces. `insert`
                // checked that enough are free.
                let Some(c) = self.free.pop() else { return };
                let c = c as usize;
                self.children[c] = [e; 256];
                self.set_entry(table, idx, CHILD | c as u32);
                c
            };
            table = Some(child);
            consumed += stride;
        }
    }

    fn fill_child(&mut self, c: usize, replace: impl Fn(u32) -> bool + Copy, value: u32) {
        for i in 0..256 {
            let e = self.children[c][i];
            if e & CHILD != 0 {
                self.fill_child((e & PAYLOAD) as usize, replace, value);
            } else if replace(e) {
                self.children[c][i] = value;
            }
        }
    }

    fn entry(&self, table: Option<usize>, i: usize) -> u32 {
        match table {
            None => self.root[i],
            Some(c) => self.children[c][i],
        }
    }

    fn set_entry(&mut self, table: Option<usize>, i: usize, v: u32) {
        match table {
            None => self.root[i] = v,
            Some(c) => self.children[c][i] = v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn trie(children: u32) -> Lpm {
        Lpm::new(Memory::Heap, -1, children).unwrap()
    }

    #[test]
    fn longest_prefix_wins_in_any_insert_order() {
        let mut t = trie(16);
        t.insert(ip("10.2.3.0"), 24, 3).unwrap();
        t.insert(ip("0.0.0.0"), 0, 1).unwrap();
        t.insert(ip("10.2.3.128"), 25, 4).unwrap();
        t.insert(ip("10.2.0.0"), 16, 2).unwrap();
        t.insert(ip("10.2.3.7"), 32, 5).unwrap();
        assert_eq!(t.lookup(ip("8.8.8.8")), Some(1));
        assert_eq!(t.lookup(ip("10.2.9.9")), Some(2));
        assert_eq!(t.lookup(ip("10.2.3.6")), Some(3));
        assert_eq!(t.lookup(ip("10.2.3.7")), Some(5));
        assert_eq!(t.lookup(ip("10.2.3.200")), Some(4));
        assert!(t.remove(ip("10.2.3.0"), 24));
        assert_eq!(t.lookup(ip("10.2.3.6")), Some(2), "falls back to the /16");
        assert_eq!(t.lookup(ip("10.2.3.7")), Some(5), "longer rule untouched");
        assert!(t.remove(ip("0.0.0.0"), 0));
        assert_eq!(t.lookup(ip("8.8.8.8")), None);
        assert!(!t.remove(ip("0.0.0.0"), 0));
        assert_eq!(t.insert(ip("1.2.3.4"), 33, 1), Err(LpmError::BadLength));
    }

    #[test]
    fn child_tables_are_taken_and_given_back() {
        let mut t = trie(2);
        t.insert(ip("10.2.0.0"), 16, 1).unwrap();
        assert_eq!(t.child_tables(), 0);
        t.insert(ip("10.2.3.0"), 24, 2).unwrap();
        assert_eq!(t.child_tables(), 1);
        t.insert(ip("10.2.3.7"), 32, 3).unwrap();
        assert_eq!(t.child_tables(), 2);
        assert_eq!(t.insert(ip("10.3.3.7"), 32, 4), Err(LpmError::Full(2)));
        assert_eq!(
            t.lookup(ip("10.3.3.7")),
            None,
            "nothing of the refused route"
        );
        assert!(t.remove(ip("10.2.3.7"), 32));
        assert_eq!(t.child_tables(), 1);
        assert!(t.remove(ip("10.2.3.0"), 24));
        assert_eq!(t.child_tables(), 0);
        assert_eq!(t.lookup(ip("10.2.3.7")), Some(1));
        t.insert(ip("10.3.3.7"), 32, 4).unwrap();
        assert_eq!(t.lookup(ip("10.3.3.7")), Some(4));
    }

    fn naive(rules: &BTreeMap<(u32, u8), u32>, a: u32) -> Option<u32> {
        rules
            .iter()
            .filter(|((p, l), _)| a & mask(*l) == *p)
            .max_by_key(|((_, l), _)| *l)
            .map(|(_, nh)| *nh)
    }

    proptest! {
        #[test]
        fn agrees_with_linear_search(
            ops in prop::collection::vec((any::<u32>(), 0u8..=32, 0u32..100, any::<bool>()), 1..60),
            probes in prop::collection::vec(any::<u32>(), 64),
        ) {
            let mut t = trie(256);
            let mut model = BTreeMap::new();
            for (a, l, nh, del) in ops {
                let p = a & mask(l);
                if del {
                    prop_assert_eq!(t.remove(Ipv4Addr::from(a), l), model.remove(&(p, l)).is_some());
                    // Whatever was deleted, no child table is kept that holds nothing.
                    prop_assert!(t.child_tables() <= 2 * model.len());
                } else {
                    t.insert(Ipv4Addr::from(a), l, nh).unwrap();
                    model.insert((p, l), nh);
                }
                // Probe the rule's own neighbourhood as well as random addresses.
                for x in probes.iter().copied().chain([p, p | !mask(l), p.wrapping_sub(1)]) {
                    prop_assert_eq!(t.lookup(Ipv4Addr::from(x)), naive(&model, x));
                }
            }
        }
    }
}
