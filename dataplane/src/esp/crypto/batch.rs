//! A batch of AEAD operations in place, written once in the form a crypto PMD reads (the
//! arrays behind an `rte_crypto_sym_vec`), so that handing it to CPU crypto or to a queue pair
//! costs no further copy or check per operation (as librte_ipsec's prepare step fills crypto
//! operations directly). The software backends read the same arrays through `get_mut`.

use crate::burst::MAX_BURST;
use std::marker::PhantomData;
use std::mem::MaybeUninit;

/// The nonce every ESP AES-GCM operation takes (RFC 4106: 4-byte salt || 8-byte explicit IV).
pub const NONCE_LEN: usize = 12;
/// The most AAD an operation carries (RFC 4106 section 5: SPI || sequence number, the
/// sequence number 64 bits long with ESN).
pub const MAX_AAD_LEN: usize = 12;
/// The tag that follows each operation's text (ESP's 16-byte ICV).
pub const TAG_LEN: usize = crate::wire::esp::ICV_LEN;
/// `status` of an operation nothing has run yet.
const NOT_RUN: i32 = -1;

/// One operation's text: its base and length, laid out as DPDK's `rte_crypto_vec` (the
/// cryptodev backend checks the layout at compile time and hands these to the PMD as they are).
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct Segment {
    pub base: *mut u8,
    /// The IO address; 0: the PMD works on the virtual address (software PMDs).
    pub iova: u64,
    pub len: u32,
    pub tot_len: u32,
}

/// 16 bytes, aligned so that filling or reading them is one vector move. Room for a nonce or
/// for the longest AAD: a PMD reads its session's lengths from these, never further.
#[derive(Clone, Copy)]
#[repr(C, align(16))]
pub struct Block(pub [u8; 16]);

/// Up to [`MAX_BURST`] AEAD operations, each over a buffer borrowed for `'a` that holds the
/// text followed by the tag (written when sealing, verified when opening). Built on the stack
/// per batch: nothing in it is initialised but what `push` writes.
pub struct AeadOps<'a> {
    n: usize,
    pub(crate) text: [MaybeUninit<Segment>; MAX_BURST],
    pub(crate) nonce: [MaybeUninit<Block>; MAX_BURST],
    pub(crate) aad: [MaybeUninit<Block>; MAX_BURST],
    pub(crate) aad_len: [u8; MAX_BURST],
    /// 0 once sealed, or opened with a tag that verified (the PMDs' convention).
    pub(crate) status: [i32; MAX_BURST],
    /// Each operation's buffer stays borrowed as long as the batch.
    _bufs: PhantomData<&'a mut [u8]>,
}

impl Default for AeadOps<'_> {
    fn default() -> Self {
        Self::new()
    }
}

/// What a backend reads of operation `i`: its text segment, and where its nonce and AAD are.
pub struct RawOp<'b> {
    pub text: &'b Segment,
    pub nonce: *const u8,
    pub aad: *const u8,
    pub aad_len: u8,
}

impl<'a> AeadOps<'a> {
    #[inline(always)]
    pub fn new() -> Self {
        AeadOps {
            n: 0,
            text: [const { MaybeUninit::uninit() }; MAX_BURST],
            nonce: [const { MaybeUninit::uninit() }; MAX_BURST],
            aad: [const { MaybeUninit::uninit() }; MAX_BURST],
            aad_len: [0; MAX_BURST],
            status: [NOT_RUN; MAX_BURST],
            _bufs: PhantomData,
        }
    }

