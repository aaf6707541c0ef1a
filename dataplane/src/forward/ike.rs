//! IKE datagrams between the wire and the control process: those the workers punt (UDP 500,
//! and UDP 4500 or a NAT-T port behind the four-zero-byte non-ESP marker, RFC 3948 section
//! 2.2), over IPv4 or IPv6, become `channel::Datagram`s with the marker removed, and the
//! control's datagrams become IPv4/UDP or IPv6/UDP packets (the marker put back on a NAT-T
//! port) that the workers route.

use crate::wire::{ethernet, ipv4, ipv6, udp};
use channel::Datagram;
use std::net::IpAddr;

/// The non-ESP marker in front of IKE on the NAT-T port.
const NON_ESP_MARKER: [u8; 4] = [0; 4];
/// RFC 7296 section 2: IKE uses UDP 500, and 4500 once NAT-T floats.
pub const IKE_PORT: u16 = 500;
/// The hop limit (TTL) of what the gateway originates.
const HOP_LIMIT: u8 = 64;

/// The datagram a punted frame (Ethernet, then IPv4 or IPv6, then UDP) carries, received on
/// `port`; `None` if it is no IKE datagram (or, over IPv6, its UDP checksum is wrong).
pub fn datagram_of(frame: &[u8], port: u16) -> Option<Datagram<'_>> {
    let eth = ethernet::Frame::new_checked(frame).ok()?;
    let packet = frame.get(ethernet::HEADER_LEN..)?;
    let (src, dst, udp_bytes) = match eth.ethertype() {
        ethernet::ETHERTYPE_IPV4 => {
            let ip = ipv4::Packet::new_checked(packet).ok()?;
            if ip.protocol() != ipv4::PROTO_UDP || ip.is_fragment() {
                return None;
            }
            let udp_bytes = packet.get(ip.header_len()..ip.total_len())?;
            (IpAddr::V4(ip.src()), IpAddr::V4(ip.dst()), udp_bytes)
        }
        ethernet::ETHERTYPE_IPV6 => {
            let ip = ipv6::Packet::new_checked(packet).ok()?;
            let upper = ip.upper_layer().ok()?;
            if upper.protocol != ipv6::NEXT_UDP || upper.fragment {
                return None;
            }
            let udp_bytes = packet.get(upper.offset..ip.total_len())?;
            // IPv6 has no UDP without its checksum (RFC 8200 section 8.1): a zero or wrong
            // one is dropped here, on the main lcore, as the kernel would.
            if !udp::verify6(&ip.src(), &ip.dst(), udp_bytes) {
                return None;
            }
            (IpAddr::V6(ip.src()), IpAddr::V6(ip.dst()), udp_bytes)
        }
        _ => return None,
    };
    let u = udp::Datagram::new_checked(udp_bytes).ok()?;
    let (sport, dport) = (u.src_port(), u.dst_port());
    let body = udp_bytes.get(udp::HEADER_LEN..u.len())?;
    let payload = if dport == IKE_PORT {
        body
    } else {
        body.strip_prefix(&NON_ESP_MARKER[..])?
    };
    Some(Datagram {
        port,
        src,
        dst,
        sport,
        dport,
        payload,
    })
}

/// Bytes `emit` writes for `d`.
pub fn packet_len(d: &Datagram<'_>) -> usize {
    let ip = match d.src {
        IpAddr::V4(_) => ipv4::MIN_HEADER_LEN,
        IpAddr::V6(_) => ipv6::HEADER_LEN,
    };
    ip + udp::HEADER_LEN + marker_len(d) + d.payload.len()
}

/// The marker goes before IKE on a NAT-T port; never before a NAT keepalive (one 0xff byte,
/// RFC 3948 section 2.3, which no IKE message can be).
fn marker_len(d: &Datagram<'_>) -> usize {
    if d.dport == IKE_PORT || d.sport == IKE_PORT || d.payload == [0xff] {
        0
    } else {
        NON_ESP_MARKER.len()
    }
}

