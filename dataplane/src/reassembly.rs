//! Reassembly (IPv4: RFC 791 section 3.2; IPv6: RFC 8200 section 4.5) of the fragmented ESP,
//! ESP in UDP and IKE that reach the gateway (a peer, or for IPv4 a router on the way,
//! fragmented the outer packets): the main lcore puts each datagram back together, bounded in
//! datagrams and time, before it is decrypted like any other. Every way a fragment set can
//! fail is dropped and counted: overlapping fragments (RFC 5722's rule, an attack more often
//! than not), a datagram that would exceed 65535 bytes, one never completed, a full table.
//! The two families differ only in how a fragment is read and the whole put back
//! (`Piece`, `Partial::finish`).

use crate::wire::ipv4::{self, FLAG_MF, FRAG_OFFSET_MASK};
use crate::wire::ipv6;
use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

/// Datagrams being put back together at most, and the bytes they may hold together (a flood
/// of first fragments cannot take more memory than this).
pub const MAX_DATAGRAMS: usize = 1024;
pub const MAX_BYTES: usize = 8 << 20;
/// How long the fragments of a datagram wait for the rest (Linux waits 30 s; a tunnel's
/// traffic is retransmitted long before).
pub const TIMEOUT: Duration = Duration::from_secs(2);
const MAX_DATAGRAM: usize = 65535;

/// What each datagram is known by (RFC 791: source, destination, protocol, identification;
/// RFC 8200: source, destination, identification).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    V4 {
        src: Ipv4Addr,
        dst: Ipv4Addr,
        protocol: u8,
        ident: u16,
    },
    V6 {
        src: Ipv6Addr,
        dst: Ipv6Addr,
        ident: u32,
    },
}

/// One fragment as reassembly sees it, of either family.
struct Piece<'a> {
    key: Key,
    /// Where its data goes, in bytes.
    off: usize,
    more: bool,
    data: &'a [u8],
    /// What the whole datagram keeps in front of the data, taken from the first fragment:
    /// the IPv4 header; IPv6's header and extension headers before the Fragment header.
    header: &'a [u8],
    /// IPv6: what the header before the Fragment header is to name once it is gone.
    next: Option<NextHeader>,
}

/// IPv6: the first header of the fragmentable part, and where in the kept header the byte
/// that named the Fragment header is (to name that header instead).
#[derive(Debug, Clone, Copy)]
struct NextHeader {
    value: u8,
    at: usize,
}

