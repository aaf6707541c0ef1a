//! IPv6 headers (RFC 8200), the addresses neighbor discovery derives (RFC 4291), and the
//! pseudo-header upper-layer checksums cover.

use super::ethernet::Mac;
use super::{be16, Result, WireError};
use std::net::Ipv6Addr;

/// Where each field lies in the fixed header (as smoltcp's `wire::ipv6::field`).
pub mod field {
    pub type Field = core::ops::Range<usize>;
    /// Version (4 bits), traffic class (8) and flow label (20).
    pub const VER_TC_FLOW: Field = 0..4;
    pub const LENGTH: Field = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Field = 8..24;
    pub const DST_ADDR: Field = 24..40;
}

pub const HEADER_LEN: usize = field::DST_ADDR.end;
pub const NEXT_HOP_BY_HOP: u8 = 0;
pub const NEXT_TCP: u8 = 6;
pub const NEXT_UDP: u8 = 17;
pub const NEXT_ROUTING: u8 = 43;
pub const NEXT_FRAGMENT: u8 = 44;
pub const NEXT_ESP: u8 = 50;
pub const NEXT_ICMPV6: u8 = 58;
pub const NEXT_NONE: u8 = 59;
pub const NEXT_DEST_OPTS: u8 = 60;
/// The smallest MTU every IPv6 link has (RFC 8200 section 5).
pub const MIN_MTU: usize = 1280;
/// All nodes on the link (RFC 4291 section 2.7.1).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// A checked view of an IPv6 packet: the version and payload length have been validated
/// against the buffer, so accessors never go out of bounds.
pub struct Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Validates the version and the payload length against the buffer, which may be longer
    /// than the packet (Ethernet padding); `total_len()` tells how much of it is the packet.
    /// A jumbogram (payload length 0 with a hop-by-hop jumbo option) is not taken.
    pub fn new_checked(buf: T) -> Result<Self> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[0] >> 4 != 6 {
            return Err(WireError::Malformed);
        }
        if b.len() < HEADER_LEN + usize::from(be16(b, field::LENGTH.start)) {
            return Err(WireError::Truncated);
        }
        Ok(Packet { buf })
    }

    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }
    pub fn traffic_class(&self) -> u8 {
        let b = self.b();
        (b[0] << 4) | (b[1] >> 4)
    }
    pub fn flow_label(&self) -> u32 {
        let b = self.b();
        u32::from_be_bytes([0, b[1] & 0x0f, b[2], b[3]])
    }
    pub fn payload_len(&self) -> usize {
        usize::from(be16(self.b(), field::LENGTH.start))
    }
    /// The header and its payload, Ethernet padding excluded.
    pub fn total_len(&self) -> usize {
        HEADER_LEN + self.payload_len()
    }
    pub fn next_header(&self) -> u8 {
        self.b()[field::NEXT_HEADER]
    }
    pub fn hop_limit(&self) -> u8 {
        self.b()[field::HOP_LIMIT]
    }
    pub fn src(&self) -> Ipv6Addr {
        addr_at(self.b(), field::SRC_ADDR.start)
    }
    pub fn dst(&self) -> Ipv6Addr {
        addr_at(self.b(), field::DST_ADDR.start)
    }
    /// Everything after the fixed header, up to the payload length.
    pub fn payload(&self) -> &[u8] {
        &self.b()[HEADER_LEN..self.total_len()]
    }

    /// The upper layer: past hop-by-hop options, destination options and a fragment header
    /// (RFC 8200 section 4.1's order is not enforced).
    pub fn upper_layer(&self) -> Result<UpperLayer> {
        self.walk().map(|(u, _)| u)
    }

    /// The Fragment header (RFC 8200 section 4.5), if the packet is a fragment: what
    /// reassembly needs of it.
    pub fn fragment_header(&self) -> Result<Option<FragmentHeader>> {
        self.walk().map(|(_, f)| f)
    }

    /// Past hop-by-hop and destination options and a Fragment header to the upper layer (of a
    /// fragment that is not the first, what follows its Fragment header is data).
    fn walk(&self) -> Result<(UpperLayer, Option<FragmentHeader>)> {
        let p = self.payload();
        let mut next = self.next_header();
        let mut next_at = field::NEXT_HEADER;
        let mut at = 0;
        let mut frag = None;
        loop {
            match next {
                NEXT_HOP_BY_HOP | NEXT_DEST_OPTS => {
                    let h = p.get(at..at + 2).ok_or(WireError::Truncated)?;
                    next = h[0];
                    next_at = HEADER_LEN + at;
                    at += (usize::from(h[1]) + 1) * 8;
                }
                NEXT_FRAGMENT if frag.is_none() => {
                    let h = p.get(at..at + 8).ok_or(WireError::Truncated)?;
                    let f = FragmentHeader {
                        at: HEADER_LEN + at,
                        next_header_at: next_at,
                        next: h[0],
                        offset: usize::from(be16(h, 2) & !7),
                        more: h[3] & 1 != 0,
                        ident: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
                    };
                    next = f.next;
                    at += 8;
                    // An atomic fragment (offset 0, no more) is a whole packet (RFC 6946).
                    frag = Some(f).filter(|f| f.offset != 0 || f.more);
                    if frag.is_some_and(|f| f.offset != 0) {
                        break;
                    }
                }
                _ => break,
            }
        }
        if at > p.len() {
            return Err(WireError::Truncated);
        }
        let upper = UpperLayer {
            protocol: next,
            offset: HEADER_LEN + at,
            fragment: frag.is_some(),
        };
        Ok((upper, frag))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_hop_limit(&mut self, h: u8) {
        self.buf.as_mut()[field::HOP_LIMIT] = h;
    }
    pub fn set_src(&mut self, a: Ipv6Addr) {
        self.buf.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }
    pub fn set_dst(&mut self, a: Ipv6Addr) {
        self.buf.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }
}

