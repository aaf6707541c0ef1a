//! IPv4 headers (RFC 791).

use super::checksum;
use super::{be16, be32, Result, WireError};
use std::net::Ipv4Addr;

/// Where each field lies in the header (as smoltcp's `wire::ipv4::field`).
pub mod field {
    pub type Field = core::ops::Range<usize>;
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    /// Flags and fragment offset; the flags (DF among them) are in its first byte.
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
}

pub const MIN_HEADER_LEN: usize = field::DST_ADDR.end;
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_IPV4: u8 = 4;
/// IPv6 in IPv4 (RFC 4303's next header for an IPv6 inner packet in tunnel mode).
pub const PROTO_IPV6: u8 = 41;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ESP: u8 = 50;
pub const PROTO_NONE: u8 = 59;
pub const FLAG_DF: u16 = 0x4000;
pub const FLAG_MF: u16 = 0x2000;
pub const FRAG_OFFSET_MASK: u16 = 0x1fff;

/// A checked view of an IPv4 packet: the header length, total length and version have been
/// validated against the buffer, so accessors never go out of bounds.
pub struct Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Validates version, IHL and total length against the buffer. The buffer may be longer
    /// than the packet (Ethernet padding); `total_len()` tells how much of it is the packet.
    #[inline(always)]
    pub fn new_checked(buf: T) -> Result<Self> {
        let b = buf.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[field::VER_IHL] >> 4 != 4 {
            return Err(WireError::Malformed);
        }
        let ihl = usize::from(b[field::VER_IHL] & 0x0f) * 4;
        let total = usize::from(be16(b, field::LENGTH.start));
        if ihl < MIN_HEADER_LEN || total < ihl {
            return Err(WireError::Malformed);
        }
        if b.len() < total {
            return Err(WireError::Truncated);
        }
        Ok(Packet { buf })
    }

    #[inline(always)]
    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }
    #[inline(always)]
    pub fn header_len(&self) -> usize {
        usize::from(self.b()[field::VER_IHL] & 0x0f) * 4
    }
    #[inline(always)]
    pub fn tos(&self) -> u8 {
        self.b()[field::TOS]
    }
    #[inline(always)]
    pub fn total_len(&self) -> usize {
        usize::from(be16(self.b(), field::LENGTH.start))
    }
    #[inline(always)]
    pub fn ident(&self) -> u16 {
        be16(self.b(), field::IDENT.start)
    }
    #[inline(always)]
    pub fn flags_frag(&self) -> u16 {
        be16(self.b(), field::FLG_OFF.start)
    }
    #[inline(always)]
    pub fn dont_frag(&self) -> bool {
        self.flags_frag() & FLAG_DF != 0
    }
    /// True for any fragment but a whole datagram.
    #[inline(always)]
    pub fn is_fragment(&self) -> bool {
        self.flags_frag() & (FLAG_MF | FRAG_OFFSET_MASK) != 0
    }
    #[inline(always)]
    pub fn ttl(&self) -> u8 {
        self.b()[field::TTL]
    }
    #[inline(always)]
    pub fn protocol(&self) -> u8 {
        self.b()[field::PROTOCOL]
    }
    #[inline(always)]
    pub fn checksum_field(&self) -> u16 {
        be16(self.b(), field::CHECKSUM.start)
    }
    #[inline(always)]
    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::from(be32(self.b(), field::SRC_ADDR.start))
    }
    #[inline(always)]
    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::from(be32(self.b(), field::DST_ADDR.start))
    }
    #[inline(always)]
    pub fn verify_checksum(&self) -> bool {
        let b = self.b();
        match b.first_chunk::<MIN_HEADER_LEN>() {
            // The common header without options, in five fixed loads.
            Some(h) if self.header_len() == MIN_HEADER_LEN => checksum::sum20(h) == 0xffff,
            _ => checksum::sum(&b[..self.header_len()]) == 0xffff,
        }
    }
    /// What routing reads of the header.
    #[inline(always)]
    pub fn summary(&self) -> Summary {
        Summary {
            dst: self.dst(),
            ttl: self.ttl(),
            protocol: self.protocol(),
            header_len: self.b()[field::VER_IHL] & 0x0f,
            fragment: self.is_fragment(),
        }
    }
    /// The payload, up to the total length (Ethernet padding excluded).
    #[inline(always)]
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..self.total_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Decrements TTL by one with an incremental checksum update, as a router does.
    /// The caller has checked `ttl() > 1`.
    pub fn decrement_ttl(&mut self) {
        if let Some(h) = self.buf.as_mut().first_chunk_mut() {
            decrement_ttl(h);
        }
    }

    pub fn set_dst(&mut self, a: Ipv4Addr) {
        self.buf.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }
    pub fn set_src(&mut self, a: Ipv4Addr) {
        self.buf.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buf.as_mut()[field::TTL] = ttl;
    }
    /// Recomputes the header checksum from scratch.
    pub fn fill_checksum(&mut self) {
        let hl = self.header_len();
        let b = self.buf.as_mut();
        b[field::CHECKSUM].fill(0);
        let c = checksum::checksum(&b[..hl]);
        b[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (hl, tl) = (self.header_len(), self.total_len());
        &mut self.buf.as_mut()[hl..tl]
    }
}