impl<'a> Piece<'a> {
    fn of(packet: &'a [u8]) -> Option<Piece<'a>> {
        match packet.first()? >> 4 {
            4 => Self::of4(packet),
            6 => Self::of6(packet),
            _ => None,
        }
    }

    fn of4(packet: &'a [u8]) -> Option<Piece<'a>> {
        let p = ipv4::Packet::new_checked(packet).ok()?;
        let (ihl, len) = (p.header_len(), p.total_len());
        Some(Piece {
            key: Key::V4 {
                src: p.src(),
                dst: p.dst(),
                protocol: p.protocol(),
                ident: p.ident(),
            },
            off: usize::from(p.flags_frag() & FRAG_OFFSET_MASK) * 8,
            more: p.flags_frag() & FLAG_MF != 0,
            data: packet.get(ihl..len)?,
            header: packet.get(..ihl)?,
            next: None,
        })
    }

    fn of6(packet: &'a [u8]) -> Option<Piece<'a>> {
        let p = ipv6::Packet::new_checked(packet).ok()?;
        let f = p.fragment_header().ok()??;
        Some(Piece {
            key: Key::V6 {
                src: p.src(),
                dst: p.dst(),
                ident: f.ident,
            },
            off: f.offset,
            more: f.more,
            data: packet.get(f.at + 8..p.total_len())?,
            header: packet.get(..f.at)?,
            next: Some(NextHeader {
                value: f.next,
                at: f.next_header_at,
            }),
        })
    }

    /// The largest datagram the family allows, with `header` in front: 65535 bytes of IPv4,
    /// or of IPv6 payload.
    fn too_big(&self, header: usize, data_end: usize) -> bool {
        match self.key {
            Key::V4 { .. } => header + data_end > MAX_DATAGRAM,
            Key::V6 { .. } => header - ipv6::HEADER_LEN + data_end > MAX_DATAGRAM,
        }
    }
}

struct Partial {
    since: Instant,
    /// The first fragment's header (`Piece::header`), once it came, and IPv6's `next`.
    header: Option<(Vec<u8>, Option<NextHeader>)>,
    /// Data by offset.
    parts: BTreeMap<usize, Vec<u8>>,
    /// The data's length, once the last fragment came.
    total: Option<usize>,
    /// Bytes held (its fragments' data).
    held: usize,
}

/// The counters an operator reads.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyStats {
    pub fragments: u64,
    pub reassembled: u64,
    pub overlaps: u64,
    pub oversize: u64,
    pub timeouts: u64,
    pub table_full: u64,
    pub malformed: u64,
}

#[derive(Default)]
pub struct Reassembler {
    pending: HashMap<Key, Partial>,
    /// Bytes held by every pending datagram.
    held: usize,
    pub stats: ReassemblyStats,
}

impl Reassembler {
    /// Takes one fragment (an IPv4 packet with MF or an offset, an IPv6 packet with a
    /// Fragment header); the whole datagram once its last missing piece came.
    pub fn add(&mut self, packet: &[u8], now: Instant) -> Option<Vec<u8>> {
        self.stats.fragments += 1;
        let Some(piece) = Piece::of(packet) else {
            self.stats.malformed += 1;
            return None;
        };
        let Piece {
            key,
            off,
            more,
            data,
            ..
        } = piece;
        // All but the last carry a multiple of 8 bytes, and the whole stays within 65535.
        if more && (data.is_empty() || data.len() % 8 != 0) {
            self.stats.malformed += 1;
            self.forget(&key);
            return None;
        }
        if piece.too_big(piece.header.len(), off + data.len()) {
            self.stats.oversize += 1;
            self.forget(&key);
            return None;
        }
        let full = |r: &Self| {
            (!r.pending.contains_key(&key) && r.pending.len() >= MAX_DATAGRAMS)
                || r.held + data.len() > MAX_BYTES
        };
        if full(self) {
            self.expire(now);
            if full(self) {
                self.stats.table_full += 1;
                return None;
            }
        }
        let d = self.pending.entry(key).or_insert_with(|| Partial {
            since: now,
            header: None,
            parts: BTreeMap::new(),
            total: None,
            held: 0,
        });
        let end = off + data.len();
        // An exact copy (a retransmission on the way) changes nothing; any other overlap
        // ends the datagram.
        if d.parts.get(&off).is_some_and(|x| x[..] == data[..]) {
            return None;
        }
        let before = d.parts.range(..=off).next_back();
        let after = d.parts.range(off..).next();
        let overlaps = before.is_some_and(|(&o, x)| o + x.len() > off)
            || after.is_some_and(|(&o, _)| o < end)
            || d.total.is_some_and(|t| end > t || (!more && end != t));
        if overlaps {
            self.stats.overlaps += 1;
            self.forget(&key);
            return None;
        }
        if !more {
            d.total = Some(end);
        }
        if off == 0 {
            d.header = Some((piece.header.to_vec(), piece.next));
        }
        d.parts.insert(off, data.to_vec());
        d.held += data.len();
        self.held += data.len();
        let total = d.total?;
        let contiguous = d
            .parts
            .iter()
            .try_fold(0usize, |at, (&o, x)| (o == at).then_some(at + x.len()));
        if contiguous != Some(total) {
            return None;
        }
        let mut d = self.forget(&key)?;
        let (header, next) = d.header.take()?;
        // The first fragment's header may be longer than the one each piece was checked with.
        if piece.too_big(header.len(), total) {
            self.stats.oversize += 1;
            return None;
        }
        let out = d.finish(header, next, total)?;
        self.stats.reassembled += 1;
        Some(out)
    }

    /// Removes a pending datagram, and what it held from the total.
    fn forget(&mut self, key: &Key) -> Option<Partial> {
        let d = self.pending.remove(key)?;
        self.held -= d.held;
        Some(d)
    }

    /// Forgets the datagrams whose time ran out; how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let before = self.pending.len();
        let mut freed = 0;
        self.pending.retain(|_, d| {
            let keep = now.saturating_duration_since(d.since) < TIMEOUT;
            if !keep {
                freed += d.held;
            }
            keep
        });
        self.held -= freed;
        let gone = before - self.pending.len();
        self.stats.timeouts += gone as u64;
        gone
    }

    /// Bytes held by the datagrams being put back together.
    pub fn held(&self) -> usize {
        self.held
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

impl Partial {
    /// The whole datagram: `header`, then the data; its lengths set, and for IPv4 its flags
    /// and checksum, for IPv6 its Fragment header gone (the header before it naming `next`).
    fn finish(&self, mut out: Vec<u8>, next: Option<NextHeader>, total: usize) -> Option<Vec<u8>> {
        let hlen = out.len();
        for x in self.parts.values() {
            out.extend_from_slice(x);
        }
        match next {
            None => {
                out[ipv4::field::LENGTH].copy_from_slice(&((hlen + total) as u16).to_be_bytes());
                // Whole again: no MF, no offset; DF as the first fragment had it.
                let df = out[ipv4::field::FLG_OFF.start] & 0x40;
                out[ipv4::field::FLG_OFF].copy_from_slice(&[df, 0]);
                ipv4::Packet::new_checked(&mut out[..])
                    .ok()?
                    .fill_checksum();
            }
            Some(n) => {
                *out.get_mut(n.at)? = n.value;
                let payload = (hlen - ipv6::HEADER_LEN + total) as u16;
                out[ipv6::field::LENGTH].copy_from_slice(&payload.to_be_bytes());
            }
        }
        Some(out)
    }
}

#[cfg(test)]
#[path = "reassembly_tests6.rs"]
pub(crate) mod tests6;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv4::{fragment, Packet, Repr, PROTO_ESP};

    /// An ESP-sized datagram of `n` data bytes, identification `ident`.
    fn datagram(n: usize, ident: u16) -> Vec<u8> {
        let mut p = vec![0u8; 20 + n];
        Repr {
            tos: 0,
            ident,
            dont_frag: false,
            ttl: 60,
            protocol: PROTO_ESP,
            src: Ipv4Addr::new(192, 0, 2, 1),
            dst: Ipv4Addr::new(192, 0, 2, 2),
            payload_len: n,
        }
        .emit(p.first_chunk_mut().unwrap());
        for (i, b) in p[20..].iter_mut().enumerate() {
            *b = (i * 31 + i / 255) as u8;
        }
        p
    }

    fn pieces(p: &[u8], mtu: usize) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        fragment(p, mtu, |f| v.push(f.to_vec())).unwrap();
        v
    }

    #[test]
    fn in_any_order_with_copies_the_datagram_comes_back_whole() {
        let t = Instant::now();
        let whole = datagram(3000, 9);
        let mut f = pieces(&whole, 1000);
        assert_eq!(f.len(), 4);
        f.reverse();
        f.insert(2, f[1].clone());
        let mut r = Reassembler::default();
        let mut got = None;
        for (i, x) in f.iter().enumerate() {
            let out = r.add(x, t);
            assert_eq!(out.is_some(), i == f.len() - 1, "{i}");
            got = got.or(out);
        }
        let got = got.unwrap();
        assert_eq!(got, whole, "header and data as before they were cut");
        assert_eq!(r.pending(), 0);
        assert_eq!((r.stats.reassembled, r.stats.fragments), (1, 5));
    }

    #[test]
    fn overlapping_oversize_incomplete_and_malformed_sets_are_dropped_and_counted() {
        let t = Instant::now();
        let mut r = Reassembler::default();
        // Overlap: the second piece again, one byte shorter than the first's end would need.
        let f = pieces(&datagram(3000, 1), 1000);
        r.add(&f[0], t);
        let mut bad = f[1].clone();
        bad[6..8].copy_from_slice(&(0x2000u16 | ((f[0].len() as u16 - 20 - 8) / 8)).to_be_bytes());
        Packet::new_checked(&mut bad[..]).unwrap().fill_checksum();
        assert!(r.add(&bad, t).is_none());
        assert_eq!((r.stats.overlaps, r.pending()), (1, 0));
        // Its remaining pieces start a set that never completes.
        for x in &f[2..] {
            assert!(r.add(x, t).is_none());
        }
        assert_eq!(r.pending(), 1);
        // Beyond 65535 bytes.
        let mut huge = f[1].clone();
        huge[4..6].copy_from_slice(&2u16.to_be_bytes());
        huge[6..8].copy_from_slice(&(0x2000u16 | 8190).to_be_bytes());
        Packet::new_checked(&mut huge[..]).unwrap().fill_checksum();
        assert!(r.add(&huge, t).is_none());
        assert_eq!(r.stats.oversize, 1);
        // A middle piece not a multiple of 8.
        let mut odd = f[1].clone();
        odd.pop();
        let n = odd.len() as u16;
        odd[2..4].copy_from_slice(&n.to_be_bytes());
        odd[4..6].copy_from_slice(&3u16.to_be_bytes());
        Packet::new_checked(&mut odd[..]).unwrap().fill_checksum();
        assert!(r.add(&odd, t).is_none());
        assert_eq!(r.stats.malformed, 1);
        // The incomplete one times out.
        assert_eq!(r.expire(t + TIMEOUT), 1);
        assert_eq!((r.stats.timeouts, r.pending()), (1, 0));
    }

    #[test]
    fn the_table_is_bounded() {
        let t = Instant::now();
        let mut r = Reassembler::default();
        for ident in 0..MAX_DATAGRAMS as u16 {
            let f = pieces(&datagram(1200, ident), 1000);
            assert!(r.add(&f[0], t).is_none());
        }
        let f = pieces(&datagram(1200, 60000), 1000);
        assert!(r.add(&f[0], t).is_none());
        assert_eq!((r.stats.table_full, r.pending()), (1, MAX_DATAGRAMS));
        assert_eq!(r.held(), MAX_DATAGRAMS * 976);
        // Once the old ones expire there is room again.
        let later = t + TIMEOUT;
        assert!(r.add(&f[0], later).is_none());
        assert!(r.add(&f[1], later).is_some());
        assert_eq!((r.held(), r.pending()), (0, 0));
    }

    /// However few the datagrams, the bytes they hold are bounded.
    #[test]
    fn the_bytes_held_are_bounded() {
        let t = Instant::now();
        let mut r = Reassembler::default();
        let mut ident = 0u16;
        // Big first fragments (64 KiB datagrams cut at 9000 bytes) until the budget is used.
        while r.stats.table_full == 0 {
            let f = pieces(&datagram(60_000, ident), 9000);
            r.add(&f[0], t);
            ident += 1;
        }
        assert!(r.held() <= MAX_BYTES && r.pending() < MAX_DATAGRAMS);
    }
}
