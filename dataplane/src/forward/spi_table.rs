//! Inbound SPIs to what a worker knows of them (the worker that owns the SA, and where that
//! worker keeps it): an open-addressed table with linear probing, at most half full, so a
//! lookup is usually one multiply and one cache line, and the line can be prefetched from the
//! SPI alone (`forward::lookahead`). Deletes shift later entries back, so there are no
//! tombstones. The table has its full size from the start (room for twice the SAs the
//! dataplane is sized for), so it never grows, and a worker never rehashes it between bursts.

use super::{InboundIndex, WorkerIndex};
use crate::mem::{Memory, OutOfMemory, Table};

/// What a worker knows of an inbound SPI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SpiEntry {
    pub owner: WorkerIndex,
    /// Where the owner keeps the SA (the same on every worker).
    pub index: InboundIndex,
}

/// 16 bytes and aligned to them: four to a cache line, none across two.
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(16))]
struct Bucket {
    spi: u32,
    used: bool,
    owner: WorkerIndex,
    index: u32,
}

const _: () = assert!(std::mem::size_of::<Bucket>() == 16);

pub(super) struct SpiTable {
    buckets: Table<Bucket>,
    len: usize,
}

impl SpiTable {
    /// Room for `spis` SPIs, in `memory` on `socket`.
    pub fn new(memory: Memory, socket: i32, spis: u32) -> Result<SpiTable, OutOfMemory> {
        let n = (spis.max(8) as usize * 2).next_power_of_two();
        Ok(SpiTable {
            buckets: Table::new(memory, socket, n, "SPI table", |_| Bucket::default())?,
            len: 0,
        })
    }

    /// The home bucket (at least 16 buckets, so at least 4 bits).
    #[inline(always)]
    fn home(&self, spi: u32) -> usize {
        super::fibonacci(u64::from(spi), self.buckets.len().trailing_zeros())
    }

    #[inline(always)]
    fn mask(&self) -> usize {
        self.buckets.len() - 1
    }

    /// Where `spi` is, or the empty bucket it would go in.
    #[inline(always)]
    fn find(&self, spi: u32) -> (usize, bool) {
        let mut i = self.home(spi);
        loop {
            let b = &self.buckets[i];
            if !b.used {
                return (i, false);
            }
            if b.spi == spi {
                return (i, true);
            }
            i = (i + 1) & self.mask();
        }
    }

    #[inline(always)]
    pub fn get(&self, spi: u32) -> Option<SpiEntry> {
        match self.find(spi) {
            (i, true) => {
                let b = &self.buckets[i];
                Some(SpiEntry {
                    owner: b.owner,
                    index: InboundIndex(b.index),
                })
            }
            _ => None,
        }
    }

    /// Asks for the cache line `spi`'s lookup starts at.
    #[inline(always)]
    pub fn prefetch(&self, spi: u32) {
        crate::prefetch::line(&self.buckets[self.home(spi)]);
    }

    /// Sets `spi`'s entry, adding it if absent; false (nothing changed) when the table holds
    /// as many SPIs as it is sized for.
    pub fn set(&mut self, spi: u32, e: SpiEntry) -> bool {
        let (i, found) = self.find(spi);
        if !found {
            if (self.len + 1) * 2 > self.buckets.len() {
                return false;
            }
            self.len += 1;
        }
        self.buckets[i] = Bucket {
            spi,
            used: true,
            owner: e.owner,
            index: e.index.0,
        };
        true
    }

    pub fn remove(&mut self, spi: u32) {
        let (mut hole, found) = self.find(spi);
        if !found {
            return;
        }
        self.len -= 1;
        // Shift back each later entry of the run whose home is not between the hole and it.
        let mut i = hole;
        loop {
            i = (i + 1) & self.mask();
            let b = self.buckets[i];
            if !b.used {
                break;
            }
            let home = self.home(b.spi);
            if (i.wrapping_sub(home) & self.mask()) >= (i.wrapping_sub(hole) & self.mask()) {
                self.buckets[hole] = b;
                hole = i;
            }
        }
        self.buckets[hole] = Bucket::default();
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        /// Any sequence of sets and removes leaves the table agreeing with a HashMap, for
        /// every SPI touched, SPI 0 included; few distinct SPIs, so that runs collide.
        #[test]
        fn agrees_with_a_hash_map(ops in proptest::collection::vec((any::<bool>(), 0u32..64, any::<u16>()), 0..400)) {
            let mut t = SpiTable::new(Memory::Heap, -1, 64).unwrap();
            let mut m = HashMap::new();
            for (set, k, v) in ops {
                // Spread the few keys over the whole space, some into the same buckets.
                let spi = k.wrapping_mul(0x0100_0193) ^ (k & 3);
                if set {
                    let e = SpiEntry { owner: v, index: InboundIndex(u32::from(v) * 3) };
                    prop_assert!(t.set(spi, e));
                    m.insert(spi, e);
                } else {
                    t.remove(spi);
                    m.remove(&spi);
                }
                prop_assert_eq!(t.len(), m.len());
            }
            for k in 0u32..64 {
                let spi = k.wrapping_mul(0x0100_0193) ^ (k & 3);
                prop_assert_eq!(t.get(spi), m.get(&spi).copied(), "spi {:#x}", spi);
            }
        }
    }

    #[test]
    fn holds_what_it_is_sized_for_and_refuses_more() {
        let mut t = SpiTable::new(Memory::Heap, -1, 10_000).unwrap();
        let e = |i: u32| SpiEntry {
            owner: 1,
            index: InboundIndex(i),
        };
        let cap = t.buckets.len() / 2;
        assert!(cap >= 10_000);
        for spi in 0..cap as u32 {
            assert!(t.set(spi * 7, e(spi)));
        }
        assert!(!t.set(1, e(0)), "more than half full");
        assert!(t.set(7, e(9)), "an update always fits");
        assert_eq!(t.len(), cap);
        for spi in 2..cap as u32 {
            assert_eq!(t.get(spi * 7).map(|e| e.index), Some(InboundIndex(spi)));
        }
        assert_eq!(t.get(7).map(|e| e.index), Some(InboundIndex(9)));
        assert_eq!(t.get(1), None);
    }
}
