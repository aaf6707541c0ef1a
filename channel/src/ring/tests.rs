use super::*;
use proptest::prelude::*;

/// Ring memory on the heap, 64-byte aligned as a segment's is.
struct Mem {
    ptr: *mut u8,
    layout: std::alloc::Layout,
}

// SAFETY: plain memory, shared between the test's threads as two processes would share it.
unsafe impl Send for Mem {}
unsafe impl Sync for Mem {}

impl Mem {
    fn new(ring: RingLayout) -> Mem {
        let layout = std::alloc::Layout::from_size_align(ring.bytes(), 64).unwrap();
        // SAFETY: a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!ptr.is_null());
        Mem { ptr, layout }
    }
    fn bytes(&self) -> &[u8] {
        // SAFETY: the allocation; tests only look while no end writes.
        unsafe { std::slice::from_raw_parts(self.ptr, self.layout.size()) }
    }
    /// Writes behind the ends' backs, as a buggy peer would.
    fn poke(&self, at: usize, data: &[u8]) {
        assert!(at + data.len() <= self.layout.size());
        // SAFETY: inside the allocation; no end is writing in these tests when this runs.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.add(at), data.len()) }
    }
}

impl Drop for Mem {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) }
    }
}

const SMALL: RingLayout = RingLayout {
    slots: 4,
    slot_size: 64,
};

fn ends(m: &Mem, l: RingLayout) -> (Producer, Consumer) {
    // SAFETY: the memory is valid, aligned and outlives both ends in every test.
    unsafe {
        (
            Producer::new(m.ptr, l).unwrap(),
            Consumer::new(m.ptr, l).unwrap(),
        )
    }
}

fn pop(c: &mut Consumer) -> Option<Vec<u8>> {
    c.pop_with(|b| b.to_vec()).unwrap().map(|r| r.unwrap())
}

#[test]
fn messages_wrap_around_the_slots_in_order() {
    let m = Mem::new(SMALL);
    let (mut p, mut c) = ends(&m, SMALL);
    for i in 0..100u8 {
        let msg: Vec<u8> = (0..i % 60).map(|b| b ^ i).collect();
        p.push(&msg).unwrap();
        if i % 3 == 0 {
            p.push(&[i]).unwrap();
        }
        assert_eq!(pop(&mut c), Some(msg));
        if i % 3 == 0 {
            assert_eq!(pop(&mut c), Some(vec![i]));
        }
    }
    assert_eq!(pop(&mut c), None);
    assert_eq!(p.pending().unwrap(), 0);
}

#[test]
fn a_full_ring_refuses_until_a_slot_is_taken() {
    let m = Mem::new(SMALL);
    let (mut p, mut c) = ends(&m, SMALL);
    for i in 0..4u8 {
        p.push(&[i]).unwrap();
    }
    assert_eq!(p.push(&[9]), Err(RingError::Full));
    assert_eq!(p.free().unwrap(), 0);
    assert_eq!(pop(&mut c), Some(vec![0]));
    p.push(&[4]).unwrap();
    for i in 1..5u8 {
        assert_eq!(pop(&mut c), Some(vec![i]));
    }
    assert_eq!(
        p.push(&[0; 61]),
        Err(RingError::TooBig { len: 61, max: 60 })
    );
    p.push(&[7; 60]).unwrap();
    assert_eq!(pop(&mut c), Some(vec![7; 60]));
}

#[test]
fn a_taken_slot_is_zeroed() {
    let m = Mem::new(SMALL);
    let (mut p, mut c) = ends(&m, SMALL);
    p.push(&[0xa5; 40]).unwrap();
    assert!(m.bytes()[128..].contains(&0xa5));
    assert_eq!(pop(&mut c), Some(vec![0xa5; 40]));
    assert!(m.bytes()[128..].iter().all(|&b| b == 0));
    // A fill that fails leaves nothing sent and nothing behind.
    let r = p.push_with(|b| {
        b[..8].fill(0x5a);
        Err("no")
    });
    assert_eq!(r, Ok(Err("no")));
    assert!(m.bytes()[128..].iter().all(|&b| b == 0));
    assert_eq!(pop(&mut c), None);
}

#[test]
fn garbage_in_a_slot_or_the_indexes_is_refused() {
    let m = Mem::new(SMALL);
    let (mut p, mut c) = ends(&m, SMALL);
    p.push(&[1, 2, 3]).unwrap();
    p.push(&[4]).unwrap();
    // The first slot's length word claims more than a slot holds.
    m.poke(128, &1000u32.to_le_bytes());
    let r = c.pop_with(|b| b.to_vec()).unwrap();
    assert_eq!(
        r,
        Some(Err(BadSlot {
            index: 0,
            len: 1000
        }))
    );
    assert_eq!(pop(&mut c), Some(vec![4]), "the next message still arrives");
    // A head far beyond the tail: more waiting than the ring holds.
    m.poke(0, &100u64.to_le_bytes());
    assert_eq!(
        c.pop_with(|b| b.len()).unwrap_err(),
        RingError::Corrupt { head: 100, tail: 2 }
    );
    // SAFETY: as in `ends`.
    let again = unsafe { Consumer::new(m.ptr, SMALL) };
    assert!(matches!(again, Err(RingError::Corrupt { .. })));
}

#[test]
fn a_new_producer_carries_on_where_the_old_one_stopped() {
    let m = Mem::new(SMALL);
    {
        // SAFETY: as in `ends`; this producer is gone at the end of the block.
        let mut p = unsafe { Producer::new(m.ptr, SMALL) }.unwrap();
        p.push(&[1]).unwrap();
        p.push(&[2]).unwrap();
    }
    // SAFETY: the same; the first producer is gone.
    let mut p = unsafe { Producer::new(m.ptr, SMALL) }.unwrap();
    p.push(&[3]).unwrap();
    {
        // SAFETY: as for the producers.
        let mut c = unsafe { Consumer::new(m.ptr, SMALL) }.unwrap();
        assert_eq!(pop(&mut c), Some(vec![1]));
    }
    // SAFETY: the same; the first consumer is gone.
    let mut c = unsafe { Consumer::new(m.ptr, SMALL) }.unwrap();
    assert_eq!(pop(&mut c), Some(vec![2]));
    assert_eq!(pop(&mut c), Some(vec![3]));
    assert_eq!(pop(&mut c), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// A producer and a consumer thread: every message arrives once, whole, in order.
    #[test]
    fn two_threads_lose_nothing_and_duplicate_nothing(
        lens in proptest::collection::vec(0usize..=124, 1..3000),
        slots in prop::sample::select(vec![1u32, 2, 8, 64]),
    ) {
        let layout = RingLayout { slots, slot_size: 128 };
        let m = Mem::new(layout);
        let (mut p, mut c) = ends(&m, layout);
        let msgs: Vec<Vec<u8>> = lens
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|j| (i * 7 + j) as u8).collect())
            .collect();
        let sent = msgs.clone();
        let producer = std::thread::spawn(move || {
            for msg in &sent {
                loop {
                    match p.push(msg) {
                        Ok(()) => break,
                        Err(RingError::Full) => std::thread::yield_now(),
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        });
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while got.len() < msgs.len() && std::time::Instant::now() < deadline {
            match pop(&mut c) {
                Some(m) => got.push(m),
                None => std::thread::yield_now(),
            }
        }
        producer.join().unwrap();
        prop_assert_eq!(pop(&mut c), None);
        prop_assert_eq!(got, msgs);
    }
}
