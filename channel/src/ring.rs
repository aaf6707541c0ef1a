//! A single-producer single-consumer ring of fixed-size slots in memory two processes share.
//!
//! The producer owns `head` (the next slot it writes), the consumer owns `tail` (the next slot
//! it reads); each index sits on its own cache line, so the two sides never write the same
//! line. Indexes only grow (64 bits do not wrap in the life of a machine); the slot is the
//! index modulo the slot count. A message is a length and its bytes; the consumer zeroes a
//! slot once it has taken the message out, so key material never outlives its delivery.
//!
//! The other process may be buggy, or restart half-way: every index and length read from the
//! shared memory is checked, and a ring whose indexes make no sense is reported, not trusted.

use std::sync::atomic::{fence, AtomicU64, Ordering};

/// Bytes at the start of each slot that hold the message's length.
const LEN_BYTES: usize = 4;
const CACHE_LINE: usize = 64;

/// Where a ring lies in the segment, as its header records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingLayout {
    /// Number of slots, a power of two.
    pub slots: u32,
    /// Bytes per slot (the length word included), a multiple of 64.
    pub slot_size: u32,
}

impl RingLayout {
    /// Bytes the ring takes: its two index lines and its slots.
    pub const fn bytes(&self) -> usize {
        2 * CACHE_LINE + self.slots as usize * self.slot_size as usize
    }

    /// The largest message a slot holds.
    pub const fn max_message(&self) -> usize {
        self.slot_size as usize - LEN_BYTES
    }

    pub fn is_valid(&self) -> bool {
        self.slots.is_power_of_two()
            && self.slot_size as usize > LEN_BYTES
            && self.slot_size as usize % CACHE_LINE == 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    /// Every slot holds a message the consumer has not taken yet.
    #[error("ring full")]
    Full,
    #[error("message of {len} bytes does not fit a slot ({max} at most)")]
    TooBig { len: usize, max: usize },
    /// The indexes say more messages wait than the ring holds: the other side wrote garbage.
    #[error("ring indexes corrupt (head {head}, tail {tail})")]
    Corrupt { head: u64, tail: u64 },
}

/// A message slot's content was not a length the slot can hold; the slot was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("slot {index} claims {len} bytes")]
pub struct BadSlot {
    pub index: u64,
    pub len: u32,
}

/// A view of one ring in shared memory; `Producer` and `Consumer` are the two ends.
#[derive(Debug, Clone, Copy)]
struct Raw {
    base: *mut u8,
    layout: RingLayout,
}

// SAFETY: the ring is shared by design; each end touches only the index it owns and the slots
// the protocol gives it, and every shared word is accessed atomically.
unsafe impl Send for Raw {}

impl Raw {
    fn head(&self) -> &AtomicU64 {
        // SAFETY: `base` is 64-byte aligned and the ring's memory lives as long as the
        // segment mapping, which outlives both ends (see `Producer::new`).
        unsafe { &*(self.base as *const AtomicU64) }
    }
    fn tail(&self) -> &AtomicU64 {
        // SAFETY: as for `head`, one cache line further.
        unsafe { &*(self.base.add(CACHE_LINE) as *const AtomicU64) }
    }
    fn slot(&self, index: u64) -> *mut u8 {
        let i = (index & u64::from(self.layout.slots - 1)) as usize;
        // SAFETY: i < slots, so the slot lies inside the ring's bytes.
        unsafe {
            self.base
                .add(2 * CACHE_LINE + i * self.layout.slot_size as usize)
        }
    }
    fn waiting(&self, head: u64, tail: u64) -> Result<u64, RingError> {
        match head.checked_sub(tail) {
            Some(n) if n <= u64::from(self.layout.slots) => Ok(n),
            _ => Err(RingError::Corrupt { head, tail }),
        }
    }
}

/// Zeroes a ring's indexes and slots: a new, empty ring.
///
/// # Safety
/// `base` is 64-byte aligned, valid for `layout.bytes()` bytes, and no end of the ring is in
/// use.
pub unsafe fn init(base: *mut u8, layout: RingLayout) {
    std::ptr::write_bytes(base, 0, layout.bytes());
}

/// The writing end.
pub struct Producer {
    raw: Raw,
    /// The producer's own copy of `head` (it is the only writer) and the last `tail` it read.
    head: u64,
    tail_seen: u64,
}

impl Producer {
    /// The writing end of the ring at `base`, carrying on from the indexes it holds (a
    /// producer that restarts continues where its predecessor stopped).
    ///
    /// # Safety
    /// `base` is 64-byte aligned and valid for `layout.bytes()` bytes for as long as the
    /// producer lives; no other producer of this ring exists.
    pub unsafe fn new(base: *mut u8, layout: RingLayout) -> Result<Producer, RingError> {
        let raw = Raw { base, layout };
        let head = raw.head().load(Ordering::Acquire);
        let tail = raw.tail().load(Ordering::Acquire);
        raw.waiting(head, tail)?;
        Ok(Producer {
            raw,
            head,
            tail_seen: tail,
        })
    }

