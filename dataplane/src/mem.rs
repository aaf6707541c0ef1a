//! Where the large per-SA and per-route tables live. With thousands of tunnels every packet
//! reaches its SA, its counters and its table entries on lines no other packet of the burst
//! shares; on 4 KB pages those translations miss the TLB too. So the dataplane allocates its
//! tables once, at their full size, from DPDK's huge-page memory on the worker's NUMA socket
//! (`hugepages`, as ipsec-secgw and VPP do), and tests from the heap: a table never grows, so
//! a worker never copies one between bursts.
//!
//! Three shapes:
//! - [`Table`]: a fixed array one owner reads and writes (a worker's SPI table, tunnel table,
//!   route trie).
//! - [`Pool`]: fixed slots for SAs. The main lcore builds an SA in a free slot and hands the
//!   worker an [`Owned`] handle to it; the worker gives the handle back when the SA is retired,
//!   and the main lcore drops the SA (freeing its crypto session) and the slot.
//! - [`Slots`]: fixed slots the main lcore hands out and takes back, read by anyone (per-SA
//!   counters).

use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ptr::NonNull;

/// Where a table's memory comes from. A small enum rather than a trait object: a replay
/// window's bitmap handle stays 16 bytes in its SA's cache lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Memory {
    /// The process heap (tests, benches, and builds without DPDK).
    #[default]
    Heap,
    /// DPDK's heap (`rte_malloc`): huge pages, on a chosen NUMA socket.
    #[cfg(feature = "dpdk")]
    Hugepages,
}

impl Memory {
    /// `bytes` zeroed bytes aligned to `align` (a power of two), on NUMA `socket` where the
    /// memory knows sockets (-1: any). `None` when there is not that much.
    pub fn alloc_zeroed(self, bytes: usize, align: usize, socket: i32) -> Option<NonNull<u8>> {
        match self {
            Memory::Heap => {
                let _ = socket;
                let layout = std::alloc::Layout::from_size_align(bytes.max(1), align).ok()?;
                // SAFETY: the layout has a non-zero size.
                NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })
            }
            #[cfg(feature = "dpdk")]
            Memory::Hugepages => dpdk_sys::malloc::zmalloc_socket(bytes, align, socket),
        }
    }

    /// Returns a block.
    ///
    /// # Safety
    /// `p` came from `alloc_zeroed` of this memory with the same `bytes` and `align`, and is
    /// not used afterwards.
    pub unsafe fn free(self, p: NonNull<u8>, bytes: usize, align: usize) {
        match self {
            Memory::Heap => {
                if let Ok(layout) = std::alloc::Layout::from_size_align(bytes.max(1), align) {
                    // SAFETY: the caller passes what alloc_zeroed returned for this layout.
                    unsafe { std::alloc::dealloc(p.as_ptr(), layout) };
                }
            }
            #[cfg(feature = "dpdk")]
            Memory::Hugepages => {
                let _ = (bytes, align);
                // SAFETY: from the caller's contract.
                unsafe { dpdk_sys::malloc::free(p) }
            }
        }
    }

    /// What kind of memory this is, for the start-up report.
    pub fn kind(self) -> &'static str {
        match self {
            Memory::Heap => "heap",
            #[cfg(feature = "dpdk")]
            Memory::Hugepages => "DPDK huge-page",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot allocate {bytes} bytes of {kind} memory for {what}")]
pub struct OutOfMemory {
    pub what: &'static str,
    pub bytes: usize,
    pub kind: &'static str,
}

/// A block of `len` slots of `T`, freed with the memory it came from. 16 bytes.
struct Region<T> {
    ptr: NonNull<T>,
    len: u32,
    memory: Memory,
}

// SAFETY: a region is plain memory; what may be shared or sent is decided by its users.
unsafe impl<T: Send> Send for Region<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for Region<T> {}

impl<T> Region<T> {
    fn new(
        memory: Memory,
        socket: i32,
        len: usize,
        what: &'static str,
    ) -> Result<Region<T>, OutOfMemory> {
        let oom = |bytes| OutOfMemory {
            what,
            bytes,
            kind: memory.kind(),
        };
        let bytes = std::mem::size_of::<T>()
            .checked_mul(len)
            .ok_or(oom(usize::MAX))?;
        let len = u32::try_from(len).map_err(|_| oom(bytes))?;
        let align = std::mem::align_of::<T>().max(64);
        let ptr = memory
            .alloc_zeroed(bytes, align, socket)
            .ok_or(oom(bytes))?;
        Ok(Region {
            ptr: ptr.cast(),
            len,
            memory,
        })
    }

    fn len(&self) -> usize {
        self.len as usize
    }

    fn bytes(&self) -> usize {
        std::mem::size_of::<T>() * self.len()
    }

    fn contains(&self, p: *const T) -> Option<usize> {
        let base = self.ptr.as_ptr() as usize;
        let off = (p as usize).checked_sub(base)?;
        let size = std::mem::size_of::<T>().max(1);
        (off % size == 0 && off / size < self.len()).then_some(off / size)
    }
}

impl<T> Drop for Region<T> {
    fn drop(&mut self) {
        let align = std::mem::align_of::<T>().max(64);
        // SAFETY: allocated by this memory with this size and alignment; the owner has
        // dropped or never written the contents.
        unsafe { self.memory.free(self.ptr.cast(), self.bytes(), align) };
    }
}

/// A fixed-length array of `T` in chosen memory, owned by one user.
pub struct Table<T> {
    region: Region<T>,
    _own: PhantomData<T>,
}

impl<T> Table<T> {
    /// `len` elements, each `init(i)`.
    pub fn new(
        memory: Memory,
        socket: i32,
        len: usize,
        what: &'static str,
        mut init: impl FnMut(usize) -> T,
    ) -> Result<Table<T>, OutOfMemory> {
        let region = Region::<T>::new(memory, socket, len, what)?;
        for i in 0..region.len() {
            // SAFETY: i < len, inside the fresh region; each slot is written once.
            unsafe { region.ptr.as_ptr().add(i).write(init(i)) };
        }
        Ok(Table {
            region,
            _own: PhantomData,
        })
    }
}

impl<T> std::ops::Deref for Table<T> {
    type Target = [T];
    #[inline(always)]
    fn deref(&self) -> &[T] {
        // SAFETY: every element was initialised in `new` and the table owns them.
        unsafe { std::slice::from_raw_parts(self.region.ptr.as_ptr(), self.region.len()) }
    }
}

impl<T> std::ops::DerefMut for Table<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and &mut self makes this the only view.
        unsafe { std::slice::from_raw_parts_mut(self.region.ptr.as_ptr(), self.region.len()) }
    }
}

