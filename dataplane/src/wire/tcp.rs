//! TCP (RFC 9293), only as far as a tunnel gateway touches it: the MSS option of SYN segments,
//! clamped so that the peers' segments fit the tunnel without fragments (Junos `set security
//! flow tcp-mss ipsec-vpn mss N`).

use super::checksum;

/// Where each field of a TCP header lies.
pub mod field {
    pub type Field = core::ops::Range<usize>;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const CHECKSUM: Field = 16..18;
    pub const OPTIONS: usize = 20;
}

pub const FLAG_SYN: u8 = 0x02;
const OPT_END: u8 = 0;
const OPT_NOP: u8 = 1;
const OPT_MSS: u8 = 2;

/// Lowers the MSS option of a SYN (or SYN-ACK) `segment` (the TCP header on) to `mss` if it
/// is above, fixing the checksum incrementally (RFC 1624); the new MSS if it changed. Nothing
/// else is touched, and a segment that is not a SYN, or whose options do not parse, is left
/// as it is.
pub fn clamp_mss(segment: &mut [u8], mss: u16) -> Option<u16> {
    let (&off, &flags) = (segment.get(field::DATA_OFF)?, segment.get(field::FLAGS)?);
    if flags & FLAG_SYN == 0 {
        return None;
    }
    let header_len = usize::from(off >> 4) * 4;
    let options = segment.get(field::OPTIONS..header_len)?;
    let mut i = 0;
    let at = loop {
        match *options.get(i)? {
            OPT_END => return None,
            OPT_NOP => i += 1,
            kind => {
                let len = usize::from(*options.get(i + 1)?);
                if len < 2 {
                    return None;
                }
                if kind == OPT_MSS {
                    if len != 4 || i + 4 > options.len() {
                        return None;
                    }
                    break field::OPTIONS + i + 2;
                }
                i += len;
            }
        }
    };
    let old = u16::from_be_bytes([*segment.get(at)?, *segment.get(at + 1)?]);
    if old <= mss {
        return None;
    }
    segment
        .get_mut(at..at + 2)?
        .copy_from_slice(&mss.to_be_bytes());
    let sum = segment.get_mut(field::CHECKSUM)?;
    // The checksum sums 16-bit words from the header's start: an MSS at an odd offset
    // straddles two of them, which is the same sum with its bytes swapped (RFC 1071 2.B).
    let (o, n) = if at % 2 == 0 {
        (old, mss)
    } else {
        (old.swap_bytes(), mss.swap_bytes())
    };
    let c = checksum::update(u16::from_be_bytes([sum[0], sum[1]]), o, n);
    sum.copy_from_slice(&c.to_be_bytes());
    Some(mss)
}

/// `clamp_mss` on the TCP segment of an IPv4 `packet` (a whole datagram or its first
/// fragment), fixing its checksum; the new MSS if it changed.
pub fn clamp_mss_ipv4(packet: &mut [u8], mss: u16) -> Option<u16> {
    let p = super::ipv4::Packet::new_checked(&*packet).ok()?;
    if p.protocol() != super::ipv4::PROTO_TCP || p.flags_frag() & super::ipv4::FRAG_OFFSET_MASK != 0
    {
        return None;
    }
    let (ihl, total) = (p.header_len(), p.total_len());
    clamp_mss(packet.get_mut(ihl..total)?, mss)
}

