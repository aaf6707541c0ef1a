//! ICMP (RFC 792): the gateway answers pings to its own addresses, and tells a sender whose
//! packet (with DF set) is too big for its tunnel the tunnel's MTU ("fragmentation needed",
//! RFC 1191), which is what path MTU discovery runs on.

use super::checksum;
use super::ipv4;
use std::net::Ipv4Addr;

/// Where each field of an echo message lies.
pub mod field {
    pub type Field = core::ops::Range<usize>;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    /// Identifier and sequence number.
    pub const ECHO_HEADER_END: usize = 8;
}

pub const TYPE_ECHO_REPLY: u8 = 0;
pub const TYPE_ECHO_REQUEST: u8 = 8;

/// Turns a valid echo request (the whole ICMP message) into its reply in place.
/// Returns false, changing nothing, if `msg` is not a well-formed echo request.
pub fn echo_request_to_reply(msg: &mut [u8]) -> bool {
    if msg.len() < field::ECHO_HEADER_END
        || msg[field::TYPE] != TYPE_ECHO_REQUEST
        || msg[field::CODE] != 0
    {
        return false;
    }
    if checksum::sum(msg) != 0xffff {
        return false;
    }
    let old = u16::from_be_bytes([msg[field::TYPE], msg[field::CODE]]);
    msg[field::TYPE] = TYPE_ECHO_REPLY;
    let sum = &mut msg[field::CHECKSUM];
    let c = checksum::update(u16::from_be_bytes([sum[0], sum[1]]), old, 0);
    sum.copy_from_slice(&c.to_be_bytes());
    true
}

pub const TYPE_DEST_UNREACHABLE: u8 = 3;
pub const CODE_FRAG_NEEDED: u8 = 4;
/// ICMP header (type, code, checksum, unused, next-hop MTU) before the quoted packet.
pub const ERROR_HEADER_LEN: usize = 8;
/// What an ICMP error quotes of the packet it is about: its IP header and 8 bytes more.
const QUOTED_PAYLOAD: usize = 8;
/// The longest "fragmentation needed" message: our IP header, the ICMP header, and the quote
/// (a header with options and 8 bytes).
pub const FRAG_NEEDED_MAX_LEN: usize =
    ipv4::MIN_HEADER_LEN + ERROR_HEADER_LEN + 60 + QUOTED_PAYLOAD;

/// ICMP types that are errors (RFC 1122 section 3.2.2: never answered by another error).
fn is_error(t: u8) -> bool {
    matches!(t, 3 | 4 | 5 | 11 | 12)
}