impl<T> Drop for Table<T> {
    fn drop(&mut self) {
        // SAFETY: every element is initialised and dropped once, here.
        unsafe {
            std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(
                self.region.ptr.as_ptr(),
                self.region.len(),
            ))
        };
    }
}

// SAFETY: a table owns its elements as a Vec does.
unsafe impl<T: Send> Send for Table<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for Table<T> {}

/// Fixed slots handed out one value at a time. Only its owner (the main lcore) allocates and
/// frees; whoever holds an [`Owned`] handle has the value to itself meanwhile.
pub struct Pool<T> {
    region: Option<Region<MaybeUninit<T>>>,
    free: Vec<u32>,
    live: usize,
}

/// A value in a [`Pool`] slot, owned by whoever holds this handle, as a `Box` owns its value:
/// the slot's memory stays valid at least as long as the handle. Give it back with
/// [`Pool::free`]; a handle dropped instead drops its value and keeps its slot.
pub struct Owned<T> {
    ptr: NonNull<T>,
    _own: PhantomData<T>,
}

// SAFETY: a handle is the only way to its value, as a Box is.
unsafe impl<T: Send> Send for Owned<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for Owned<T> {}

impl<T> std::ops::Deref for Owned<T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        // SAFETY: the pool wrote the value and keeps its memory while the handle exists.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> std::ops::DerefMut for Owned<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; the handle is unique.
        unsafe { self.ptr.as_mut() }
    }
}

impl<T> Drop for Owned<T> {
    fn drop(&mut self) {
        // SAFETY: the value is initialised and this handle is its only owner.
        unsafe { std::ptr::drop_in_place(self.ptr.as_ptr()) };
    }
}