/// Decrements the TTL of the header at the front of a packet already validated, updating the
/// checksum incrementally (RFC 1624); the forwarding path uses it without a second view.
#[inline(always)]
pub fn decrement_ttl(h: &mut [u8; MIN_HEADER_LEN]) {
    let ttl = h[field::TTL];
    h[field::TTL] = ttl.wrapping_sub(1);
    // RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'), with m' = m - 0x100 (TTL is the high byte of
    // its word): ~m + m' is 0xfeff whatever the TTL and protocol (0x1feff should a TTL of 0,
    // which no router forwards, wrap to 255).
    let delta = if ttl == 0 { 0x1_feff } else { 0xfeff };
    let c = !checksum::fold32(u32::from(!be16(h, field::CHECKSUM.start)) + delta);
    h[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
}

/// The fields of a checked header that routing and local delivery read, taken once so that
/// a header checked by its producer (the decapsulation) is not parsed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub protocol: u8,
    /// In 32-bit words, as in the header.
    header_len: u8,
    pub fragment: bool,
}

impl Summary {
    /// The header length in bytes.
    #[inline(always)]
    pub fn header_len(&self) -> usize {
        usize::from(self.header_len) * 4
    }
}

/// A 20-byte IPv4 header without options, to build outer headers and test packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub tos: u8,
    pub ident: u16,
    pub dont_frag: bool,
    pub ttl: u8,
    pub protocol: u8,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// Length of what follows the header.
    pub payload_len: usize,
}

impl Repr {
    /// Writes the header (checksum included) into `out`; `payload_len` must keep the total
    /// under 65536, which callers ensure by their MTU checks.
    #[inline(always)]
    pub fn emit(&self, out: &mut [u8; MIN_HEADER_LEN]) {
        let total = (MIN_HEADER_LEN + self.payload_len) as u16;
        let ff: u16 = if self.dont_frag { FLAG_DF } else { 0 };
        let (src, dst) = (u32::from(self.src), u32::from(self.dst));
        // The checksum from the field values, without reading the header back: this runs for
        // every encapsulated packet.
        let words = [
            0x4500 | u16::from(self.tos),
            total,
            self.ident,
            ff,
            u16::from_be_bytes([self.ttl, self.protocol]),
            (src >> 16) as u16,
            src as u16,
            (dst >> 16) as u16,
            dst as u16,
        ];
        let c = !checksum::fold_words(&words);
        out[field::VER_IHL] = 0x45;
        out[field::TOS] = self.tos;
        out[field::LENGTH].copy_from_slice(&total.to_be_bytes());
        out[field::IDENT].copy_from_slice(&self.ident.to_be_bytes());
        out[field::FLG_OFF].copy_from_slice(&ff.to_be_bytes());
        out[field::TTL] = self.ttl;
        out[field::PROTOCOL] = self.protocol;
        out[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
        out[field::SRC_ADDR].copy_from_slice(&self.src.octets());
        out[field::DST_ADDR].copy_from_slice(&self.dst.octets());
    }
}

/// The options of a header that every fragment after the first repeats (RFC 791: those whose
/// type has the copied flag), padded to 4 bytes; `None` if they do not parse.
fn copied_options(options: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&kind) = options.get(i) {
        match kind {
            0 => break,
            1 => i += 1,
            _ => {
                let len = usize::from(*options.get(i + 1)?);
                let opt = options.get(i..i + len).filter(|_| len >= 2)?;
                if kind & 0x80 != 0 {
                    out.extend_from_slice(opt);
                }
                i += len;
            }
        }
    }
    out.resize(out.len().div_ceil(4) * 4, 0);
    Some(out)
}

