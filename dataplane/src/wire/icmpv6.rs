//! ICMPv6 (RFC 4443) and neighbor discovery's solicitations and advertisements (RFC 4861):
//! the checksum over the IPv6 pseudo-header, echo, NS/NA with their link-layer address
//! options, and the errors a router sends (Packet Too Big, Time Exceeded).

use super::ethernet::Mac;
use super::{checksum, ipv6, Result, WireError};
use std::net::Ipv6Addr;

/// Where each field of an ICMPv6 message lies; neighbor discovery's after the first four.
pub mod field {
    pub type Field = core::ops::Range<usize>;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    /// Echo: identifier and sequence number; errors: the MTU or unused; NA: the flags.
    pub const REST: Field = 4..8;
    pub const ND_FLAGS: usize = 4;
    pub const ND_TARGET: Field = 8..24;
    pub const ND_OPTIONS: usize = 24;
}

pub const TYPE_DEST_UNREACHABLE: u8 = 1;
pub const TYPE_PACKET_TOO_BIG: u8 = 2;
pub const TYPE_TIME_EXCEEDED: u8 = 3;
pub const TYPE_PARAM_PROBLEM: u8 = 4;
pub const TYPE_ECHO_REQUEST: u8 = 128;
pub const TYPE_ECHO_REPLY: u8 = 129;
pub const TYPE_NEIGHBOR_SOLICIT: u8 = 135;
pub const TYPE_NEIGHBOR_ADVERT: u8 = 136;
/// Time Exceeded's code for a hop limit that reached 0 in transit.
pub const CODE_HOP_LIMIT: u8 = 0;
/// Neighbor discovery's option types for link-layer addresses (RFC 4861 section 4.6.1).
pub const OPT_SOURCE_LLADDR: u8 = 1;
pub const OPT_TARGET_LLADDR: u8 = 2;
/// The flags of a Neighbor Advertisement (RFC 4861 section 4.4).
pub const NA_ROUTER: u8 = 0x80;
pub const NA_SOLICITED: u8 = 0x40;
pub const NA_OVERRIDE: u8 = 0x20;
/// The hop limit every ND message is sent with and must arrive with (RFC 4861 section 7.1).
pub const ND_HOP_LIMIT: u8 = 255;

/// The checksum field's value for `msg` (its checksum field zeroed) between `src` and `dst`.
pub fn checksum(src: &Ipv6Addr, dst: &Ipv6Addr, msg: &[u8]) -> u16 {
    let len = u32::try_from(msg.len()).unwrap_or(u32::MAX);
    let pseudo = ipv6::pseudo_header_sum(src, dst, len, ipv6::NEXT_ICMPV6);
    !checksum::fold_words(&[checksum::fold64(pseudo), checksum::sum(msg)])
}

/// Whether `msg`, checksum included, sums to all ones with its pseudo-header.
pub fn verify(src: &Ipv6Addr, dst: &Ipv6Addr, msg: &[u8]) -> bool {
    let len = u32::try_from(msg.len()).unwrap_or(u32::MAX);
    let pseudo = ipv6::pseudo_header_sum(src, dst, len, ipv6::NEXT_ICMPV6);
    checksum::fold_words(&[checksum::fold64(pseudo), checksum::sum(msg)]) == 0xffff
}