fn addr_at(b: &[u8], at: usize) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&b[at..at + 16]);
    Ipv6Addr::from(o)
}

/// Where the upper-layer header of a packet lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpperLayer {
    /// Its protocol (a next-header value other than the skipped extension headers).
    pub protocol: u8,
    /// From the start of the IPv6 header.
    pub offset: usize,
    /// The packet is a fragment (not the whole datagram): its upper layer is not all here.
    pub fragment: bool,
}

/// A Fragment header, where it lies and what it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentHeader {
    /// From the start of the IPv6 header.
    pub at: usize,
    /// Where the next-header byte that names the Fragment header is (6: the IPv6 header's).
    pub next_header_at: usize,
    /// The fragmentable part's first header.
    pub next: u8,
    /// In bytes.
    pub offset: usize,
    pub more: bool,
    pub ident: u32,
}

/// A fixed IPv6 header without extension headers, to build packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub traffic_class: u8,
    pub next_header: u8,
    pub hop_limit: u8,
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    /// Length of what follows the header.
    pub payload_len: usize,
}

impl Repr {
    /// Writes the header into `out`; `payload_len` must be below 65536, which callers ensure.
    pub fn emit(&self, out: &mut [u8; HEADER_LEN]) {
        out[0] = 0x60 | (self.traffic_class >> 4);
        out[1] = self.traffic_class << 4;
        out[2] = 0;
        out[3] = 0;
        out[field::LENGTH].copy_from_slice(&(self.payload_len as u16).to_be_bytes());
        out[field::NEXT_HEADER] = self.next_header;
        out[field::HOP_LIMIT] = self.hop_limit;
        out[field::SRC_ADDR].copy_from_slice(&self.src.octets());
        out[field::DST_ADDR].copy_from_slice(&self.dst.octets());
    }
}

/// The ones'-complement sum (not folded) of the pseudo-header of RFC 8200 section 8.1: both
/// addresses, the upper-layer length and its protocol.
pub fn pseudo_header_sum(src: &Ipv6Addr, dst: &Ipv6Addr, len: u32, protocol: u8) -> u64 {
    let words = |a: &Ipv6Addr| a.segments().iter().map(|&w| u64::from(w)).sum::<u64>();
    words(src) + words(dst) + u64::from(len >> 16) + u64::from(len & 0xffff) + u64::from(protocol)
}

/// The solicited-node multicast address of `a` (RFC 4291 section 2.7.1): ff02::1:ff and its
/// low 24 bits.
pub fn solicited_node(a: &Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15],
    ])
}