impl<T> std::fmt::Debug for Owned<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Owned({:p})", self.ptr)
    }
}

impl<T> Pool<T> {
    pub fn new(
        memory: Memory,
        socket: i32,
        capacity: u32,
        what: &'static str,
    ) -> Result<Pool<T>, OutOfMemory> {
        let region = Region::new(memory, socket, capacity as usize, what)?;
        Ok(Pool {
            region: Some(region),
            // Lowest slots first: a small gateway keeps its SAs together.
            free: (0..capacity).rev().collect(),
            live: 0,
        })
    }

    /// Moves `v` into a free slot; `None` (and `v` dropped) when every slot is taken.
    pub fn alloc(&mut self, v: T) -> Option<Owned<T>> {
        let (Some(region), Some(i)) = (&self.region, self.free.pop()) else {
            return None;
        };
        // SAFETY: i < capacity (free holds only such indexes) and the slot is free.
        let slot = unsafe { region.ptr.as_ptr().add(i as usize) };
        // SAFETY: as above; MaybeUninit<T> has T's layout.
        unsafe { slot.cast::<T>().write(v) };
        self.live += 1;
        Some(Owned {
            // SAFETY: inside a live region, so not null.
            ptr: unsafe { NonNull::new_unchecked(slot.cast::<T>()) },
            _own: PhantomData,
        })
    }

    /// Drops the value and frees its slot; `Err(h)` if the handle is not from this pool.
    pub fn free(&mut self, h: Owned<T>) -> Result<(), Owned<T>> {
        let Some(i) = self
            .region
            .as_ref()
            .and_then(|r| r.contains(h.ptr.as_ptr().cast()))
        else {
            return Err(h);
        };
        let h = std::mem::ManuallyDrop::new(h);
        // SAFETY: the handle owned the initialised value; it is dropped once, here.
        unsafe { std::ptr::drop_in_place(h.ptr.as_ptr()) };
        self.free.push(i as u32);
        self.live -= 1;
        Ok(())
    }

    /// Slots in use.
    pub fn live(&self) -> usize {
        self.live
    }

    pub fn capacity(&self) -> usize {
        self.region.as_ref().map_or(0, |r| r.len())
    }
}

impl<T> Drop for Pool<T> {
    fn drop(&mut self) {
        // Handles still out (a worker that never gave its SAs back) keep pointing into the
        // region: leave it allocated rather than free memory they may still use.
        if self.live > 0 {
            std::mem::forget(self.region.take());
        }
    }
}

/// Fixed slots of `T` (zeroed, then `reset` when handed out) that the owner hands out and
/// takes back by index, and that anyone may read meanwhile: for values written by one thread
/// and read by others through atomics, such as counters.
pub struct Slots<T> {
    region: std::mem::ManuallyDrop<Region<T>>,
    free: Vec<u32>,
    live: usize,
}

/// A slot of [`Slots`]: valid while the slots live, and only written by its one user. One
/// pointer, so that an SA keeps it in its hot lines.
pub struct SlotRef<T> {
    ptr: NonNull<T>,
}

// SAFETY: the slot's value is `Sync` (atomics); the reference only reads through `&T`.
unsafe impl<T: Sync> Send for SlotRef<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for SlotRef<T> {}

impl<T> Clone for SlotRef<T> {
    fn clone(&self) -> Self {
        SlotRef { ptr: self.ptr }
    }
}

impl<T> std::ops::Deref for SlotRef<T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        // SAFETY: the region is never freed while a slot is out (see `Slots::drop`), and a
        // zeroed `T` is a valid one (the `Slots` contract).
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> std::fmt::Debug for SlotRef<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SlotRef({:p})", self.ptr)
    }
}

/// Types whose all-zero bytes are a valid value, which `Slots` relies on.
///
/// # Safety
/// All-zero bytes must be a valid `Self`.
pub unsafe trait Zeroable: Sync {}

impl<T: Zeroable> Slots<T> {
    pub fn new(
        memory: Memory,
        socket: i32,
        capacity: u32,
        what: &'static str,
    ) -> Result<Slots<T>, OutOfMemory> {
        Ok(Slots {
            region: std::mem::ManuallyDrop::new(Region::new(
                memory,
                socket,
                capacity as usize,
                what,
            )?),
            free: (0..capacity).rev().collect(),
            live: 0,
        })
    }