/// Fills the checksum of a message at least 4 bytes long; false if it is shorter.
pub fn fill_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, msg: &mut [u8]) -> bool {
    if msg.len() < field::REST.start {
        return false;
    }
    msg[field::CHECKSUM].fill(0);
    let c = checksum(src, dst, msg);
    msg[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    true
}

/// Turns an echo request from `src` to `dst` (the whole ICMPv6 message, its checksum
/// verified here) into its reply in place. The reply goes from `dst` back to `src`, so the
/// pseudo-header sums the same and only the type's change needs accounting for. False,
/// nothing changed, if `msg` is not a well-formed echo request.
pub fn echo_request_to_reply(src: &Ipv6Addr, dst: &Ipv6Addr, msg: &mut [u8]) -> bool {
    if msg.len() < field::REST.end
        || msg[field::TYPE] != TYPE_ECHO_REQUEST
        || msg[field::CODE] != 0
        || !verify(src, dst, msg)
    {
        return false;
    }
    let old = u16::from_be_bytes([msg[field::TYPE], msg[field::CODE]]);
    msg[field::TYPE] = TYPE_ECHO_REPLY;
    let new = u16::from_be_bytes([msg[field::TYPE], msg[field::CODE]]);
    let sum = &mut msg[field::CHECKSUM];
    let c = checksum::update(u16::from_be_bytes([sum[0], sum[1]]), old, new);
    sum.copy_from_slice(&c.to_be_bytes());
    true
}

/// A Neighbor Solicitation or Advertisement (RFC 4861 sections 4.3 and 4.4) with the one
/// option a gateway on Ethernet needs: the sender's (NS) or target's (NA) link-layer address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdRepr {
    Solicit {
        target: Ipv6Addr,
        source_mac: Option<Mac>,
    },
    Advert {
        /// `NA_ROUTER`, `NA_SOLICITED`, `NA_OVERRIDE`.
        flags: u8,
        target: Ipv6Addr,
        target_mac: Option<Mac>,
    },
}

impl NdRepr {
    /// Parses an NS or NA message (checksum and hop limit are the caller's to check):
    /// code 0, at least 24 bytes, a target that is not multicast, and options each of a
    /// non-zero length that fits (RFC 4861 sections 7.1.1 and 7.1.2). Unknown options are
    /// skipped; a link-layer address option of another length than Ethernet's is malformed.
    pub fn parse(msg: &[u8]) -> Result<NdRepr> {
        if msg.len() < field::ND_OPTIONS {
            return Err(WireError::Truncated);
        }
        let kind = msg[field::TYPE];
        if !matches!(kind, TYPE_NEIGHBOR_SOLICIT | TYPE_NEIGHBOR_ADVERT) || msg[field::CODE] != 0 {
            return Err(WireError::Malformed);
        }
        let mut t = [0u8; 16];
        t.copy_from_slice(&msg[field::ND_TARGET]);
        let target = Ipv6Addr::from(t);
        if target.is_multicast() {
            return Err(WireError::Malformed);
        }
        let wanted = if kind == TYPE_NEIGHBOR_SOLICIT {
            OPT_SOURCE_LLADDR
        } else {
            OPT_TARGET_LLADDR
        };
        let mut mac = None;
        let mut opts = &msg[field::ND_OPTIONS..];
        while !opts.is_empty() {
            let [ty, len, ..] = *opts else {
                return Err(WireError::Truncated);
            };
            let n = usize::from(len) * 8;
            if n == 0 {
                return Err(WireError::Malformed);
            }
            let opt = opts.get(..n).ok_or(WireError::Truncated)?;
            if ty == wanted {
                let m: [u8; 6] = opt
                    .get(2..8)
                    .filter(|_| n == 8)
                    .and_then(|m| m.try_into().ok())
                    .ok_or(WireError::Malformed)?;
                mac = Some(Mac(m));
            }
            opts = &opts[n..];
        }
        Ok(match kind {
            TYPE_NEIGHBOR_SOLICIT => NdRepr::Solicit {
                target,
                source_mac: mac,
            },
            _ => NdRepr::Advert {
                flags: msg[field::ND_FLAGS] & (NA_ROUTER | NA_SOLICITED | NA_OVERRIDE),
                target,
                target_mac: mac,
            },
        })
    }

    /// The message's length.
    pub fn buffer_len(&self) -> usize {
        let mac = match self {
            NdRepr::Solicit { source_mac: m, .. } | NdRepr::Advert { target_mac: m, .. } => m,
        };
        field::ND_OPTIONS + if mac.is_some() { 8 } else { 0 }
    }

