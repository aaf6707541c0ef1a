//! Inbound anti-replay (RFC 4303 section 3.4.3) with extended sequence numbers (Appendix A).
//!
//! The window is a ring of 64-bit words (RFC 6479): advancing clears whole words, so the cost
//! of a jump does not grow with the window size. `check` runs before decryption and changes
//! nothing; `accept` runs only after the ICV verified.

use crate::mem::{Memory, OutOfMemory, Table};

/// Largest window we accept in configuration.
pub const MAX_WINDOW: u32 = channel::MAX_REPLAY_WINDOW;
pub const DEFAULT_WINDOW: u32 = channel::DEFAULT_REPLAY_WINDOW;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayError {
    /// Already received.
    Duplicate,
    /// Left of the window.
    TooOld,
    /// No valid sequence number could be inferred (sequence 0 without ESN, or beyond 2^64).
    Invalid,
}

pub struct ReplayWindow {
    /// Window size in packets; 0 turns the check off (the top is still tracked for ESN).
    size: u32,
    esn: bool,
    /// Highest authenticated sequence number (full 64 bits), 0 before the first packet.
    top: u64,
    /// In the SA's memory (huge pages in the dataplane): read for every packet.
    bitmap: Table<u64>,
}

impl ReplayWindow {
    /// A window on the heap. `size` must be at most `MAX_WINDOW`; the configuration enforces
    /// it.
    pub fn new(size: u32, esn: bool) -> ReplayWindow {
        // The heap has room for a few kilobytes, or the process is done anyway.
        match Self::in_memory(size, esn, Memory::Heap, -1) {
            Ok(w) => w,
            Err(e) => panic!("{e}"),
        }
    }

    /// A window whose bitmap is in `memory` on `socket`.
    pub fn in_memory(
        size: u32,
        esn: bool,
        memory: Memory,
        socket: i32,
    ) -> Result<ReplayWindow, OutOfMemory> {
        let size = size.min(MAX_WINDOW);
        // One spare word so that the bits of the word being advanced into can be cleared
        // without touching any bit still inside the window.
        let words = if size == 0 {
            0
        } else {
            (size as usize).div_ceil(64) + 1
        };
        Ok(ReplayWindow {
            size,
            esn,
            top: 0,
            bitmap: Table::new(
                memory,
                socket,
                words.next_power_of_two(),
                "replay window",
                |_| 0,
            )?,
        })
    }

    pub fn size(&self) -> u32 {
        self.size
    }

    pub fn top(&self) -> u64 {
        self.top
    }

    /// Infers the full sequence number for the low 32 bits received (RFC 4303 A2.2).
    #[inline]
    fn infer(&self, seql: u32) -> Option<u64> {
        if !self.esn {
            return if seql == 0 {
                None
            } else {
                Some(u64::from(seql))
            };
        }
        let tl = self.top as u32;
        let th = (self.top >> 32) as u32;
        // With the window off, any packet within half the space behind the top counts as old.
        let w = if self.size == 0 {
            1u32 << 31
        } else {
            self.size
        };
        let seqh = if tl >= w - 1 {
            // Case A: the window lies within one 2^32 subspace.
            if seql >= tl - (w - 1) {
                th
            } else {
                th.checked_add(1)?
            }
        } else {
            // Case B: the window spans two subspaces.
            if seql >= tl.wrapping_sub(w - 1) {
                // In the previous subspace, unless there is none (then it is ahead of us).
                th.checked_sub(1).unwrap_or(th)
            } else {
                th
            }
        };
        let full = (u64::from(seqh) << 32) | u64::from(seql);
        if full == 0 {
            return None;
        }
        Some(full)
    }

    fn bit(seq: u64, words: usize) -> (usize, u64) {
        (((seq >> 6) as usize) & (words - 1), 1u64 << (seq & 63))
    }

    /// Pre-decryption check: the full sequence number to authenticate with, or why the
    /// packet must be dropped. Changes nothing.
    #[inline(always)]
    pub fn check(&self, seql: u32) -> Result<u64, ReplayError> {
        let seq = self.infer(seql).ok_or(ReplayError::Invalid)?;
        if self.size == 0 || seq > self.top {
            return Ok(seq);
        }
        if self.top - seq >= u64::from(self.size) {
            return Err(ReplayError::TooOld);
        }
        let (w, m) = Self::bit(seq, self.bitmap.len());
        if self.bitmap[w] & m != 0 {
            return Err(ReplayError::Duplicate);
        }
        Ok(seq)
    }