/// `clamp_mss` on the TCP segment of an IPv6 `packet` (found past its extension headers; not
/// in a fragment), fixing its checksum; the new MSS if it changed.
pub fn clamp_mss_ipv6(packet: &mut [u8], mss: u16) -> Option<u16> {
    let p = super::ipv6::Packet::new_checked(&*packet).ok()?;
    let u = p.upper_layer().ok()?;
    if u.protocol != super::ipv6::NEXT_TCP || u.fragment {
        return None;
    }
    let total = p.total_len();
    clamp_mss(packet.get_mut(u.offset..total)?, mss)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// A TCP segment with `flags` and these options, its checksum right for the pseudo header
    /// of 10.1.0.10 -> 10.2.0.10.
    fn segment(flags: u8, options: &[u8]) -> Vec<u8> {
        let mut s = vec![0u8; 20];
        s[0..2].copy_from_slice(&40000u16.to_be_bytes());
        s[2..4].copy_from_slice(&80u16.to_be_bytes());
        s[12] = ((20 + options.len()) / 4 * 16) as u8;
        s[13] = flags;
        s.extend_from_slice(options);
        s.extend_from_slice(b"data");
        let sum = pseudo_sum(&s);
        s[16..18].copy_from_slice(&(!sum).to_be_bytes());
        s
    }

    fn pseudo_sum(s: &[u8]) -> u16 {
        let mut p = Vec::new();
        p.extend_from_slice(&Ipv4Addr::new(10, 1, 0, 10).octets());
        p.extend_from_slice(&Ipv4Addr::new(10, 2, 0, 10).octets());
        p.extend_from_slice(&[0, 6]);
        p.extend_from_slice(&(s.len() as u16).to_be_bytes());
        p.extend_from_slice(s);
        checksum::sum(&p)
    }

    const LINUX_SYN_OPTIONS: [u8; 20] = [
        2, 4, 0x05, 0xb4, // MSS 1460
        4, 2, // SACK permitted
        8, 10, 0, 0, 0, 1, 0, 0, 0, 0, // timestamps
        1, // NOP
        3, 3, 7, // window scale
    ];

    #[test]
    fn a_syn_s_mss_is_lowered_and_its_checksum_stays_right() {
        let mut s = segment(FLAG_SYN, &LINUX_SYN_OPTIONS);
        assert_eq!(clamp_mss(&mut s, 1350), Some(1350));
        assert_eq!(&s[22..24], &1350u16.to_be_bytes());
        assert_eq!(pseudo_sum(&s), 0xffff, "the checksum verifies");
        // Already at or below: untouched.
        let before = s.clone();
        assert_eq!(clamp_mss(&mut s, 1400), None);
        assert_eq!(s, before);
        // A SYN-ACK too; after NOPs.
        let mut sa = segment(FLAG_SYN | 0x10, &[1, 1, 2, 4, 0x05, 0xb4, 1, 1]);
        assert_eq!(clamp_mss(&mut sa, 1000), Some(1000));
        assert_eq!(pseudo_sum(&sa), 0xffff);
        // At an odd offset (after a window scale option): the checksum still right.
        let mut odd = segment(FLAG_SYN, &[3, 3, 7, 2, 4, 0x05, 0xb4, 0]);
        assert_eq!(clamp_mss(&mut odd, 1200), Some(1200));
        assert_eq!(&odd[25..27], &1200u16.to_be_bytes());
        assert_eq!(pseudo_sum(&odd), 0xffff);
        // An MSS option running past the header: not touched.
        let mut past = segment(FLAG_SYN, &[1, 1, 2, 4]);
        let before = past.clone();
        assert_eq!(clamp_mss(&mut past, 536), None);
        assert_eq!(past, before);
    }

    #[test]
    fn anything_else_is_left_alone() {
        // Not a SYN.
        let mut ack = segment(0x10, &[2, 4, 0x05, 0xb4]);
        let before = ack.clone();
        assert_eq!(clamp_mss(&mut ack, 536), None);
        assert_eq!(ack, before);
        // No MSS option, a malformed option, options beyond the segment.
        for opts in [
            &[1u8, 1, 1, 0][..],
            &[3, 0, 0, 0],
            &[2, 3, 5, 0],
            &[8, 40, 0, 0],
        ] {
            let mut s = segment(FLAG_SYN, opts);
            let before = s.clone();
            assert_eq!(clamp_mss(&mut s, 536), None, "{opts:?}");
            assert_eq!(s, before);
        }
        let mut short = segment(FLAG_SYN, &LINUX_SYN_OPTIONS);
        short.truncate(25);
        assert_eq!(clamp_mss(&mut short, 536), None);
        assert_eq!(clamp_mss(&mut [], 536), None);
    }
}