    /// Writes the message into the front of `out` with its checksum for `src` to `dst`;
    /// its length, or `None` if `out` is too short.
    pub fn emit(&self, src: &Ipv6Addr, dst: &Ipv6Addr, out: &mut [u8]) -> Option<usize> {
        let len = self.buffer_len();
        let msg = out.get_mut(..len)?;
        msg.fill(0);
        let (kind, flags, target, mac, opt) = match *self {
            NdRepr::Solicit { target, source_mac } => (
                TYPE_NEIGHBOR_SOLICIT,
                0,
                target,
                source_mac,
                OPT_SOURCE_LLADDR,
            ),
            NdRepr::Advert {
                flags,
                target,
                target_mac,
            } => (
                TYPE_NEIGHBOR_ADVERT,
                flags,
                target,
                target_mac,
                OPT_TARGET_LLADDR,
            ),
        };
        msg[field::TYPE] = kind;
        msg[field::ND_FLAGS] = flags;
        msg[field::ND_TARGET].copy_from_slice(&target.octets());
        if let Some(m) = mac {
            msg[field::ND_OPTIONS] = opt;
            msg[field::ND_OPTIONS + 1] = 1;
            msg[field::ND_OPTIONS + 2..field::ND_OPTIONS + 8].copy_from_slice(&m.0);
        }
        fill_checksum(src, dst, msg);
        Some(len)
    }
}

/// An ICMPv6 error a router sends about a packet it could not forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The next link's MTU (RFC 4443 section 3.2).
    PacketTooBig { mtu: u32 },
    /// RFC 4443 section 3.3 (`CODE_HOP_LIMIT` in transit).
    TimeExceeded { code: u8 },
}

/// The ICMPv6 header of an error, before the invoking packet.
pub const ERROR_HEADER_LEN: usize = 8;