    /// Writes one message with `fill`, which gets the slot's payload bytes and returns how
    /// many it used (`Err` leaves nothing sent). The message is visible to the consumer when
    /// this returns `Ok`.
    pub fn push_with<E>(
        &mut self,
        fill: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<Result<(), E>, RingError> {
        if self.free()? == 0 {
            return Err(RingError::Full);
        }
        let slot = self.raw.slot(self.head);
        let max = self.raw.layout.max_message();
        // SAFETY: the slot is free (the consumer is done with it) and inside the ring.
        let payload = unsafe { std::slice::from_raw_parts_mut(slot.add(LEN_BYTES), max) };
        let len = match fill(payload) {
            Ok(len) if len <= max => len,
            Ok(len) => {
                payload.fill(0);
                return Err(RingError::TooBig { len, max });
            }
            Err(e) => {
                payload.fill(0);
                return Ok(Err(e));
            }
        };
        // SAFETY: the length word is the slot's first 4 bytes.
        unsafe { (slot as *mut u32).write_unaligned((len as u32).to_le()) };
        self.head += 1;
        self.raw.head().store(self.head, Ordering::Release);
        Ok(Ok(()))
    }

    /// Copies `msg` into the next slot.
    pub fn push(&mut self, msg: &[u8]) -> Result<(), RingError> {
        let max = self.raw.layout.max_message();
        if msg.len() > max {
            return Err(RingError::TooBig {
                len: msg.len(),
                max,
            });
        }
        self.push_with(|p| {
            p[..msg.len()].copy_from_slice(msg);
            Ok::<_, std::convert::Infallible>(msg.len())
        })?
        .map_err(|e| match e {})
    }

    /// Slots free now.
    pub fn free(&mut self) -> Result<u64, RingError> {
        let slots = u64::from(self.raw.layout.slots);
        if self.head - self.tail_seen < slots {
            return Ok(slots - (self.head - self.tail_seen));
        }
        self.tail_seen = self.raw.tail().load(Ordering::Acquire);
        Ok(slots - self.raw.waiting(self.head, self.tail_seen)?)
    }

    /// Messages the consumer has not taken yet.
    pub fn pending(&mut self) -> Result<u64, RingError> {
        self.tail_seen = self.raw.tail().load(Ordering::Acquire);
        self.raw.waiting(self.head, self.tail_seen)
    }
}

/// The reading end.
pub struct Consumer {
    raw: Raw,
    tail: u64,
    head_seen: u64,
}

impl Consumer {
    /// The reading end of the ring at `base`, carrying on from the indexes it holds.
    ///
    /// # Safety
    /// As for [`Producer::new`], for the one consumer.
    pub unsafe fn new(base: *mut u8, layout: RingLayout) -> Result<Consumer, RingError> {
        let raw = Raw { base, layout };
        let head = raw.head().load(Ordering::Acquire);
        let tail = raw.tail().load(Ordering::Acquire);
        raw.waiting(head, tail)?;
        Ok(Consumer {
            raw,
            tail,
            head_seen: head,
        })
    }

    /// Takes the next message, if any: `read` gets its bytes (in the shared slot, which is
    /// zeroed as soon as `read` returns). `Ok(None)`: the ring is empty.
    pub fn pop_with<T>(
        &mut self,
        read: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<Result<T, BadSlot>>, RingError> {
        if self.tail == self.head_seen {
            self.head_seen = self.raw.head().load(Ordering::Acquire);
            if self.raw.waiting(self.head_seen, self.tail)? == 0 {
                return Ok(None);
            }
        }
        let slot = self.raw.slot(self.tail);
        let size = self.raw.layout.slot_size as usize;
        // SAFETY: the producer published this slot (head > tail) and will not touch it until
        // tail moves past it.
        let bytes = unsafe { std::slice::from_raw_parts_mut(slot, size) };
        let len = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let out = match bytes.get(LEN_BYTES..LEN_BYTES + len as usize) {
            Some(msg) => Ok(read(msg)),
            None => Err(BadSlot {
                index: self.tail,
                len,
            }),
        };
        // Wiped before the slot goes back to the producer: nothing of a key stays behind.
        zeroize::Zeroize::zeroize(bytes);
        fence(Ordering::Release);
        self.tail += 1;
        self.raw.tail().store(self.tail, Ordering::Release);
        Ok(Some(out))
    }

    /// Messages waiting now.
    pub fn pending(&mut self) -> Result<u64, RingError> {
        self.head_seen = self.raw.head().load(Ordering::Acquire);
        self.raw.waiting(self.head_seen, self.tail)
    }
}

#[cfg(test)]
mod tests;