    /// A free slot, `reset` first; `None` when all are out.
    pub fn alloc(&mut self, reset: impl FnOnce(&T)) -> Option<SlotRef<T>> {
        let i = self.free.pop()?;
        // SAFETY: i < capacity; the zeroed memory is a valid T (Zeroable).
        let ptr = unsafe { NonNull::new_unchecked(self.region.ptr.as_ptr().add(i as usize)) };
        self.live += 1;
        let r = SlotRef { ptr };
        reset(&r);
        Some(r)
    }

    /// Takes a slot back; false (nothing done) if it is not from these slots.
    pub fn free(&mut self, r: SlotRef<T>) -> bool {
        match self.region.contains(r.ptr.as_ptr()) {
            Some(i) => {
                self.free.push(i as u32);
                self.live -= 1;
                true
            }
            None => false,
        }
    }

    pub fn live(&self) -> usize {
        self.live
    }
}

impl<T> Drop for Slots<T> {
    fn drop(&mut self) {
        // With references still out, keep the memory they point at.
        if self.live == 0 {
            // SAFETY: dropped once, here; nothing points into it.
            unsafe { std::mem::ManuallyDrop::drop(&mut self.region) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    fn heap() -> Memory {
        Memory::Heap
    }

    #[test]
    fn a_table_holds_what_it_was_built_with() {
        let mut t = Table::new(heap(), -1, 1000, "test", |i| i as u32 * 3).unwrap();
        assert_eq!((t.len(), t[999]), (1000, 2997));
        t[5] = 7;
        assert_eq!(t.iter().filter(|&&v| v == 7).count(), 1);
        assert_eq!(t.as_ptr() as usize % 64, 0, "cache-line aligned");
    }

    #[test]
    fn a_pool_hands_out_each_slot_once_and_takes_it_back() {
        let dropped = Arc::new(AtomicU64::new(0));
        struct Counted(Arc<AtomicU64>, u32);
        impl Drop for Counted {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        let mut p: Pool<Counted> = Pool::new(heap(), -1, 2, "test").unwrap();
        let a = p.alloc(Counted(dropped.clone(), 1)).unwrap();
        let mut b = p.alloc(Counted(dropped.clone(), 2)).unwrap();
        assert!(p.alloc(Counted(dropped.clone(), 3)).is_none(), "full");
        assert_eq!(dropped.load(Ordering::Relaxed), 1, "the refused value");
        b.1 = 20;
        assert_eq!((a.1, b.1, p.live()), (1, 20, 2));
        assert!(p.free(a).is_ok());
        assert_eq!((dropped.load(Ordering::Relaxed), p.live()), (2, 1));
        let c = p.alloc(Counted(dropped.clone(), 4)).unwrap();
        assert_eq!(c.1, 4);
        // A handle of another pool is refused and given back whole.
        let mut other: Pool<Counted> = Pool::new(heap(), -1, 1, "test").unwrap();
        let d = other.alloc(Counted(dropped.clone(), 5)).unwrap();
        let d = p.free(d).unwrap_err();
        assert_eq!(d.1, 5);
        assert!(other.free(d).is_ok());
        drop(p);
        // The pool is gone with two handles out: they still reach their values.
        assert_eq!((b.1, c.1), (20, 4));
        drop((b, c));
        assert_eq!(dropped.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn slots_are_reset_when_handed_out() {
        #[derive(Default)]
        struct C(AtomicU64);
        // SAFETY: an AtomicU64 of zero bytes is 0.
        unsafe impl Zeroable for C {}
        let mut s: Slots<C> = Slots::new(heap(), -1, 4, "test").unwrap();
        let a = s.alloc(|_| {}).unwrap();
        a.0.store(9, Ordering::Relaxed);
        let seen = a.clone();
        assert!(s.free(a));
        assert_eq!(s.live(), 0);
        let b = s.alloc(|c| c.0.store(0, Ordering::Relaxed)).unwrap();
        assert_eq!(
            &*b as *const C, &*seen as *const C,
            "the freed slot, handed out again"
        );
        assert_eq!(seen.0.load(Ordering::Relaxed), 0, "and reset");
    }
}
