//! The stats region: the dataplane's counters as one document (JSON) that the dataplane
//! rewrites and the control process only reads, lock-free, never torn (VPP's stats segment
//! is the model; here a whole snapshot instead of live counters, so that per-SA, per-tunnel and
//! per-worker figures read together are from the same moment).
//!
//! Two halves and a sequence: the writer fills the half readers are not pointed at, then
//! points them at it and bumps the sequence. A reader copies the current half and checks that
//! the sequence did not move meanwhile (if it did, the writer may have started on the half it
//! was reading, and it copies again). Every word is moved with an atomic load or store.
//!
//! ```text
//! 0    sequence (u64)   bumped once a snapshot is complete
//! 8    current (u64)    0 or 1: the half readers read
//! 16   len[0], len[1]   bytes of each half's document
//! 64   half 0 | half 1
//! ```

use crate::segment::Segment;
use std::sync::atomic::{fence, AtomicU64, Ordering};

const HEADER: usize = 64;
/// Copies a reader tries before it gives up (a writer publishing faster than a copy).
const TRIES: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StatsError {
    #[error("a {len}-byte snapshot does not fit the stats region's {room}-byte halves")]
    TooBig { len: usize, room: usize },
    #[error("the stats region is too small or torn")]
    Unreadable,
    #[error("nothing published yet")]
    Empty,
}

struct Region {
    words: *const AtomicU64,
    /// Words in each half.
    half: usize,
}

impl Region {
    fn of(seg: &Segment) -> Option<Region> {
        let (base, len) = seg.stats_region();
        if len < HEADER + 16 {
            return None;
        }
        Some(Region {
            words: base as *const AtomicU64,
            half: (len - HEADER) / 2 / 8,
        })
    }
    fn word(&self, i: usize) -> &AtomicU64 {
        // SAFETY: the region lies inside the mapping (checked at attach), is 64-byte aligned,
        // and `i` stays below its length in words (every caller bounds it).
        unsafe { &*self.words.add(i) }
    }
    fn half_start(&self, h: usize) -> usize {
        HEADER / 8 + h * self.half
    }
}

impl Segment {
    /// Publishes `doc` as the current snapshot (the dataplane's main lcore, the only writer).
    pub fn publish_stats(&self, doc: &[u8]) -> Result<(), StatsError> {
        let r = Region::of(self).ok_or(StatsError::Unreadable)?;
        let room = r.half * 8;
        if doc.len() > room {
            return Err(StatsError::TooBig {
                len: doc.len(),
                room,
            });
        }
        let target = 1 - (r.word(1).load(Ordering::Relaxed) & 1) as usize;
        let start = r.half_start(target);
        for (i, chunk) in doc.chunks(8).enumerate() {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            r.word(start + i)
                .store(u64::from_le_bytes(w), Ordering::Relaxed);
        }
        r.word(2 + target)
            .store(doc.len() as u64, Ordering::Relaxed);
        r.word(1).store(target as u64, Ordering::Release);
        r.word(0).fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// The current snapshot: a copy no write went through.
    pub fn read_stats(&self) -> Result<Vec<u8>, StatsError> {
        let r = Region::of(self).ok_or(StatsError::Unreadable)?;
        for _ in 0..TRIES {
            let s1 = r.word(0).load(Ordering::Acquire);
            if s1 == 0 {
                return Err(StatsError::Empty);
            }
            let h = (r.word(1).load(Ordering::Acquire) & 1) as usize;
            let len = r.word(2 + h).load(Ordering::Acquire) as usize;
            if len > r.half * 8 {
                continue;
            }
            let start = r.half_start(h);
            let mut out = Vec::with_capacity(len.next_multiple_of(8));
            for i in 0..len.div_ceil(8) {
                out.extend_from_slice(&r.word(start + i).load(Ordering::Relaxed).to_le_bytes());
            }
            fence(Ordering::Acquire);
            if r.word(0).load(Ordering::Relaxed) == s1 {
                out.truncate(len);
                return Ok(out);
            }
        }
        Err(StatsError::Unreadable)
    }
}

#[cfg(test)]
mod tests {
    use crate::segment::{Layout, Segment};

    #[test]
    fn a_reader_sees_whole_snapshots_only_while_the_writer_runs() {
        let dir = std::env::temp_dir().join(format!("espgw-stats-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("seg");
        let layout = Layout {
            stats_len: 64 + 2 * 4096,
            ..Default::default()
        };
        let w = Segment::create(&path, layout).unwrap();
        let r = Segment::attach(&path).unwrap();
        assert_eq!(r.read_stats(), Err(super::StatsError::Empty));
        assert!(matches!(
            w.publish_stats(&[0; 5000]),
            Err(super::StatsError::TooBig { .. })
        ));
        // Snapshot n is n repeated over a length that varies with n: a torn read would mix.
        let doc = |n: u32| -> Vec<u8> { vec![(n % 251) as u8; 100 + (n as usize * 37) % 3900] };
        let writer = std::thread::spawn(move || {
            for n in 0..20_000u32 {
                w.publish_stats(&doc(n)).unwrap();
            }
        });
        let mut reads = 0;
        while !writer.is_finished() {
            if let Ok(d) = r.read_stats() {
                let b = d[0];
                assert!(d.iter().all(|&x| x == b), "torn snapshot");
                reads += 1;
            }
        }
        writer.join().unwrap();
        assert_eq!(r.read_stats().unwrap(), doc(19_999));
        assert!(reads > 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