    #[inline(always)]
    pub fn len(&self) -> usize {
        self.n
    }

    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Adds an operation over `buf` (text || tag) with this nonce and the first `aad_len`
    /// bytes of `aad`; returns its index, or `None` (nothing added) when the batch is full,
    /// `buf` is shorter than a tag, or `aad_len` is over [`MAX_AAD_LEN`].
    #[inline(always)]
    pub fn push(
        &mut self,
        buf: &'a mut [u8],
        nonce: &[u8; NONCE_LEN],
        aad: &[u8; MAX_AAD_LEN],
        aad_len: usize,
    ) -> Option<usize> {
        let i = self.n;
        let text = buf.len().checked_sub(TAG_LEN)?;
        if i >= MAX_BURST || aad_len > MAX_AAD_LEN || text > u32::MAX as usize {
            return None;
        }
        self.text[i].write(Segment {
            base: buf.as_mut_ptr(),
            iova: 0,
            len: text as u32,
            tot_len: text as u32,
        });
        let mut b = [0u8; 16];
        b[..NONCE_LEN].copy_from_slice(nonce);
        self.nonce[i].write(Block(b));
        let mut b = [0u8; 16];
        b[..MAX_AAD_LEN].copy_from_slice(aad);
        self.aad[i].write(Block(b));
        self.aad_len[i] = aad_len as u8;
        self.status[i] = NOT_RUN;
        self.n = i + 1;
        Some(i)
    }

    /// Whether operation `i` was sealed, or opened with a tag that verified.
    #[inline(always)]
    pub fn ok(&self, i: usize) -> bool {
        self.status.get(i) == Some(&0)
    }

    /// Records the outcome of operation `i`.
    #[inline(always)]
    pub fn set_ok(&mut self, i: usize, ok: bool) {
        if i < self.n {
            self.status[i] = if ok { 0 } else { libc::EBADMSG };
        }
    }

    /// Operation `i` as (nonce, AAD, text || tag), for a backend that does the work itself.
    #[inline(always)]
    pub fn get_mut(&mut self, i: usize) -> Option<(&[u8; NONCE_LEN], &[u8], &mut [u8])> {
        if i >= self.n {
            return None;
        }
        // SAFETY: entries below n were written by `push`.
        let (t, nonce, aad) = unsafe {
            (
                self.text[i].assume_init_ref(),
                self.nonce[i].assume_init_ref(),
                self.aad[i].assume_init_ref(),
            )
        };
        // SAFETY: `push` took this buffer as a &'a mut [u8] of len + TAG_LEN bytes, which the
        // batch keeps borrowed; buffers of distinct pushes cannot overlap, and the returned
        // slice borrows `self` mutably, so no other view of it exists meanwhile.
        let buf = unsafe { std::slice::from_raw_parts_mut(t.base, t.len as usize + TAG_LEN) };
        let nonce = nonce.0.first_chunk::<NONCE_LEN>()?;
        Some((nonce, &aad.0[..usize::from(self.aad_len[i])], buf))
    }

    /// Operation `i` (below `len`) as a PMD reads it. The pointers stay valid as long as the
    /// batch is neither moved nor changed.
    #[inline(always)]
    pub fn raw(&self, i: usize) -> Option<RawOp<'_>> {
        if i >= self.n {
            return None;
        }
        // SAFETY: entries below n were written by `push`.
        unsafe {
            Some(RawOp {
                text: self.text[i].assume_init_ref(),
                nonce: self.nonce[i].as_ptr().cast(),
                aad: self.aad[i].as_ptr().cast(),
                aad_len: self.aad_len[i],
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_refuses_what_it_cannot_hold() {
        let nonce = [0; NONCE_LEN];
        let aad = [0; MAX_AAD_LEN];
        let mut short = [0u8; TAG_LEN - 1];
        let mut ops = AeadOps::new();
        assert_eq!(
            ops.push(&mut short, &nonce, &aad, 8),
            None,
            "shorter than a tag"
        );
        let mut b = [0u8; TAG_LEN];
        assert_eq!(ops.push(&mut b, &nonce, &aad, 13), None, "AAD too long");
        let mut bufs = vec![[0u8; 20]; MAX_BURST + 1];
        let mut ops = AeadOps::new();
        for (i, b) in bufs.iter_mut().enumerate() {
            let got = ops.push(b, &nonce, &aad, 8);
            assert_eq!(got, (i < MAX_BURST).then_some(i));
        }
        assert!(!ops.ok(0), "nothing has run");
        ops.set_ok(3, true);
        assert!(ops.ok(3) && !ops.ok(MAX_BURST));
        assert_eq!(ops.raw(MAX_BURST).map(|r| r.aad_len), None);
        assert_eq!(
            ops.get_mut(0).map(|(_, a, d)| (a.len(), d.len())),
            Some((8, 20))
        );
    }
}
