//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).

/// Ones'-complement sum of `data` folded to 16 bits, not yet inverted.
pub fn sum(data: &[u8]) -> u16 {
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        acc += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
    }
    let rest = chunks.remainder();
    let mut i = 0;
    while i + 1 < rest.len() {
        acc += u64::from(u16::from_be_bytes([rest[i], rest[i + 1]]));
        i += 2;
    }
    if i < rest.len() {
        acc += u64::from(rest[i]) << 8;
    }
    fold64(acc)
}

/// `sum` of a 20-byte IPv4 header without options, unrolled: it runs for every packet. The
/// words are added in the machine's byte order and the result swapped once: the ones'
/// complement sum commutes with byte swapping (RFC 1071 section 2.B).
#[inline(always)]
pub fn sum20(h: &[u8; 20]) -> u16 {
    let w = |i: usize| u64::from(u32::from_ne_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]));
    u16::from_be(fold64(w(0) + w(4) + w(8) + w(12) + w(16)))
}

/// A 32-bit ones'-complement accumulator folded to 16 bits, not yet inverted.
#[inline(always)]
pub fn fold32(acc: u32) -> u16 {
    fold64(u64::from(acc))
}

/// Ones'-complement sum of 16-bit words given as values, folded, not yet inverted.
#[inline(always)]
pub fn fold_words(words: &[u16]) -> u16 {
    fold64(words.iter().map(|&w| u64::from(w)).sum())
}

/// A ones'-complement sum held in 64 bits, folded to 16.
#[inline(always)]
pub fn fold64(acc: u64) -> u16 {
    // Four fixed rounds bring any u64 to 16 bits: no loop, no branch.
    let a = (acc >> 32) + (acc & 0xffff_ffff);
    let a = (a >> 16) + (a & 0xffff);
    let a = (a >> 16) + (a & 0xffff);
    ((a >> 16) + (a & 0xffff)) as u16
}

/// The checksum field value for `data` (with its checksum field zeroed).
pub fn checksum(data: &[u8]) -> u16 {
    !sum(data)
}

/// New checksum after one 16-bit word of the covered data changed from `old` to `new`
/// (RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m')).
pub fn update(hc: u16, old: u16, new: u16) -> u16 {
    let acc = u64::from(!hc) + u64::from(!old) + u64::from(new);
    !fold64(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3 example bytes: sum is 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn the_header_fast_path_agrees() {
        let mut h = [0u8; 20];
        for seed in 0..200u32 {
            for (i, b) in h.iter_mut().enumerate() {
                *b = (seed.wrapping_mul(2654435761).rotate_left(i as u32) >> 7) as u8;
            }
            assert_eq!(sum20(&h), sum(&h), "{h:?}");
        }
        assert_eq!(sum20(&[0xff; 20]), sum(&[0xff; 20]));
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(sum(&[0xab]), 0xab00);
        assert_eq!(sum(&[0x12, 0x34, 0xab]), 0x12 * 256 + 0x34 + 0xab00);
    }

    #[test]
    fn incremental_matches_full_recompute() {
        let mut hdr = [
            0x45u8, 0, 0, 0x54, 0x12, 0x34, 0x40, 0, 64, 1, 0, 0, 10, 1, 0, 10, 10, 2, 0, 10,
        ];
        let c = checksum(&hdr);
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
        let old = u16::from_be_bytes([hdr[8], hdr[9]]);
        hdr[8] = 63;
        let new = u16::from_be_bytes([hdr[8], hdr[9]]);
        let inc = update(c, old, new);
        hdr[10..12].copy_from_slice(&[0, 0]);
        assert_eq!(inc, checksum(&hdr));
    }
}