/// The error `kind` from `from` about `packet` (an IPv6 packet, from its header on): a whole
/// IPv6 packet written into `out`, holding as much of the invoking packet as fits in the
/// minimum MTU (RFC 4443 section 2.4 (c)), and its length. `None` for what gets no error
/// (section 2.4 (e)): a malformed packet, one from an unspecified or multicast source, one
/// to a multicast group (but for Packet Too Big), or an ICMPv6 error itself.
pub fn error(
    kind: ErrorKind,
    packet: &[u8],
    from: Ipv6Addr,
    out: &mut [u8; ipv6::MIN_MTU],
) -> Option<usize> {
    let p = ipv6::Packet::new_checked(packet).ok()?;
    let (src, dst) = (p.src(), p.dst());
    if src.is_unspecified() || src.is_multicast() {
        return None;
    }
    let (ty, code, rest) = match kind {
        ErrorKind::PacketTooBig { mtu } => (TYPE_PACKET_TOO_BIG, 0, mtu),
        ErrorKind::TimeExceeded { code } => (TYPE_TIME_EXCEEDED, code, 0),
    };
    if dst.is_multicast() && ty != TYPE_PACKET_TOO_BIG {
        return None;
    }
    // An error about an error, or about what cannot be told from one, gets none.
    let upper = p.upper_layer().ok()?;
    if upper.protocol == ipv6::NEXT_ICMPV6
        && packet.get(upper.offset).is_some_and(|&t| t < 128)
        && !upper.fragment
    {
        return None;
    }
    let quoted = p
        .total_len()
        .min(ipv6::MIN_MTU - ipv6::HEADER_LEN - ERROR_HEADER_LEN);
    let icmp_len = ERROR_HEADER_LEN + quoted;
    let (head, rest_out) = out.split_first_chunk_mut::<{ ipv6::HEADER_LEN }>()?;
    ipv6::Repr {
        traffic_class: 0,
        next_header: ipv6::NEXT_ICMPV6,
        hop_limit: 64,
        src: from,
        dst: src,
        payload_len: icmp_len,
    }
    .emit(head);
    let msg = rest_out.get_mut(..icmp_len)?;
    msg[field::TYPE] = ty;
    msg[field::CODE] = code;
    msg[field::REST].copy_from_slice(&rest.to_be_bytes());
    msg[ERROR_HEADER_LEN..].copy_from_slice(packet.get(..quoted)?);
    fill_checksum(&from, &src, msg);
    Some(ipv6::HEADER_LEN + icmp_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    /// An echo request fe80::1 -> fe80::2 (id 0x1234, seq 1, payload "abcd"). Its checksum,
    /// 0xabb8, was computed independently (Python over the RFC 8200 pseudo-header):
    /// pseudo-header 0xfe81 + 0xfe82 + 12 + 58 = 0x1_fd49, message 0x8000 + 0x1234 + 1 +
    /// 0x6162 + 0x6364 = 0x1_56fb, together folded 0x5447, inverted 0xabb8.
    #[test]
    fn checksum_of_a_known_echo_request() {
        let (s, d) = (a("fe80::1"), a("fe80::2"));
        let mut m = [128u8, 0, 0, 0, 0x12, 0x34, 0, 1, b'a', b'b', b'c', b'd'];
        assert_eq!(checksum(&s, &d, &m), 0xabb8);
        assert!(fill_checksum(&s, &d, &mut m));
        assert_eq!(&m[2..4], &[0xab, 0xb8]);
        assert!(verify(&s, &d, &m));
        assert!(!verify(&d, &a("fe80::3"), &m), "another pseudo-header");
        assert!(echo_request_to_reply(&s, &d, &mut m));
        assert_eq!(m[0], TYPE_ECHO_REPLY);
        assert!(verify(&d, &s, &m), "the reply verifies the other way round");
        assert!(
            !echo_request_to_reply(&d, &s, &mut m),
            "a reply is no request"
        );
        assert!(!echo_request_to_reply(&s, &d, &mut [128, 0, 0]));
    }

    /// An NS resolving 2001:db8:1::1 from 2001:db8:1::10 (MAC 02:00:00:00:01:10) and its NA
    /// answer, byte for byte; the checksums 0x1b09 and 0x0962 were computed independently
    /// (Python over the RFC 8200 pseudo-header).
    #[test]
    fn neighbor_solicitation_and_advertisement_bytes() {
        let (host, gw) = (a("2001:db8:1::10"), a("2001:db8:1::1"));
        let snm = ipv6::solicited_node(&gw);
        let ns = NdRepr::Solicit {
            target: gw,
            source_mac: Some(Mac([2, 0, 0, 0, 1, 0x10])),
        };
        let mut b = [0u8; 40];
        assert_eq!(ns.emit(&host, &snm, &mut b), Some(32));
        let mut want = vec![135u8, 0, 0, 0, 0, 0, 0, 0];
        want.extend_from_slice(&gw.octets());
        want.extend_from_slice(&[1, 1, 2, 0, 0, 0, 1, 0x10]);
        want[2..4].copy_from_slice(&[0x1b, 0x09]);
        assert_eq!(&b[..32], &want[..]);
        assert!(verify(&host, &snm, &b[..32]));
        assert_eq!(NdRepr::parse(&b[..32]), Ok(ns));

        let na = NdRepr::Advert {
            flags: NA_ROUTER | NA_SOLICITED | NA_OVERRIDE,
            target: gw,
            target_mac: Some(Mac([2, 0, 0, 0, 1, 1])),
        };
        assert_eq!(na.emit(&gw, &host, &mut b), Some(32));
        assert_eq!(&b[..8], &[136, 0, 0x09, 0x62, 0xe0, 0, 0, 0]);
        assert_eq!(&b[24..32], &[2, 1, 2, 0, 0, 0, 1, 1]);
        assert!(verify(&gw, &host, &b[..32]));
        assert_eq!(NdRepr::parse(&b[..32]), Ok(na));
        // Without an option (a DAD probe's NS, say), and with an unknown option skipped.
        let bare = NdRepr::Solicit {
            target: gw,
            source_mac: None,
        };
        assert_eq!(bare.emit(&host, &snm, &mut b), Some(24));
        assert_eq!(NdRepr::parse(&b[..24]), Ok(bare));
        b[24..32].copy_from_slice(&[14, 1, 9, 9, 9, 9, 9, 9]);
        assert_eq!(NdRepr::parse(&b[..32]), Ok(bare));
    }

    #[test]
    fn malformed_neighbor_discovery_is_refused() {
        let gw = a("2001:db8:1::1");
        let mut b = [0u8; 32];
        NdRepr::Solicit {
            target: gw,
            source_mac: Some(Mac([2, 0, 0, 0, 1, 0x10])),
        }
        .emit(&gw, &gw, &mut b)
        .unwrap();
        let bad = |edit: &dyn Fn(&mut [u8; 32]), len: usize| {
            let mut m = b;
            edit(&mut m);
            NdRepr::parse(&m[..len])
        };
        assert_eq!(bad(&|_| {}, 23), Err(WireError::Truncated));
        assert_eq!(bad(&|m| m[1] = 1, 32), Err(WireError::Malformed), "code");
        assert_eq!(
            bad(&|m| m[25] = 0, 32),
            Err(WireError::Malformed),
            "zero-length option"
        );
        assert_eq!(
            bad(&|m| m[25] = 2, 32),
            Err(WireError::Truncated),
            "option past the end"
        );
        assert_eq!(bad(&|_| {}, 27), Err(WireError::Truncated));
        assert_eq!(
            bad(&|m| m[8] = 0xff, 32),
            Err(WireError::Malformed),
            "multicast target"
        );
        assert_eq!(
            bad(&|m| m[0] = 128, 32),
            Err(WireError::Malformed),
            "not ND"
        );
    }

    /// A 1500-byte packet gets a Packet Too Big of exactly 1280 bytes quoting its first 1232;
    /// a short one is quoted whole; errors, multicast and unspecified sources get none.
    #[test]
    fn errors_quote_what_fits_in_the_minimum_mtu() {
        let (host, far, gw) = (a("2001:db8:1::10"), a("2001:db8:2::10"), a("2001:db8:1::1"));
        let packet = |next: u8, src: Ipv6Addr, dst: Ipv6Addr, len: usize| {
            let mut p = vec![0u8; ipv6::HEADER_LEN];
            ipv6::Repr {
                traffic_class: 0,
                next_header: next,
                hop_limit: 1,
                src,
                dst,
                payload_len: len,
            }
            .emit(p.as_mut_slice().try_into().unwrap());
            p.extend((0..len).map(|i| i as u8));
            p
        };
        let mut out = [0u8; ipv6::MIN_MTU];
        let big = packet(ipv6::NEXT_UDP, host, far, 1460);
        let n = error(ErrorKind::PacketTooBig { mtu: 1400 }, &big, gw, &mut out).unwrap();
        assert_eq!(n, 1280);
        let ip = ipv6::Packet::new_checked(&out[..n]).unwrap();
        assert_eq!((ip.src(), ip.dst(), ip.next_header()), (gw, host, 58));
        let icmp = &out[40..n];
        assert_eq!(&icmp[..2], &[2, 0]);
        assert_eq!(&icmp[4..8], &1400u32.to_be_bytes());
        assert_eq!(&icmp[8..], &big[..1232]);
        assert!(verify(&gw, &host, icmp));

        let small = packet(ipv6::NEXT_UDP, host, far, 20);
        let te = ErrorKind::TimeExceeded {
            code: CODE_HOP_LIMIT,
        };
        let n = error(te, &small, gw, &mut out).unwrap();
        assert_eq!(n, 40 + 8 + 60);
        assert_eq!(&out[40..44], &[3, 0, out[42], out[43]]);
        assert_eq!(&out[48..n], &small[..]);
        assert!(verify(&gw, &host, &out[40..n]));

        let mut icmp_err = packet(ipv6::NEXT_ICMPV6, host, far, 8);
        icmp_err[40] = TYPE_DEST_UNREACHABLE;
        assert_eq!(error(te, &icmp_err, gw, &mut out), None);
        icmp_err[40] = TYPE_ECHO_REQUEST;
        assert!(
            error(te, &icmp_err, gw, &mut out).is_some(),
            "an echo gets one"
        );
        let group = packet(ipv6::NEXT_UDP, host, a("ff0e::1"), 8);
        assert_eq!(error(te, &group, gw, &mut out), None);
        assert!(error(ErrorKind::PacketTooBig { mtu: 1280 }, &group, gw, &mut out).is_some());
        let unspec = packet(ipv6::NEXT_UDP, Ipv6Addr::UNSPECIFIED, far, 8);
        assert_eq!(error(te, &unspec, gw, &mut out), None);
        assert_eq!(error(te, &[0x60, 0], gw, &mut out), None);
    }
}
