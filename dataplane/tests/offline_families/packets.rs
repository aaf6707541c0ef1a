//! The packets of tests/offline_families.rs: the hosts' UDP, as sent and as a router passes
//! it on, Ethernet around it, and the ESP padding each size takes.

use super::{HOPS, SIZES};
use dataplane::wire::{checksum, ethernet, ipv4, ipv6};
use std::net::IpAddr;

/// Inner total lengths: every padding (1..4 bytes of payload), two middling sizes, and the
/// tunnel's MTU less one, the MTU, and one over (dropped outbound; the last, `SIZES - 1`).
pub fn total_len(mtu: usize, v6: bool, k: usize) -> usize {
    let min = if v6 { 48 } else { 28 };
    let lens: [usize; SIZES] = [
        min + 1,
        min + 2,
        min + 3,
        min + 4,
        200,
        777,
        mtu - 1,
        mtu,
        mtu + 1,
    ];
    lens[k]
}

/// UDP 12345 -> 5678 (no dissector of tshark's claims them) from `src` to `dst`, `len` bytes in
/// all, hop count `HOPS`, the payload a pattern of `seed`. The IPv6 UDP checksum is set, as it
/// must be; the IPv4 one is left 0.
pub fn packet(src: IpAddr, dst: IpAddr, len: usize, seed: usize) -> Vec<u8> {
    let hl = if src.is_ipv6() { 40 } else { 20 };
    let payload: Vec<u8> = (0..len - hl - 8).map(|j| (seed * 7 + j) as u8).collect();
    let mut udp = vec![0x30, 0x39, 0x16, 0x2e];
    udp.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(&payload);
    let mut p = vec![0u8; hl];
    match (src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let h = ipv4::Repr {
                tos: 0,
                ident: seed as u16,
                dont_frag: true,
                ttl: HOPS,
                protocol: ipv4::PROTO_UDP,
                src,
                dst,
                payload_len: udp.len(),
            };
            h.emit((&mut p[..]).try_into().unwrap());
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let h = ipv6::Repr {
                traffic_class: 0,
                next_header: ipv6::NEXT_UDP,
                hop_limit: HOPS,
                src,
                dst,
                payload_len: udp.len(),
            };
            h.emit((&mut p[..]).try_into().unwrap());
            let c = !fold(
                ipv6::pseudo_header_sum(&src, &dst, udp.len() as u32, ipv6::NEXT_UDP)
                    + u64::from(checksum::sum(&udp)),
            );
            udp[6..8].copy_from_slice(&if c == 0 { 0xffff } else { c }.to_be_bytes());
        }
        _ => unreachable!("one family"),
    }
    p.extend_from_slice(&udp);
    assert_eq!(p.len(), len);
    p
}

/// A ones'-complement sum folded to 16 bits.
pub fn fold(sum: u64) -> u16 {
    checksum::fold_words(&[
        (sum >> 48) as u16,
        (sum >> 32) as u16,
        (sum >> 16) as u16,
        sum as u16,
    ])
}

/// `p` as a router passes it on: TTL or hop limit one less (the IPv4 checksum recomputed
/// from scratch, not by the gateway's incremental update).
pub fn hop(p: &[u8]) -> Vec<u8> {
    let mut p = p.to_vec();
    if p[0] >> 4 == 4 {
        let mut h = ipv4::Packet::new_checked(&mut p[..]).unwrap();
        h.set_ttl(HOPS - 1);
        h.fill_checksum();
    } else {
        p[7] = HOPS - 1;
    }
    p
}

pub fn eth(dst: [u8; 6], src: [u8; 6], ip: &[u8]) -> Vec<u8> {
    let ethertype = if ip[0] >> 4 == 4 {
        ethernet::ETHERTYPE_IPV4
    } else {
        ethernet::ETHERTYPE_IPV6
    };
    let mut f = vec![0u8; 14];
    let e = ethernet::Repr {
        dst: ethernet::Mac(dst),
        src: ethernet::Mac(src),
        ethertype,
    };
    e.emit((&mut f[..]).try_into().unwrap());
    f.extend_from_slice(ip);
    f
}

/// The source (or, `dst`, destination) address of IP packet `p`.
pub fn addr(p: &[u8], dst: bool) -> IpAddr {
    if p[0] >> 4 == 4 {
        let at = if dst { 16 } else { 12 };
        IpAddr::from(<[u8; 4]>::try_from(&p[at..at + 4]).unwrap())
    } else {
        let at = if dst { 24 } else { 8 };
        IpAddr::from(<[u8; 16]>::try_from(&p[at..at + 16]).unwrap())
    }
}

/// The ESP padding RFC 4303 section 2.4 asks for: bytes 1, 2, 3, ..., the fewest that end the
/// trailer on a 4-byte boundary (AES-GCM has no block size of its own).
pub fn padding(inner_len: usize) -> Vec<u8> {
    (1..=((4 - (inner_len + 2) % 4) % 4) as u8).collect()
}
