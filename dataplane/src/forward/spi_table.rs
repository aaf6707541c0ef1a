//! Inbound SPIs to what a worker knows of them (the owner, and the slot of the SA if it is the
//! owner): an open-addressed table with linear probing, at most half full, so a lookup is
//! usually one multiply and one cache line, and the line can be prefetched from the SPI alone
//! (`forward::lookahead`). Deletes shift later entries back, so there are no tombstones.

/// What a worker knows of an inbound SPI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SpiEntry {
    pub owner: u16,
    pub slot: u32,
}

/// 16 bytes and aligned to them: four to a cache line, none across two.
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(16))]
struct Bucket {
    spi: u32,
    used: bool,
    owner: u16,
    slot: u32,
}

const _: () = assert!(std::mem::size_of::<Bucket>() == 16);

pub(super) struct SpiTable {
    buckets: Box<[Bucket]>,
    len: usize,
}

impl Default for SpiTable {
    fn default() -> Self {
        SpiTable {
            buckets: vec![Bucket::default(); 16].into_boxed_slice(),
            len: 0,
        }
    }
}

impl SpiTable {
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
                    slot: b.slot,
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

    /// Sets `spi`'s entry, adding it if absent.
    pub fn set(&mut self, spi: u32, e: SpiEntry) {
        let (mut i, found) = self.find(spi);
        if !found {
            if (self.len + 1) * 2 > self.buckets.len() {
                self.grow();
                i = self.find(spi).0;
            }
            self.len += 1;
        }
        self.buckets[i] = Bucket {
            spi,
            used: true,
            owner: e.owner,
            slot: e.slot,
        };
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

    fn grow(&mut self) {
        let bigger = vec![Bucket::default(); self.buckets.len() * 2].into_boxed_slice();
        let old = std::mem::replace(&mut self.buckets, bigger);
        self.len = 0;
        for b in old.iter().filter(|b| b.used) {
            self.set(
                b.spi,
                SpiEntry {
                    owner: b.owner,
                    slot: b.slot,
                },
            );
        }
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
            let mut t = SpiTable::default();
            let mut m = HashMap::new();
            for (set, k, v) in ops {
                // Spread the few keys over the whole space, some into the same buckets.
                let spi = k.wrapping_mul(0x0100_0193) ^ (k & 3);
                if set {
                    let e = SpiEntry { owner: v, slot: u32::from(v) * 3 };
                    t.set(spi, e);
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
    fn grows_and_keeps_everything() {
        let mut t = SpiTable::default();
        for spi in 0..10_000u32 {
            t.set(
                spi * 7,
                SpiEntry {
                    owner: 1,
                    slot: spi,
                },
            );
        }
        assert_eq!(t.len(), 10_000);
        assert!(t.buckets.len() >= 20_000, "at most half full");
        for spi in 0..10_000u32 {
            assert_eq!(t.get(spi * 7).map(|e| e.slot), Some(spi));
        }
        assert_eq!(t.get(1), None);
    }
}