/// Cuts the IPv4 `packet` (a whole datagram, or itself a fragment) into fragments of at most
/// `mtu` bytes (RFC 791 section 3.2), handing each, a whole IPv4 packet with its checksum, to
/// `emit` in order; how many, or `None` (and nothing emitted) if the packet does not parse,
/// has DF set, or `mtu` leaves no room for 8 bytes of data.
pub fn fragment(packet: &[u8], mtu: usize, mut emit: impl FnMut(&[u8])) -> Option<usize> {
    let p = Packet::new_checked(packet).ok()?;
    let (ihl, total) = (p.header_len(), p.total_len());
    if p.dont_frag() || total > packet.len() {
        return None;
    }
    let (head, data) = packet.get(..total)?.split_at(ihl);
    let later_options = copied_options(head.get(MIN_HEADER_LEN..)?)?;
    let (offset0, more0) = (
        usize::from(p.flags_frag() & FRAG_OFFSET_MASK) * 8,
        p.flags_frag() & FLAG_MF != 0,
    );
    let mut at = 0;
    let mut n = 0;
    let mut out = Vec::with_capacity(mtu);
    while at < data.len() || n == 0 {
        let options = if n == 0 {
            &head[MIN_HEADER_LEN..]
        } else {
            &later_options[..]
        };
        let hlen = MIN_HEADER_LEN + options.len();
        // Every fragment but the last carries a multiple of 8 bytes.
        let room = mtu.checked_sub(hlen)? / 8 * 8;
        if room == 0 {
            return None;
        }
        let take = room.min(data.len() - at);
        let last = at + take == data.len();
        let offset = (offset0 + at) / 8;
        let flags = if last && !more0 { 0 } else { FLAG_MF };
        out.clear();
        out.extend_from_slice(&head[..MIN_HEADER_LEN]);
        out.extend_from_slice(options);
        out.extend_from_slice(&data[at..at + take]);
        out[field::VER_IHL] = 0x40 | (hlen / 4) as u8;
        out[field::LENGTH].copy_from_slice(&((hlen + take) as u16).to_be_bytes());
        out[field::FLG_OFF].copy_from_slice(&(flags | offset as u16).to_be_bytes());
        let mut f = Packet::new_checked(&mut out[..]).ok()?;
        f.fill_checksum();
        emit(&out);
        n += 1;
        at += take;
        if last {
            break;
        }
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> [u8; 28] {
        let r = Repr {
            tos: 0xb8,
            ident: 0x1234,
            dont_frag: true,
            ttl: 64,
            protocol: PROTO_UDP,
            src: Ipv4Addr::new(10, 1, 0, 10),
            dst: Ipv4Addr::new(10, 2, 0, 10),
            payload_len: 8,
        };
        let mut b = [0u8; 28];
        let mut h = [0u8; 20];
        r.emit(&mut h);
        b[..20].copy_from_slice(&h);
        b
    }

    #[test]
    fn emit_exact_bytes() {
        let b = sample();
        // Checksum computed independently: sum of the header words with the field zeroed.
        assert_eq!(
            &b[..20],
            &[
                0x45, 0xb8, 0x00, 0x1c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x13, 0xcf, 10, 1, 0,
                10, 10, 2, 0, 10
            ]
        );
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum());
        assert!(p.dont_frag() && !p.is_fragment());
        assert_eq!((p.total_len(), p.payload().len()), (28, 8));
    }

    #[test]
    fn rejects_bad_version_ihl_and_lengths() {
        let good = sample();
        let mut b = good;
        b[0] = 0x65;
        assert_eq!(
            Packet::new_checked(&b[..]).err(),
            Some(WireError::Malformed)
        );
        b = good;
        b[0] = 0x44; // IHL 16 bytes
        assert_eq!(
            Packet::new_checked(&b[..]).err(),
            Some(WireError::Malformed)
        );
        b = good;
        b[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(
            Packet::new_checked(&b[..]).err(),
            Some(WireError::Malformed)
        );
        b = good;
        b[2..4].copy_from_slice(&29u16.to_be_bytes());
        assert_eq!(
            Packet::new_checked(&b[..]).err(),
            Some(WireError::Truncated)
        );
        assert_eq!(
            Packet::new_checked(&good[..19]).err(),
            Some(WireError::Truncated)
        );
        b = good;
        b[10] ^= 1;
        assert!(!Packet::new_checked(&b[..]).unwrap().verify_checksum());
    }

    #[test]
    fn summary_has_what_routing_reads() {
        let b = sample();
        let s = Packet::new_checked(&b[..]).unwrap().summary();
        assert_eq!(
            (s.dst, s.ttl, s.protocol, s.header_len(), s.fragment),
            (Ipv4Addr::new(10, 2, 0, 10), 64, PROTO_UDP, 20, false)
        );
        // A later fragment, with 4 bytes of options: the length and the offset show.
        let mut o = [0u8; 32];
        o[..20].copy_from_slice(&b[..20]);
        o[0] = 0x46;
        o[2..4].copy_from_slice(&32u16.to_be_bytes());
        o[6..8].copy_from_slice(&0x0010u16.to_be_bytes());
        let s = Packet::new_checked(&o[..]).unwrap().summary();
        assert_eq!((s.header_len(), s.fragment), (24, true));
    }

    #[test]
    fn ttl_decrement_keeps_checksum_valid() {
        let mut b = sample();
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.decrement_ttl();
        assert_eq!(p.ttl(), 63);
        assert!(p.verify_checksum());
    }

    /// The specialised update agrees with RFC 1624's general one for every checksum value
    /// and TTL, whatever the protocol.
    #[test]
    fn ttl_decrement_is_rfc1624() {
        for hc in 0..=u16::MAX {
            for (ttl, proto) in [(0u8, 6u8), (1, 4), (2, 50), (64, 17), (255, 1), (128, 255)] {
                let mut h = [0u8; MIN_HEADER_LEN];
                h[8] = ttl;
                h[9] = proto;
                h[10..12].copy_from_slice(&hc.to_be_bytes());
                let next = ttl.wrapping_sub(1);
                let want = checksum::update(
                    hc,
                    u16::from_be_bytes([ttl, proto]),
                    u16::from_be_bytes([next, proto]),
                );
                decrement_ttl(&mut h);
                assert_eq!((h[8], be16(&h, 10)), (next, want), "hc {hc:#06x} ttl {ttl}");
            }
        }
    }

    /// A 1500-byte datagram (with a copied and a not copied option) cut for a 1000-byte MTU:
    /// each fragment fits, its checksum verifies, offsets and MF are right, options are as
    /// RFC 791 says, and the pieces put back together are the original data; a fragment is
    /// cut further with offsets from its own; DF refuses.
    #[test]
    fn fragments_fit_and_put_back_together() {
        let mut p = vec![0u8; 1500];
        // IHL 7: a copied option (type 0x94, router alert style, len 4) and a not copied one
        // (type 0x07 record route, len 3) + end.
        p[0] = 0x47;
        p[2..4].copy_from_slice(&1500u16.to_be_bytes());
        p[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        p[8] = 64;
        p[9] = PROTO_UDP;
        p[12..16].copy_from_slice(&[10, 1, 0, 10]);
        p[16..20].copy_from_slice(&[10, 2, 0, 10]);
        p[20..28].copy_from_slice(&[0x94, 4, 0, 0, 0x07, 3, 4, 0]);
        for (i, b) in p[28..].iter_mut().enumerate() {
            *b = (i * 7) as u8;
        }
        Packet::new_checked(&mut p[..]).unwrap().fill_checksum();
        let mut frags = Vec::new();
        assert_eq!(fragment(&p, 1000, |f| frags.push(f.to_vec())), Some(2));
        let mut data = Vec::new();
        for (i, f) in frags.iter().enumerate() {
            let q = Packet::new_checked(&f[..]).unwrap();
            assert!(f.len() <= 1000 && q.verify_checksum());
            assert_eq!(q.total_len(), f.len());
            assert_eq!(q.ident(), 0x1234);
            let off = usize::from(q.flags_frag() & FRAG_OFFSET_MASK) * 8;
            assert_eq!(off, data.len());
            assert_eq!(q.flags_frag() & FLAG_MF != 0, i == 0);
            // The first keeps every option; the second only the copied one.
            assert_eq!(q.header_len(), if i == 0 { 28 } else { 24 });
            if i == 1 {
                assert_eq!(&f[20..24], &[0x94, 4, 0, 0]);
            }
            data.extend_from_slice(&f[q.header_len()..]);
        }
        assert_eq!(&data[..], &p[28..]);
        // The first fragment cut again for 600 bytes: offsets continue from 0, MF stays.
        let mut again = Vec::new();
        fragment(&frags[1], 600, |f| again.push(f.to_vec())).unwrap();
        let last = Packet::new_checked(&again[again.len() - 1][..]).unwrap();
        assert_eq!(last.flags_frag() & FLAG_MF, 0, "the original's last piece");
        let first = Packet::new_checked(&again[0][..]).unwrap();
        assert_eq!(
            usize::from(first.flags_frag() & FRAG_OFFSET_MASK) * 8,
            frags[0].len() - 28
        );
        // DF set: no fragments.
        p[6] = 0x40;
        assert_eq!(fragment(&p, 1000, |_| panic!("emitted")), None);
        assert_eq!(fragment(&[0x45, 0], 1000, |_| panic!("emitted")), None);
    }
}