    /// Records an authenticated sequence number and slides the window. Re-checks, so that
    /// two copies of one packet processed in one batch cannot both be accepted.
    #[inline]
    pub fn accept(&mut self, seq: u64) -> Result<(), ReplayError> {
        if self.size == 0 {
            self.top = self.top.max(seq);
            return Ok(());
        }
        let words = self.bitmap.len();
        if seq > self.top {
            let cur = self.top >> 6;
            let new = seq >> 6;
            let diff = (new - cur).min(words as u64);
            for i in 1..=diff {
                self.bitmap[((cur + i) as usize) & (words - 1)] = 0;
            }
            self.top = seq;
        } else if self.top - seq >= u64::from(self.size) {
            return Err(ReplayError::TooOld);
        }
        let (w, m) = Self::bit(seq, words);
        if self.bitmap[w] & m != 0 {
            return Err(ReplayError::Duplicate);
        }
        self.bitmap[w] |= m;
        Ok(())
    }

    /// Starts as if every number up to `top` had been received: how a window resumes when
    /// only its top is known (after a restart), so that no packet it may have accepted before
    /// is accepted again.
    pub fn resume_at(&mut self, top: u64) {
        if top == 0 || self.bitmap.is_empty() {
            return self.set_top(top);
        }
        let words = self.bitmap.len();
        self.bitmap.iter_mut().for_each(|w| *w = u64::MAX);
        self.top = top;
        // The numbers above the top in its own word have not been seen.
        let (w, m) = Self::bit(top, words);
        self.bitmap[w] &= m | (m - 1);
    }

