//! IPv6 reassembly (RFC 8200 section 4.5): fragments with a Fragment header, put back together
//! whatever their order, the Fragment header gone and the header before it naming what it
//! named; the failures counted as for IPv4.

use super::*;
use crate::wire::ipv6::{Repr, NEXT_DEST_OPTS, NEXT_ESP, NEXT_FRAGMENT};

const SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 2);
const DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1);

/// An IPv6 datagram carrying `n` bytes of ESP, with `opts` bytes of destination options in
/// front of it (0 or a multiple of 8).
fn datagram(n: usize, opts: usize) -> Vec<u8> {
    let mut p = vec![0u8; 40];
    Repr {
        traffic_class: 0,
        next_header: if opts > 0 { NEXT_DEST_OPTS } else { NEXT_ESP },
        hop_limit: 60,
        src: SRC,
        dst: DST,
        payload_len: opts + n,
    }
    .emit(p.first_chunk_mut().unwrap());
    if opts > 0 {
        let mut o = vec![0u8; opts];
        o[0] = NEXT_ESP;
        o[1] = (opts / 8 - 1) as u8;
        p.extend(o);
    }
    p.extend((0..n).map(|i| (i * 7 + i / 251) as u8));
    p
}

/// Cuts `whole` (its first `unfrag` bytes the unfragmentable part, the byte at `nh_at` naming
/// what follows) into fragments of `size` data bytes (a multiple of 8), identification
/// `ident`, as a source does (RFC 8200 section 4.5): written here, apart from the code under
/// test.
pub(crate) fn cut(
    whole: &[u8],
    unfrag: usize,
    nh_at: usize,
    size: usize,
    ident: u32,
) -> Vec<Vec<u8>> {
    let data = &whole[unfrag..];
    let next = whole[nh_at];
    let mut out = Vec::new();
    for (k, chunk) in data.chunks(size).enumerate() {
        let off = k * size;
        let more = off + chunk.len() < data.len();
        let mut f = whole[..unfrag].to_vec();
        f[nh_at] = NEXT_FRAGMENT;
        let word = (off as u16) | u16::from(more);
        f.extend([next, 0]);
        f.extend(word.to_be_bytes());
        f.extend(ident.to_be_bytes());
        f.extend(chunk);
        let plen = (f.len() - 40) as u16;
        f[4..6].copy_from_slice(&plen.to_be_bytes());
        out.push(f);
    }
    out
}

#[test]
fn ipv6_fragments_in_any_order_come_back_whole() {
    let t = Instant::now();
    let mut r = Reassembler::default();
    for opts in [0, 8] {
        let whole = datagram(3000, opts);
        let nh_at = if opts > 0 { 40 } else { 6 };
        let mut f = cut(&whole, 40 + opts, nh_at, 1232, 7 + opts as u32);
        assert_eq!(f.len(), 3);
        f.swap(0, 2);
        // An exact copy on the way changes nothing.
        f.insert(1, f[0].clone());
        let mut got = None;
        for (i, x) in f.iter().enumerate() {
            let out = r.add(x, t);
            assert_eq!(out.is_some(), i == f.len() - 1, "fragment {i}");
            got = got.or(out);
        }
        assert_eq!(got.unwrap(), whole, "byte for byte, Fragment header gone");
    }
    assert_eq!((r.stats.reassembled, r.stats.fragments), (2, 8));
    assert_eq!((r.held(), r.pending()), (0, 0));
    // An atomic fragment (offset 0, no more) is no fragment: not taken.
    let atomic = cut(&datagram(100, 0), 40, 6, 1232, 1);
    assert_eq!(atomic.len(), 1);
    assert!(r.add(&atomic[0], t).is_none());
    assert_eq!(r.stats.malformed, 1);
}

#[test]
fn ipv6_overlapping_oversize_and_malformed_sets_are_dropped_and_counted() {
    let t = Instant::now();
    let mut r = Reassembler::default();
    // Overlap: the second fragment 8 bytes early.
    let mut f = cut(&datagram(2000, 0), 40, 6, 1000, 1);
    let word = u16::from_be_bytes([f[1][42], f[1][43]]);
    f[1][42..44].copy_from_slice(&(word - 8).to_be_bytes());
    assert!(r.add(&f[0], t).is_none());
    assert!(r.add(&f[1], t).is_none());
    assert_eq!((r.stats.overlaps, r.pending()), (1, 0));
    // Beyond 65535 bytes of payload.
    let mut huge = cut(&datagram(64, 0), 40, 6, 1000, 2).remove(0);
    huge[42..44].copy_from_slice(&(65528u16 | 1).to_be_bytes());
    assert!(r.add(&huge, t).is_none());
    assert_eq!(r.stats.oversize, 1);
    // A non-last fragment whose data is not a multiple of 8 bytes.
    let mut odd = cut(&datagram(2000, 0), 40, 6, 1000, 3).remove(0);
    odd.pop();
    let plen = (odd.len() - 40) as u16;
    odd[4..6].copy_from_slice(&plen.to_be_bytes());
    assert!(r.add(&odd, t).is_none());
    assert_eq!(r.stats.malformed, 1);
    // An IPv4 and an IPv6 datagram with the same identification do not mix.
    let six = cut(&datagram(1500, 0), 40, 6, 1000, 9);
    assert!(r.add(&six[0], t).is_none());
    let mut v4 = vec![0u8; 1020];
    crate::wire::ipv4::Repr {
        tos: 0,
        ident: 9,
        dont_frag: false,
        ttl: 9,
        protocol: 50,
        src: Ipv4Addr::new(192, 0, 2, 2),
        dst: Ipv4Addr::new(192, 0, 2, 1),
        payload_len: 1000,
    }
    .emit(v4.first_chunk_mut().unwrap());
    v4[6] = 0x20; // MF
    crate::wire::ipv4::Packet::new_checked(&mut v4[..])
        .unwrap()
        .fill_checksum();
    assert!(r.add(&v4, t).is_none());
    assert_eq!(r.pending(), 2);
    assert!(r.add(&six[1], t).is_some());
    // What never completes times out.
    assert_eq!(r.expire(t + TIMEOUT), 1);
    assert_eq!(r.stats.timeouts, 1);
}