/// Writes `d` as an IPv4/UDP or IPv6/UDP packet (TTL or hop limit 64, UDP checksum filled)
/// into `out`, which is `packet_len(d)` bytes; `false` if it is not, if the packet would
/// exceed 65535 bytes, or if its addresses are of two families.
pub fn emit(d: &Datagram<'_>, out: &mut [u8]) -> bool {
    let len = packet_len(d);
    if out.len() != len || len > usize::from(u16::MAX) {
        return false;
    }
    let ip_len = match (d.src, d.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let Some(h) = out.first_chunk_mut() else {
                return false;
            };
            ipv4::Repr {
                tos: 0,
                ident: 0,
                dont_frag: false,
                ttl: HOP_LIMIT,
                protocol: ipv4::PROTO_UDP,
                src,
                dst,
                payload_len: len - ipv4::MIN_HEADER_LEN,
            }
            .emit(h);
            ipv4::MIN_HEADER_LEN
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let Some(h) = out.first_chunk_mut() else {
                return false;
            };
            ipv6::Repr {
                traffic_class: 0,
                next_header: ipv6::NEXT_UDP,
                hop_limit: HOP_LIMIT,
                src,
                dst,
                payload_len: len - ipv6::HEADER_LEN,
            }
            .emit(h);
            ipv6::HEADER_LEN
        }
        _ => return false,
    };
    let rest = &mut out[ip_len..];
    let (udp_h, body) = rest.split_at_mut(udp::HEADER_LEN);
    let Some(h) = udp_h.first_chunk_mut() else {
        return false;
    };
    udp::Repr {
        src_port: d.sport,
        dst_port: d.dport,
        payload_len: body.len(),
    }
    .emit(h);
    let m = marker_len(d);
    body[..m].copy_from_slice(&NON_ESP_MARKER[..m]);
    body[m..].copy_from_slice(d.payload);
    let Some(c) = udp::checksum(d.src, d.dst, rest) else {
        return false;
    };
    rest[udp::field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const V4_SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const V4_DST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    fn frame(packet: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; ethernet::HEADER_LEN];
        let ethertype = match packet[0] >> 4 {
            6 => ethernet::ETHERTYPE_IPV6,
            _ => ethernet::ETHERTYPE_IPV4,
        };
        f[12..14].copy_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(packet);
        f
    }

    /// A NAT keepalive leaves as its one 0xff byte, no marker (RFC 3948 section 2.3).
    #[test]
    fn a_nat_keepalive_goes_without_the_marker() {
        let d = Datagram {
            port: 1,
            src: Ipv4Addr::new(192, 0, 2, 1).into(),
            dst: Ipv4Addr::new(192, 0, 2, 2).into(),
            sport: 4500,
            dport: 4500,
            payload: &[0xff],
        };
        let mut out = vec![0u8; packet_len(&d)];
        assert!(emit(&d, &mut out));
        assert_eq!(out.len(), ipv4::MIN_HEADER_LEN + udp::HEADER_LEN + 1);
        assert_eq!(out[out.len() - 1], 0xff);
    }

    #[test]
    fn datagrams_go_out_and_come_back_with_the_marker_only_on_nat_t() {
        for (sport, dport, marker) in [(500, 500, false), (4500, 4500, true), (4500, 31000, true)] {
            let d = Datagram {
                port: 1,
                src: Ipv4Addr::new(192, 0, 2, 1).into(),
                dst: Ipv4Addr::new(192, 0, 2, 2).into(),
                sport,
                dport,
                payload: b"IKE_SA_INIT bytes",
            };
            let mut out = vec![0u8; packet_len(&d)];
            assert!(emit(&d, &mut out));
            let ip = ipv4::Packet::new_checked(&out[..]).unwrap();
            assert!(ip.verify_checksum());
            assert_eq!(ip.total_len(), out.len());
            // The UDP checksum verifies: the sum over pseudo-header and datagram is all ones.
            let body = &out[ipv4::MIN_HEADER_LEN..];
            assert_ne!(body[6..8], [0, 0]);
            let s = (u32::from(V4_SRC), u32::from(V4_DST));
            let pseudo = [
                (s.0 >> 16) as u16,
                s.0 as u16,
                (s.1 >> 16) as u16,
                s.1 as u16,
                17,
                body.len() as u16,
            ];
            let total = checksum::fold_words(&[checksum::fold_words(&pseudo), checksum::sum(body)]);
            assert_eq!(total, 0xffff);
            assert_eq!(body[8..12] == [0, 0, 0, 0], marker, "{sport} {dport}");
            // As the gateway would receive it (swapped), the same datagram.
            let f = frame(&out);
            let back = datagram_of(&f, 1).unwrap();
            assert_eq!(back, d);
        }
        // Not IKE: too short, a fragment, no marker on 4500.
        assert!(datagram_of(&[0u8; 20], 0).is_none());
        let d = Datagram {
            port: 0,
            src: Ipv4Addr::new(192, 0, 2, 1).into(),
            dst: Ipv4Addr::new(192, 0, 2, 2).into(),
            sport: 500,
            dport: 4500,
            payload: &[1, 2, 3, 4, 5],
        };
        let mut out = vec![0u8; packet_len(&d)];
        assert!(emit(&d, &mut out));
        out[ipv4::MIN_HEADER_LEN + udp::HEADER_LEN..][..4].copy_from_slice(&[9, 9, 9, 9]);
        assert!(
            datagram_of(&frame(&out), 0).is_none(),
            "ESP on 4500 is not punted as IKE"
        );
    }

    /// Sums 16-bit big-endian words the long way (the checker independent of `checksum`).
    fn ones_sum(bytes: &[u8]) -> u32 {
        let mut acc: u32 = bytes
            .chunks(2)
            .map(|c| u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0)))
            .sum();
        while acc > 0xffff {
            acc = (acc >> 16) + (acc & 0xffff);
        }
        acc
    }

    #[test]
    fn ipv6_datagrams_go_out_with_a_valid_checksum_and_come_back() {
        let src: Ipv6Addr = "2001:db8:a::1".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8:a::2".parse().unwrap();
        for (sport, dport, marker) in [(500, 500, false), (4500, 4500, true)] {
            let d = Datagram {
                port: 3,
                src: src.into(),
                dst: dst.into(),
                sport,
                dport,
                payload: b"IKE_SA_INIT over IPv6, odd length",
            };
            let mut out = vec![0u8; packet_len(&d)];
            assert!(emit(&d, &mut out));
            let ip = ipv6::Packet::new_checked(&out[..]).unwrap();
            assert_eq!(
                (ip.next_header(), ip.hop_limit(), ip.src(), ip.dst()),
                (ipv6::NEXT_UDP, 64, src, dst)
            );
            assert_eq!(ip.total_len(), out.len());
            // RFC 8200 section 8.1: pseudo-header (addresses, upper-layer length, next header
            // 17) plus the datagram sums to all ones; a zero checksum is not allowed.
            let body = &out[ipv6::HEADER_LEN..];
            assert_ne!(body[6..8], [0, 0]);
            let mut pseudo = Vec::new();
            pseudo.extend_from_slice(&src.octets());
            pseudo.extend_from_slice(&dst.octets());
            pseudo.extend_from_slice(&(body.len() as u32).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, 17]);
            let total = ones_sum(&pseudo) + ones_sum(body);
            let total = (total >> 16) + (total & 0xffff);
            assert_eq!(total, 0xffff, "{sport}");
            assert_eq!(body[8..12] == [0, 0, 0, 0], marker, "{sport} {dport}");
            assert_eq!(datagram_of(&frame(&out), 3).unwrap(), d);
        }
        // Two families in one datagram cannot be written.
        let d = Datagram {
            port: 0,
            src: src.into(),
            dst: V4_DST.into(),
            sport: 500,
            dport: 500,
            payload: b"x",
        };
        let mut out = vec![0u8; packet_len(&d)];
        assert!(!emit(&d, &mut out));
    }

    /// IKE past a destination options header is found; a fragment is not IKE (the peer's IKE
    /// fragmentation, RFC 7383, keeps IPv6 IKE messages whole).
    #[test]
    fn ipv6_extension_headers_are_walked_and_fragments_refused() {
        let d = Datagram {
            port: 0,
            src: "2001:db8:a::2".parse::<Ipv6Addr>().unwrap().into(),
            dst: "2001:db8:a::1".parse::<Ipv6Addr>().unwrap().into(),
            sport: 500,
            dport: 500,
            payload: b"IKE",
        };
        let mut plain = vec![0u8; packet_len(&d)];
        assert!(emit(&d, &mut plain));
        for (ext, found) in [(ipv6::NEXT_DEST_OPTS, true), (ipv6::NEXT_FRAGMENT, false)] {
            // Eight bytes of extension header between the IPv6 header and UDP.
            let mut p = plain[..ipv6::HEADER_LEN].to_vec();
            p[ipv6::field::NEXT_HEADER] = ext;
            let len = (plain.len() - ipv6::HEADER_LEN + 8) as u16;
            p[ipv6::field::LENGTH].copy_from_slice(&len.to_be_bytes());
            // As a fragment header: offset 0, more to come (an atomic fragment would be whole).
            p.extend_from_slice(&[ipv6::NEXT_UDP, 0, 0, 1, 0, 0, 0, 7]);
            p.extend_from_slice(&plain[ipv6::HEADER_LEN..]);
            let f = frame(&p);
            let got = datagram_of(&f, 0);
            assert_eq!(got.is_some(), found, "extension header {ext}");
            if found {
                assert_eq!(got.unwrap().payload, b"IKE");
            }
        }
    }
}
