//! ESP with an IPv6 outer header (next header 50), checked against the `aes-gcm` crate.

use super::outer::TunnelEncap;
use super::tests::{inbound, ipv6_packet, oracle_open, outbound, trailer};
use super::*;
use crate::esp::crypto::Algorithm;
use crate::packet::{PacketBuf, VecBuf};
use crate::testkit::{inner_packet, keymat, tunnel};
use channel::Dscp;

/// A tunnel 2001:db8:ffff::1 -> 2001:db8:ffff::2, hop limit 17.
fn tunnel6() -> TunnelEncap {
    let mut t = tunnel(None);
    t.local = "2001:db8:ffff::1".parse().unwrap();
    t.remote = "2001:db8:ffff::2".parse().unwrap();
    t.ttl = 17;
    t
}

/// The outer IPv6 header's fixed fields and ESP's, then the payload as the oracle opens it.
fn check_outer6(out: &[u8], tc: u8, inner: &[u8], next_header: u8) {
    let pad = crate::wire::esp::pad_len(inner.len());
    assert_eq!(out.len(), 40 + 8 + 8 + inner.len() + pad + 2 + 16);
    assert_eq!(&out[0..4], &[0x60 | tc >> 4, tc << 4, 0, 0]);
    assert_eq!(
        usize::from(u16::from_be_bytes([out[4], out[5]])),
        out.len() - 40
    );
    assert_eq!(
        (out[6], out[7]),
        (50, 17),
        "next header ESP, the tunnel's hop limit"
    );
    let a = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap().octets();
    assert_eq!(&out[8..24], &a("2001:db8:ffff::1"));
    assert_eq!(&out[24..40], &a("2001:db8:ffff::2"));
    assert_eq!(&out[40..48], &[0, 0, 0x10, 1, 0, 0, 0, 1]);
    assert_eq!(
        &out[48..56],
        &[0, 0, 0, 0, 0, 0, 0, 1],
        "IV: the sequence number"
    );
    let alg = Algorithm::Aes128Gcm;
    let nonce = [&keymat(alg, 0).salt()[..], &out[48..56]].concat();
    let pt = oracle_open(alg, &nonce, &out[40..48], &out[56..]).expect("the oracle verifies");
    assert_eq!(pt, trailer(inner, next_header));
}

#[test]
fn ipv4_and_ipv6_in_ipv6_against_the_oracle() {
    let inner4 = inner_packet(64, 0xb9, true);
    let mut sa = outbound(Algorithm::Aes128Gcm, false, tunnel6());
    let mut buf = VecBuf::new(&inner4);
    encap(&mut sa, &mut buf).unwrap();
    check_outer6(buf.data(), 0xb9, &inner4, 4);

    let inner6 = ipv6_packet(30);
    let mut sa = outbound(Algorithm::Aes128Gcm, false, tunnel6());
    let mut buf = VecBuf::new(&inner6);
    encap(&mut sa, &mut buf).unwrap();
    check_outer6(buf.data(), 0x2e, &inner6, 41);
    assert_eq!(
        sa.remote(),
        "2001:db8:ffff::2".parse::<std::net::IpAddr>().unwrap()
    );
}

#[test]
fn dscp_set_keeps_ecn_in_the_traffic_class() {
    let mut t = tunnel6();
    t.dscp = Dscp::Set(10);
    let inner = inner_packet(40, 0xb9, true);
    let mut sa = outbound(Algorithm::Aes128Gcm, false, t);
    let mut buf = VecBuf::new(&inner);
    encap(&mut sa, &mut buf).unwrap();
    check_outer6(buf.data(), 10 << 2 | 0x01, &inner, 4);
}

/// The tunnel MTU leaves room for 40 bytes of IPv6 header, 20 more than IPv4's.
#[test]
fn the_tunnel_mtu_counts_the_ipv6_header() {
    let sa4 = outbound(Algorithm::Aes128Gcm, false, tunnel(None));
    let sa6 = outbound(Algorithm::Aes128Gcm, false, tunnel6());
    let (m4, m6) = (encap::tunnel_mtu(&sa4, 1500), encap::tunnel_mtu(&sa6, 1500));
    assert_eq!(m4 - m6, 20);
    let inner = inner_packet(m6, 0, true);
    let mut sa = outbound(Algorithm::Aes128Gcm, false, tunnel6());
    let mut buf = VecBuf::new(&inner);
    encap::prepare(&mut sa, &mut buf, 14, 1500).unwrap();
    assert!(buf.len() <= 14 + 1500);
    let inner = inner_packet(m6 + 4, 0, true);
    let mut buf = VecBuf::new(&inner);
    assert_eq!(
        encap::prepare(&mut sa, &mut buf, 14, 1500).map(|_| ()),
        Err(EncapError::ExceedsMtu)
    );
}

/// What the IPv6 template writes, the decapsulation opens from 40 bytes in.
#[test]
fn decap_after_an_ipv6_outer_header() {
    let inner = inner_packet(100, 0, true);
    let mut sa = outbound(Algorithm::Aes128Gcm, false, tunnel6());
    let mut buf = VecBuf::new(&inner);
    encap(&mut sa, &mut buf).unwrap();
    let mut isa = inbound(Algorithm::Aes128Gcm, false, false, 64);
    decap(&mut isa, &mut buf, 40).unwrap();
    assert_eq!(buf.data(), &inner[..]);
}
