//! IKE datagrams between the wire and the control process: those the workers punt (UDP 500,
//! and UDP 4500 or a NAT-T port behind the four-zero-byte non-ESP marker, RFC 3948 section
//! 2.2) become `channel::Datagram`s with the marker removed, and the control's datagrams
//! become IPv4/UDP packets (the marker put back on a NAT-T port) that the workers route.

use crate::wire::{checksum, ethernet, ipv4, udp};
use channel::Datagram;
use std::net::Ipv4Addr;

/// The non-ESP marker in front of IKE on the NAT-T port.
const NON_ESP_MARKER: [u8; 4] = [0; 4];
/// RFC 7296 section 2: IKE uses UDP 500, and 4500 once NAT-T floats.
pub const IKE_PORT: u16 = 500;

/// The datagram a punted frame (Ethernet, IPv4, UDP) carries, received on `port`.
pub fn datagram_of(frame: &[u8], port: u16) -> Option<Datagram<'_>> {
    let ip = ipv4::Packet::new_checked(frame.get(ethernet::HEADER_LEN..)?).ok()?;
    if ip.protocol() != ipv4::PROTO_UDP || ip.is_fragment() {
        return None;
    }
    let (src, dst) = (ip.src(), ip.dst());
    let start = ethernet::HEADER_LEN + ip.header_len();
    let end = ethernet::HEADER_LEN + ip.total_len();
    let u = udp::Datagram::new_checked(frame.get(start..end)?).ok()?;
    let (sport, dport) = (u.src_port(), u.dst_port());
    let body = frame.get(start + udp::HEADER_LEN..start + u.len())?;
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
    ipv4::MIN_HEADER_LEN + udp::HEADER_LEN + marker_len(d) + d.payload.len()
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

/// Writes `d` as an IPv4/UDP packet (TTL 64, UDP checksum filled) into `out`, which is
/// `packet_len(d)` bytes; `false` if it is not, or the packet would exceed 65535 bytes.
pub fn emit(d: &Datagram<'_>, out: &mut [u8]) -> bool {
    let len = packet_len(d);
    if out.len() != len || len > usize::from(u16::MAX) {
        return false;
    }
    let (ip_h, rest) = out.split_at_mut(ipv4::MIN_HEADER_LEN);
    let udp_len = rest.len();
    let Some(h) = ip_h.first_chunk_mut() else {
        return false;
    };
    ipv4::Repr {
        tos: 0,
        ident: 0,
        dont_frag: false,
        ttl: 64,
        protocol: ipv4::PROTO_UDP,
        src: d.src,
        dst: d.dst,
        payload_len: udp_len,
    }
    .emit(h);
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
    let c = udp_checksum(d.src, d.dst, rest);
    rest[6..8].copy_from_slice(&c.to_be_bytes());
    true
}

/// RFC 768: over the pseudo-header and the datagram; 0 is sent as 0xffff.
fn udp_checksum(src: Ipv4Addr, dst: Ipv4Addr, datagram: &[u8]) -> u16 {
    let (s, d) = (u32::from(src), u32::from(dst));
    let pseudo = [
        (s >> 16) as u16,
        s as u16,
        (d >> 16) as u16,
        d as u16,
        u16::from(ipv4::PROTO_UDP),
        datagram.len() as u16,
    ];
    let sum = checksum::fold_words(&[checksum::fold_words(&pseudo), checksum::sum(datagram)]);
    match !sum {
        0 => 0xffff,
        c => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(packet: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; ethernet::HEADER_LEN];
        f[12..14].copy_from_slice(&ethernet::ETHERTYPE_IPV4.to_be_bytes());
        f.extend_from_slice(packet);
        f
    }

    /// A NAT keepalive leaves as its one 0xff byte, no marker (RFC 3948 section 2.3).
    #[test]
    fn a_nat_keepalive_goes_without_the_marker() {
        let d = Datagram {
            port: 1,
            src: Ipv4Addr::new(192, 0, 2, 1),
            dst: Ipv4Addr::new(192, 0, 2, 2),
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
                src: Ipv4Addr::new(192, 0, 2, 1),
                dst: Ipv4Addr::new(192, 0, 2, 2),
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
            let s = (u32::from(d.src), u32::from(d.dst));
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
            src: Ipv4Addr::new(192, 0, 2, 1),
            dst: Ipv4Addr::new(192, 0, 2, 2),
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
}