/// The Ethernet address of an IPv6 multicast group (RFC 2464 section 7): 33:33 and the
/// group's low 32 bits.
pub fn multicast_mac(a: &Ipv6Addr) -> Mac {
    let o = a.octets();
    Mac([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// The link-local address a MAC gives by modified EUI-64 (RFC 4291 appendix A, RFC 2464
/// section 5): fe80::, the MAC with its universal/local bit flipped and ff:fe in the middle.
pub fn link_local(mac: Mac) -> Ipv6Addr {
    let m = mac.0;
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        m[0] ^ 0x02,
        m[1],
        m[2],
        0xff,
        0xfe,
        m[3],
        m[4],
        m[5],
    ])
}

/// Link-local unicast, fe80::/10.
pub fn is_link_local(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x10);
    const DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x10);

    fn sample(next: u8, payload: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        Repr {
            traffic_class: 0xb8,
            next_header: next,
            hop_limit: 64,
            src: SRC,
            dst: DST,
            payload_len: payload.len(),
        }
        .emit(b.as_mut_slice().try_into().unwrap());
        b.extend_from_slice(payload);
        b
    }

    #[test]
    fn emit_exact_bytes_and_accessors() {
        let b = sample(NEXT_UDP, &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            &b[..8],
            &[0x6b, 0x80, 0, 0, 0, 8, 17, 64],
            "version 6, traffic class 0xb8, payload 8, UDP, hop limit 64"
        );
        assert_eq!(&b[8..24], &SRC.octets());
        assert_eq!(&b[24..40], &DST.octets());
        let mut padded = b.clone();
        padded.extend_from_slice(&[0; 6]);
        let p = Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(
            (
                p.traffic_class(),
                p.flow_label(),
                p.next_header(),
                p.hop_limit()
            ),
            (0xb8, 0, NEXT_UDP, 64)
        );
        assert_eq!((p.src(), p.dst(), p.total_len()), (SRC, DST, 48));
        assert_eq!(p.payload(), &[1, 2, 3, 4, 5, 6, 7, 8], "padding excluded");
        let mut m = b.clone();
        let mut q = Packet::new_checked(&mut m[..]).unwrap();
        q.set_hop_limit(9);
        q.set_src(DST);
        q.set_dst(SRC);
        assert_eq!((q.hop_limit(), q.src(), q.dst()), (9, DST, SRC));
    }

    #[test]
    fn rejects_bad_version_and_lengths() {
        let good = sample(NEXT_UDP, &[0; 8]);
        let mut b = good.clone();
        b[0] = 0x45;
        assert_eq!(
            Packet::new_checked(&b[..]).err(),
            Some(WireError::Malformed)
        );
        assert_eq!(
            Packet::new_checked(&good[..47]).err(),
            Some(WireError::Truncated),
            "payload length beyond the buffer"
        );
        assert_eq!(
            Packet::new_checked(&good[..39]).err(),
            Some(WireError::Truncated)
        );
    }

    #[test]
    fn upper_layer_past_extension_headers() {
        // Hop-by-hop (8 bytes, a PadN), destination options (16 bytes), then ICMPv6.
        let mut ext = vec![NEXT_DEST_OPTS, 0, 1, 4, 0, 0, 0, 0];
        ext.extend_from_slice(&[NEXT_ICMPV6, 1, 1, 12]);
        ext.extend_from_slice(&[0; 12]);
        ext.extend_from_slice(&[128, 0, 0, 0]);
        let b = sample(NEXT_HOP_BY_HOP, &ext);
        let u = Packet::new_checked(&b[..]).unwrap().upper_layer().unwrap();
        assert_eq!(
            u,
            UpperLayer {
                protocol: NEXT_ICMPV6,
                offset: 40 + 24,
                fragment: false
            }
        );
        // A fragment header: offset 0 and M clear is the whole datagram; M set is not.
        let whole = sample(NEXT_FRAGMENT, &[NEXT_UDP, 0, 0, 0, 0, 0, 0, 1]);
        let u = Packet::new_checked(&whole[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!((u.protocol, u.offset, u.fragment), (NEXT_UDP, 48, false));
        let first = sample(NEXT_FRAGMENT, &[NEXT_UDP, 0, 0, 1, 0, 0, 0, 1]);
        let u = Packet::new_checked(&first[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert!(u.fragment);
        // An extension header longer than the packet.
        let cut = sample(NEXT_HOP_BY_HOP, &[NEXT_UDP, 3, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            Packet::new_checked(&cut[..]).unwrap().upper_layer(),
            Err(WireError::Truncated)
        );
    }

    #[test]
    fn derived_addresses() {
        let mac = Mac([0x02, 0, 0, 0, 0x01, 0x01]);
        assert_eq!(
            link_local(mac),
            "fe80::ff:fe00:101".parse::<Ipv6Addr>().unwrap(),
            "the U/L bit of 02:... flipped to 00"
        );
        assert_eq!(
            link_local(Mac([0x52, 0x54, 0, 0x12, 0x34, 0x56])),
            "fe80::5054:ff:fe12:3456".parse::<Ipv6Addr>().unwrap()
        );
        let a: Ipv6Addr = "2001:db8:1::abcd:1234".parse().unwrap();
        assert_eq!(
            solicited_node(&a),
            "ff02::1:ffcd:1234".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            multicast_mac(&solicited_node(&a)),
            Mac([0x33, 0x33, 0xff, 0xcd, 0x12, 0x34])
        );
        assert!(is_link_local(&link_local(mac)));
        assert!(is_link_local(&"febf::1".parse().unwrap()));
        assert!(!is_link_local(&"fec0::1".parse().unwrap()));
        assert!(!is_link_local(&a));
    }
}