    /// Test and tooling hook: start as if `top` had been received (e.g. near 2^32).
    pub fn set_top(&mut self, top: u64) {
        self.bitmap.iter_mut().for_each(|w| *w = 0);
        self.top = 0;
        if top != 0 {
            let _ = self.accept(top);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ReplayError::*;
    use super::*;

    fn rx(w: &mut ReplayWindow, seql: u32) -> Result<u64, ReplayError> {
        let s = w.check(seql)?;
        w.accept(s)?;
        Ok(s)
    }

    #[test]
    fn a_resumed_window_takes_nothing_at_or_below_its_top() {
        let mut w = ReplayWindow::new(128, false);
        w.resume_at(1000);
        for old in [1000, 999, 950, 873] {
            assert_eq!(rx(&mut w, old), Err(Duplicate), "{old}");
        }
        assert_eq!(w.check(872), Err(TooOld));
        // Above the top, in the top's own word and beyond: new.
        assert_eq!(rx(&mut w, 1001), Ok(1001));
        assert_eq!(rx(&mut w, 1023), Ok(1023));
        assert_eq!(rx(&mut w, 1100), Ok(1100));
        assert_eq!(rx(&mut w, 1001), Err(Duplicate));
    }

    #[test]
    fn window_edges_without_esn() {
        let mut w = ReplayWindow::new(64, false);
        assert_eq!(rx(&mut w, 0), Err(Invalid), "sequence 0 is never sent");
        assert_eq!(rx(&mut w, 100), Ok(100));
        // 100 - 63 = 37 is the oldest still inside a 64-packet window; 36 is just outside.
        assert_eq!(rx(&mut w, 37), Ok(37));
        assert_eq!(w.check(36), Err(TooOld));
        assert_eq!(rx(&mut w, 37), Err(Duplicate));
        assert_eq!(rx(&mut w, 100), Err(Duplicate));
        assert_eq!(rx(&mut w, 99), Ok(99));
        assert_eq!(rx(&mut w, 101), Ok(101));
        assert_eq!(w.check(37), Err(TooOld), "window slid by one");
    }

    #[test]
    fn check_does_not_change_state() {
        let mut w = ReplayWindow::new(1024, false);
        assert_eq!(w.check(5), Ok(5));
        assert_eq!(w.check(5), Ok(5));
        assert_eq!(w.top(), 0);
        assert_eq!(rx(&mut w, 5), Ok(5));
        assert_eq!(w.top(), 5);
    }

    #[test]
    fn far_future_jump_clears_stale_bits() {
        let mut w = ReplayWindow::new(128, false);
        for s in 1..=128 {
            rx(&mut w, s).unwrap();
        }
        // Jump exactly one ring length ahead: the old bits at the same positions must not
        // read as duplicates.
        let ring_bits = (w.bitmap.len() * 64) as u32;
        assert_eq!(rx(&mut w, 128 + ring_bits), Ok(u64::from(128 + ring_bits)));
        for s in [ring_bits + 1, ring_bits + 64, ring_bits + 127] {
            assert_eq!(rx(&mut w, s), Ok(u64::from(s)), "{s}");
        }
        assert_eq!(w.check(ring_bits), Err(TooOld));
        assert_eq!(rx(&mut w, 1_000_000), Ok(1_000_000));
        assert_eq!(rx(&mut w, 999_873), Ok(999_873), "top - 127 is inside");
        assert_eq!(w.check(999_872), Err(TooOld), "top - 128 is outside");
    }

    #[test]
    fn window_zero_accepts_everything_without_esn() {
        let mut w = ReplayWindow::new(0, false);
        for s in [5, 5, 1, 5, 3] {
            assert_eq!(rx(&mut w, s), Ok(u64::from(s)));
        }
    }

    #[test]
    fn esn_case_a_and_wrap_across_2_pow_32() {
        let mut w = ReplayWindow::new(1024, true);
        w.set_top(0xffff_fff0);
        // Before the wrap, low values ahead of the window mean the next subspace.
        assert_eq!(rx(&mut w, 5), Ok((1 << 32) + 5));
        // Packets just before the wrap are still accepted in subspace 0.
        assert_eq!(rx(&mut w, 0xffff_fff5), Ok(0xffff_fff5));
        assert_eq!(rx(&mut w, 0xffff_fff5), Err(Duplicate));
        // Now top = 2^32 + 5: Case B. A high low-part is from the previous subspace.
        assert_eq!(rx(&mut w, 0xffff_ffff), Ok(0xffff_ffff));
        assert_eq!(
            rx(&mut w, 0),
            Ok(1 << 32),
            "ESN sequence 2^32 has low bits 0"
        );
        assert_eq!(w.check(0xffff_fff5), Err(Duplicate));
        // 2^32 + 5 - 1023 = 0xffff_fc06 is the oldest inside the window.
        assert_eq!(rx(&mut w, 0xffff_fc06), Ok(0xffff_fc06));
        // Below the window means the next subspace under ESN: only the ICV can reject it.
        assert_eq!(w.check(0xffff_fc05), Ok(0x1_ffff_fc05));
        assert_eq!(rx(&mut w, 6), Ok((1 << 32) + 6));
    }

    #[test]
    fn esn_sender_far_ahead_in_same_subspace() {
        let mut w = ReplayWindow::new(64, true);
        assert_eq!(rx(&mut w, 1), Ok(1));
        assert_eq!(rx(&mut w, 0x8000_0000), Ok(0x8000_0000));
        // top low = 2^31; values below top - 63 now map to the next subspace (Case A).
        assert_eq!(w.check(0x10), Ok((1 << 32) + 0x10));
    }

    #[test]
    fn esn_exhausted_space_is_invalid() {
        let mut w = ReplayWindow::new(64, true);
        w.set_top(u64::MAX - 1);
        assert_eq!(w.check(1), Err(Invalid), "would need high part 2^32");
        assert_eq!(rx(&mut w, u32::MAX), Ok(u64::MAX));
    }

    #[test]
    fn max_window_edges() {
        let mut w = ReplayWindow::new(MAX_WINDOW, false);
        rx(&mut w, 100_000).unwrap();
        assert_eq!(rx(&mut w, 100_000 - 65535), Ok(100_000 - 65535));
        assert_eq!(w.check(100_000 - 65536), Err(TooOld));
    }

    #[test]
    fn matches_a_naive_model() {
        use proptest::prelude::*;
        proptest!(|(size in prop::sample::select(vec![1u32, 32, 64, 65, 1024, 4096]),
                    seqs in prop::collection::vec(1u32..20_000, 1..400))| {
            let mut w = ReplayWindow::new(size, false);
            let mut seen = std::collections::BTreeSet::new();
            let mut top = 0u64;
            for s in seqs {
                let s64 = u64::from(s);
                let expect = if s64 > top { Ok(s64) }
                    else if top - s64 >= u64::from(size) { Err(TooOld) }
                    else if seen.contains(&s64) { Err(Duplicate) }
                    else { Ok(s64) };
                prop_assert_eq!(rx(&mut w, s), expect);
                if expect.is_ok() { seen.insert(s64); top = top.max(s64); }
            }
        });
    }
}