/// The "fragmentation needed" message (RFC 792, RFC 1191) from `from` for `packet` (an IPv4
/// packet, from its header on), with `mtu` as the next-hop MTU: a whole IPv4 packet written
/// into `out`, and its length. `None` for what gets no error (RFC 1122 section 3.2.2): a
/// malformed packet, a fragment other than the first, an ICMP error, a source that is not one
/// host.
pub fn frag_needed(
    packet: &[u8],
    from: Ipv4Addr,
    mtu: u16,
    out: &mut [u8; FRAG_NEEDED_MAX_LEN],
) -> Option<usize> {
    let p = ipv4::Packet::new_checked(packet).ok()?;
    let (src, ihl) = (p.src(), p.header_len());
    if p.flags_frag() & ipv4::FRAG_OFFSET_MASK != 0
        || src.is_unspecified()
        || src.is_broadcast()
        || src.is_multicast()
        || src.is_loopback()
    {
        return None;
    }
    if p.protocol() == ipv4::PROTO_ICMP && packet.get(ihl).is_none_or(|&t| is_error(t)) {
        return None;
    }
    let quote = packet.get(..(ihl + QUOTED_PAYLOAD).min(p.total_len()).min(packet.len()))?;
    let icmp_len = ERROR_HEADER_LEN + quote.len();
    let (head, rest) = out.split_first_chunk_mut::<{ ipv4::MIN_HEADER_LEN }>()?;
    ipv4::Repr {
        tos: 0,
        ident: 0,
        dont_frag: false,
        ttl: 64,
        protocol: ipv4::PROTO_ICMP,
        src: from,
        dst: src,
        payload_len: icmp_len,
    }
    .emit(head);
    let msg = rest.get_mut(..icmp_len)?;
    msg[..ERROR_HEADER_LEN].copy_from_slice(&[
        TYPE_DEST_UNREACHABLE,
        CODE_FRAG_NEEDED,
        0,
        0,
        0,
        0,
        0,
        0,
    ]);
    msg[6..8].copy_from_slice(&mtu.to_be_bytes());
    msg[ERROR_HEADER_LEN..].copy_from_slice(quote);
    let c = checksum::checksum(msg);
    msg[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    Some(ipv4::MIN_HEADER_LEN + icmp_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1500-byte UDP packet with DF from 10.1.0.10 to 10.2.0.10.
    fn big(df: bool, frag_offset: u16) -> Vec<u8> {
        let mut p = vec![0u8; 1500];
        ipv4::Repr {
            tos: 0,
            ident: 7,
            dont_frag: df,
            ttl: 63,
            protocol: ipv4::PROTO_UDP,
            src: Ipv4Addr::new(10, 1, 0, 10),
            dst: Ipv4Addr::new(10, 2, 0, 10),
            payload_len: 1480,
        }
        .emit(p.first_chunk_mut().unwrap());
        if frag_offset != 0 {
            p[6..8].copy_from_slice(&frag_offset.to_be_bytes());
        }
        for (i, b) in p[20..].iter_mut().enumerate() {
            *b = i as u8;
        }
        p
    }

    #[test]
    fn fragmentation_needed_quotes_the_header_and_8_bytes_with_the_mtu() {
        let mut out = [0u8; FRAG_NEEDED_MAX_LEN];
        let gw = Ipv4Addr::new(10, 1, 0, 1);
        let n = frag_needed(&big(true, 0), gw, 1422, &mut out).unwrap();
        assert_eq!(n, 20 + 8 + 28);
        let ip = ipv4::Packet::new_checked(&out[..n]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!((ip.src(), ip.dst()), (gw, Ipv4Addr::new(10, 1, 0, 10)));
        assert_eq!((ip.protocol(), ip.total_len()), (ipv4::PROTO_ICMP, n));
        let icmp = &out[20..n];
        assert_eq!(&icmp[..2], &[3, 4]);
        assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), 1422);
        assert_eq!(checksum::sum(icmp), 0xffff);
        assert_eq!(&icmp[8..], &big(true, 0)[..28], "the header and 8 bytes");
        // Not for a fragment other than the first, nor about an ICMP error, nor to a
        // broadcast source.
        assert!(frag_needed(&big(true, 0x2000 | 185), gw, 1422, &mut out).is_none());
        let mut err = big(true, 0);
        err[9] = ipv4::PROTO_ICMP;
        err[20] = TYPE_DEST_UNREACHABLE;
        assert!(frag_needed(&err, gw, 1422, &mut out).is_none());
        err[20] = TYPE_ECHO_REQUEST;
        assert!(
            frag_needed(&err, gw, 1422, &mut out).is_some(),
            "an echo gets one"
        );
        let mut bcast = big(true, 0);
        bcast[12..16].copy_from_slice(&[255, 255, 255, 255]);
        assert!(frag_needed(&bcast, gw, 1422, &mut out).is_none());
        assert!(frag_needed(&[0x45, 0, 0], gw, 1422, &mut out).is_none());
    }

    #[test]
    fn reply_has_valid_checksum() {
        let mut m = [8u8, 0, 0, 0, 0x12, 0x34, 0, 1, b'h', b'i'];
        let c = checksum::checksum(&m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        assert!(echo_request_to_reply(&mut m));
        assert_eq!(m[0], 0);
        assert_eq!(checksum::sum(&m), 0xffff);
        assert!(!echo_request_to_reply(&mut m), "a reply is not a request");
        assert!(!echo_request_to_reply(&mut [8u8, 0, 0]));
    }
}
