//! A batch of AEAD operations in place, written once in the form a crypto PMD reads (the
//! arrays behind an `rte_crypto_sym_vec`), so that handing it to CPU crypto or to a queue pair
//! costs no further copy or check per operation (as librte_ipsec's prepare step fills crypto
//! operations directly).

use std::marker::PhantomData;
use std::mem::MaybeUninit;

use crate::sys;

/// Most operations one batch holds: a burst's worth.
pub const MAX_OPS: usize = 32;
/// The nonce every session takes (RFC 4106: 4-byte salt || 8-byte explicit IV).
pub const NONCE_LEN: usize = 12;
/// Most AAD an operation carries (ESP with ESN: SPI || seq high || seq low).
pub const MAX_AAD_LEN: usize = 12;
/// The tag that follows each operation's text (ESP's 16-byte ICV).
pub const TAG_LEN: usize = 16;
/// `status` of an operation nothing has run yet.
const NOT_RUN: i32 = -1;

/// 16 bytes, aligned so that filling or reading them is one vector move. Room for a nonce or
/// for the longest AAD: a PMD reads its session's lengths from these, never further.
#[derive(Clone, Copy)]
#[repr(C, align(16))]
pub(crate) struct Block([u8; 16]);

/// Up to [`MAX_OPS`] AEAD operations, each over a buffer borrowed for `'a` that holds the text
/// followed by the tag (written when sealing, verified when opening). Built on the stack per
/// batch: nothing in it is initialised but what `push` writes.
pub struct AeadOps<'a> {
    n: usize,
    /// The text of each operation (base and length), as the PMD's SGL entry.
    pub(crate) text: [MaybeUninit<sys::rte_crypto_vec>; MAX_OPS],
    pub(crate) nonce: [MaybeUninit<Block>; MAX_OPS],
    pub(crate) aad: [MaybeUninit<Block>; MAX_OPS],
    pub(crate) aad_len: [u8; MAX_OPS],
    /// 0 once sealed, or opened with a tag that verified (the PMD's convention).
    pub(crate) status: [i32; MAX_OPS],
    /// Each operation's buffer stays borrowed as long as the batch.
    _bufs: PhantomData<&'a mut [u8]>,
}

impl Default for AeadOps<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> AeadOps<'a> {
    #[inline(always)]
    pub fn new() -> Self {
        AeadOps {
            n: 0,
            text: [const { MaybeUninit::uninit() }; MAX_OPS],
            nonce: [const { MaybeUninit::uninit() }; MAX_OPS],
            aad: [const { MaybeUninit::uninit() }; MAX_OPS],
            aad_len: [0; MAX_OPS],
            status: [NOT_RUN; MAX_OPS],
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

    #[inline(always)]
    pub fn is_full(&self) -> bool {
        self.n == MAX_OPS
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
        if i >= MAX_OPS || aad_len > MAX_AAD_LEN || text > u32::MAX as usize {
            return None;
        }
        self.text[i].write(sys::rte_crypto_vec {
            base: buf.as_mut_ptr().cast(),
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

    /// Records the outcome of operation `i` (for a backend that does the work itself).
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
        let buf = unsafe {
            std::slice::from_raw_parts_mut(t.base.cast::<u8>(), t.len as usize + TAG_LEN)
        };
        let nonce = nonce.0.first_chunk::<NONCE_LEN>()?;
        Some((nonce, &aad.0[..usize::from(self.aad_len[i])], buf))
    }

    /// The text length, nonce and AAD pointers of operation `i` (below `len`), as a PMD reads
    /// them.
    #[inline(always)]
    pub(crate) fn raw(&self, i: usize) -> (&sys::rte_crypto_vec, *const u8, *const u8) {
        debug_assert!(i < self.n);
        // SAFETY: the callers pass i < n, and entries below n were written by `push`.
        unsafe {
            (
                self.text[i].assume_init_ref(),
                self.nonce[i].as_ptr().cast(),
                self.aad[i].as_ptr().cast(),
            )
        }
    }
}
