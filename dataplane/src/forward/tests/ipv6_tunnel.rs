//! IPv6 through the IPv4 tunnels, route-based (RFC 4303 tunnel mode, next header 41): host a
//! (2001:db8:1::10) behind gw1 to host b (2001:db8:2::10) behind gw2, under the same SAs and
//! sequence numbers as the tunnel's IPv4; what is too big, out of hop limit or outside the
//! IPv6 selectors; and one ESP frame opened by the independent `aes-gcm` crate.

use super::ipv6::{a6, frame6};
use super::*;
use crate::wire::{icmpv6, ipv6, tcp};
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, KeyInit};
use channel::RouteVia;
use ipnet::IpNet;

/// The gateways of `gateway` with IPv6 on their LANs, their host a static neighbor, and the
/// far side's IPv6 routed into st0.0.
pub(super) fn with_ipv6(first: bool) -> impl FnOnce(&mut serde_json::Value) {
    move |v| {
        let (own, host, mac, far) = if first {
            (
                "2001:db8:1::1/64",
                "2001:db8:1::10",
                HOST_A,
                "2001:db8:2::/48",
            )
        } else {
            (
                "2001:db8:2::1/64",
                "2001:db8:2::10",
                HOST_B,
                "2001:db8:1::/48",
            )
        };
        v["interfaces"][0]["address6"] = own.into();
        let n = serde_json::json!({"address": host, "mac": mac.to_string()});
        v["neighbors"].as_array_mut().unwrap().push(n);
        let r = serde_json::json!({"prefix": far, "via": "st0.0"});
        v["routes"].as_array_mut().unwrap().push(r);
    }
}

fn gateway6(first: bool, udp: bool) -> Gateway {
    gateway(first, udp, with_ipv6(first))
}

/// UDP from host a to host b, `n` bytes of payload, traffic class 0xb9 (DSCP EF, ECN 1).
pub(super) fn a_to_b6(hop_limit: u8, n: usize) -> Vec<u8> {
    let mut f = frame6(
        GW1_LAN,
        "2001:db8:1::10",
        "2001:db8:2::10",
        hop_limit,
        ipv6::NEXT_UDP,
        &udp_payload(n),
    );
    f[14] = 0x6b;
    f[15] |= 0x90;
    f
}

/// `f` (a frame holding IPv6) with the hop limit it has after `hops` routers.
pub(super) fn after_hops(f: &[u8], hops: u8) -> Vec<u8> {
    let mut f = f.to_vec();
    f[14 + ipv6::field::HOP_LIMIT] -= hops;
    f
}

/// Opens the raw ESP in gw1's frame with the `aes-gcm` crate under gw1's outbound SA
/// (AES-128-GCM, key K1, ESN): the sequence number and the plaintext (inner || padding ||
/// pad length || next header).
fn oracle_open(frame: &[u8]) -> (u64, Vec<u8>) {
    let km = hex::decode(K1).unwrap();
    let (key, salt) = km.split_at(16);
    let esp = &frame[14 + 20..];
    assert_eq!(&esp[0..4], &0x1001u32.to_be_bytes(), "gw1's outbound SPI");
    let iv: [u8; 8] = esp[8..16].try_into().unwrap();
    let seq = u64::from_be_bytes(iv);
    assert_eq!(&esp[4..8], &(seq as u32).to_be_bytes());
    let mut aad = esp[0..4].to_vec();
    aad.extend_from_slice(&seq.to_be_bytes());
    let nonce: Vec<u8> = salt.iter().chain(&iv).copied().collect();
    let (ct, tag) = esp[16..].split_at(esp.len() - 16 - 16);
    let mut pt = ct.to_vec();
    Aes128Gcm::new_from_slice(key)
        .unwrap()
        .decrypt_in_place_detached(nonce[..].into(), &aad, &mut pt, tag.into())
        .expect("the ICV verifies under the oracle");
    (seq, pt)
}

#[test]
fn ipv6_host_to_host_through_the_tunnel_raw_and_natt() {
    for udp in [false, true] {
        let mut gw1 = gateway6(true, udp);
        let mut gw2 = gateway6(false, udp);
        let sent = a_to_b6(64, 100);
        let (v, wire) = run(&mut gw1, 0, &sent);
        assert_eq!(v, Verdict::Tx(1), "udp={udp}");
        // Outer IPv4 to gw2 (raw ESP or NAT-T), DSCP and ECN from the traffic class, DF set.
        assert_eq!(&wire[0..6], &GW2_WAN.0);
        assert_eq!(&wire[12..14], &[0x08, 0x00]);
        let want = if udp {
            ipv4::PROTO_UDP
        } else {
            ipv4::PROTO_ESP
        };
        assert_eq!(wire[14 + 9], want);
        assert_eq!(wire[14 + 1], 0xb9);
        assert_eq!(wire[14 + 6] & 0x40, 0x40);
        assert_eq!(checksum::sum(&wire[14..34]), 0xffff);
        if !udp {
            let (seq, pt) = oracle_open(&wire);
            assert_eq!(seq, 1);
            let (&nh, rest) = pt.split_last().unwrap();
            let (&pad, rest) = rest.split_last().unwrap();
            assert_eq!(nh, ipv4::PROTO_IPV6, "next header 41");
            let inner_len = rest.len() - usize::from(pad);
            assert_eq!(&rest[inner_len..], &(1..=pad).collect::<Vec<u8>>()[..]);
            assert_eq!(&rest[..inner_len], &after_hops(&sent, 1)[14..]);
        }

        let (v, got) = run(&mut gw2, 1, &wire);
        assert_eq!(v, Verdict::Tx(0), "udp={udp}");
        assert_eq!((&got[0..6], &got[6..12]), (&HOST_B.0[..], &GW2_LAN.0[..]));
        assert_eq!(&got[12..14], &[0x86, 0xdd]);
        assert_eq!(
            &got[14..],
            &after_hops(&sent, 2)[14..],
            "as sent, two hops on"
        );
        assert_eq!(gw1.stats.get(Stat::EncryptedPackets), 1);
        assert_eq!(gw2.stats.get(Stat::DecryptedPackets), 1);
        assert_eq!(
            gw2.stats.get(Stat::DecryptedBytes),
            (sent.len() - 14) as u64
        );

        // And back.
        let back = frame6(
            GW2_LAN,
            "2001:db8:2::10",
            "2001:db8:1::10",
            64,
            ipv6::NEXT_UDP,
            &udp_payload(3),
        );
        let (v, wire) = run(&mut gw2, 0, &back);
        assert_eq!(v, Verdict::Tx(1));
        let (v, got) = run(&mut gw1, 1, &wire);
        assert_eq!(v, Verdict::Tx(0));
        assert_eq!(&got[0..6], &HOST_A.0);
        assert_eq!(&got[14..], &after_hops(&back, 2)[14..]);

        // IPv4 shares the SA and its sequence numbers; the same ESP again is a replay.
        let (v, wire4) = run(&mut gw1, 0, &a_to_b(64, 10));
        assert_eq!(v, Verdict::Tx(1));
        let esp = if udp { 14 + 28 } else { 14 + 20 };
        assert_eq!(&wire4[esp + 4..esp + 8], &2u32.to_be_bytes());
        assert_eq!(run(&mut gw2, 1, &wire4).0, Verdict::Tx(0));
        assert_eq!(run(&mut gw1, 1, &wire).0, Verdict::Drop(Stat::ReplayErrors));
    }
}

#[test]
fn an_echo_request_through_the_tunnel_to_the_gateway_goes_to_the_main_lcore() {
    let mut gw1 = gateway6(true, false);
    let mut gw2 = gateway6(false, false);
    let mut echo = vec![icmpv6::TYPE_ECHO_REQUEST, 0, 0, 0, 0x12, 0x34, 0, 1];
    let (src, dst) = ("2001:db8:2::10", "2001:db8:1::1");
    icmpv6::fill_checksum(&a6(src), &a6(dst), &mut echo);
    let sent = frame6(GW2_LAN, src, dst, 64, ipv6::NEXT_ICMPV6, &echo);
    let (v, wire) = run(&mut gw2, 0, &sent);
    assert_eq!(v, Verdict::Tx(1));
    let (v, punted) = run(&mut gw1, 1, &wire);
    assert_eq!(v, Verdict::Punt(Punt::Local));
    // A blank frame (the echo reply is routed, not sent back to a MAC), the packet as gw2
    // forwarded it.
    assert_eq!(&punted[..12], &[0; 12]);
    assert_eq!(&punted[12..14], &[0x86, 0xdd]);
    assert_eq!(&punted[14..], &after_hops(&sent, 1)[14..]);
    // Neighbor discovery through a tunnel is not the link's: dropped by the main lcore as
    // anything local it does not answer, never taken as ND.
    let mut ns = vec![icmpv6::TYPE_NEIGHBOR_SOLICIT, 0, 0, 0, 0, 0, 0, 0];
    ns.extend_from_slice(&a6(dst).octets());
    icmpv6::fill_checksum(&a6(src), &a6(dst), &mut ns);
    let (_, wire) = run(&mut gw2, 0, &frame6(GW2_LAN, src, dst, 255, 58, &ns));
    assert_eq!(run(&mut gw1, 1, &wire).0, Verdict::Punt(Punt::Local));
}

#[test]
fn the_hop_limit_is_lowered_before_encryption_and_after_decryption() {
    let mut gw1 = gateway6(true, false);
    let mut gw2 = gateway6(false, false);
    let (v, _) = run(&mut gw1, 0, &a_to_b6(1, 10));
    assert_eq!(v, Verdict::Drop(Stat::HopLimitExceeded));
    assert_eq!(gw1.stats.get(Stat::EncryptedPackets), 0, "nothing sealed");
    // Two: one at gw1, then none left at gw2, which drops it once decrypted.
    let (v, wire) = run(&mut gw1, 0, &a_to_b6(2, 10));
    assert_eq!(v, Verdict::Tx(1));
    let (v, _) = run(&mut gw2, 1, &wire);
    assert_eq!(v, Verdict::Drop(Stat::HopLimitExceeded));
    assert_eq!(gw2.stats.get(Stat::DecryptedPackets), 1);
}

#[test]
fn too_big_for_the_tunnel_gets_a_packet_too_big_never_a_fragment() {
    let mut gw1 = gateway6(true, false);
    // The tunnel's MTU is IPv4's: 1500 less outer IPv4 20, ESP 8 + IV 8, ICV 16, trailer 2,
    // to 4 bytes. One byte more goes to the main lcore, framed as IPv6, as it was routed.
    let big = a_to_b6(64, 1446 - 48 + 1);
    let (v, punted) = run(&mut gw1, 0, &big);
    assert_eq!(v, Verdict::Punt(Punt::TooBig6 { mtu: 1446 }));
    assert_eq!(&punted[12..14], &[0x86, 0xdd]);
    assert_eq!(&punted[14..], &after_hops(&big, 1)[14..]);
    assert_eq!(gw1.stats.get(Stat::ExceedsTunnelMtu), 1);
    assert_eq!(gw1.stats.get(Stat::EncryptedPackets), 0);
    // What the main lcore makes of it (`main_lcore::ipv6`): a Packet Too Big from our LAN
    // address to host a, quoting the packet, routed back to host a.
    let from = gw1.control.source6_for(&a6("2001:db8:1::10"));
    assert_eq!(from, Some(a6("2001:db8:1::1")));
    let mut out = [0u8; ipv6::MIN_MTU];
    let kind = icmpv6::ErrorKind::PacketTooBig { mtu: 1446 };
    let n = icmpv6::error(kind, &punted[14..], from.unwrap(), &mut out).unwrap();
    assert_eq!(n, ipv6::MIN_MTU, "as much of the packet as fits 1280 bytes");
    let icmp = &out[40..n];
    assert_eq!(&icmp[..2], &[icmpv6::TYPE_PACKET_TOO_BIG, 0]);
    assert_eq!(&icmp[4..8], &1446u32.to_be_bytes());
    assert_eq!(&icmp[8..], &punted[14..14 + n - 48]);
    let mut b = VecBuf::new(&out[..n]);
    let mut v = [gw1.output_ip(&mut b)];
    gw1.complete(std::slice::from_mut(&mut b), &mut v);
    assert_eq!(v[0], Verdict::Tx(0));
    assert_eq!(&b.data()[..6], &HOST_A.0);
    assert_eq!(&b.data()[14 + 24..14 + 40], &a6("2001:db8:1::10").octets());
    let (v, _) = run(&mut gw1, 0, &a_to_b6(64, 1446 - 48));
    assert_eq!(v, Verdict::Tx(1), "exactly the tunnel's MTU fits");
    assert_eq!(
        Punt::from_tag(Punt::TooBig6 { mtu: 1446 }.tag()),
        Some(Punt::TooBig6 { mtu: 1446 })
    );

    // A tunnel MTU below IPv6's minimum is reported as the minimum (RFC 8200 section 5).
    let mut gw1 = gateway(true, false, |v| {
        with_ipv6(true)(v);
        v["tunnels"][0]["mtu"] = 1200.into();
    });
    let (v, _) = run(&mut gw1, 0, &a_to_b6(64, 1300 - 48));
    assert_eq!(v, Verdict::Punt(Punt::TooBig6 { mtu: 1280 }));
    let (v, _) = run(&mut gw1, 0, &a_to_b6(64, 1200 - 48));
    assert_eq!(v, Verdict::Tx(1));
}

#[test]
fn decrypted_ipv6_must_match_the_tunnels_ipv6_selectors() {
    let mut gw1 = gateway6(true, false);
    // gw2 admits 2001:db8:1::/64 -> 2001:db8:2::/64 and 10.1.0.0/16 -> 10.2.0.0/16.
    let mut gw2 = gateway(false, false, |v| {
        with_ipv6(false)(v);
        v["tunnels"][0]["traffic_selectors"] = serde_json::json!({
            "local": ["10.2.0.0/16", "2001:db8:2::/64"],
            "remote": ["10.1.0.0/16", "2001:db8:1::/64"]});
    });
    let (_, wire) = run(&mut gw1, 0, &a_to_b6(64, 10));
    assert_eq!(run(&mut gw2, 1, &wire).0, Verdict::Tx(0));
    let outside = frame6(
        GW1_LAN,
        "2001:db8:1:5::10",
        "2001:db8:2::10",
        64,
        ipv6::NEXT_UDP,
        &udp_payload(1),
    );
    let (_, wire) = run(&mut gw1, 0, &outside);
    assert_eq!(run(&mut gw2, 1, &wire).0, Verdict::Drop(Stat::TsCheckFail));
    let sa = gw2.tables.spis.get(0x1001).unwrap().index;
    let per_sa = gw2
        .tables
        .inbound(sa)
        .map(|s| s.counters.ts_check_fail.get());
    assert_eq!(per_sa, Some(1));
    // IPv4 inside its selectors still passes.
    let (_, wire) = run(&mut gw1, 0, &a_to_b(64, 10));
    assert_eq!(run(&mut gw2, 1, &wire).0, Verdict::Tx(0));

    // A tunnel whose selectors are IPv4 prefixes carries no IPv6.
    let mut gw2 = gateway(false, false, |v| {
        with_ipv6(false)(v);
        v["tunnels"][0]["traffic_selectors"] =
            serde_json::json!({"local": ["10.2.0.0/16"], "remote": ["10.1.0.0/16"]});
    });
    let (_, wire) = run(&mut gw1, 0, &a_to_b6(64, 10));
    assert_eq!(run(&mut gw2, 1, &wire).0, Verdict::Drop(Stat::TsCheckFail));
}

/// The checksum of `segment` (upper-layer `protocol`) in IPv6 from `src` to `dst` verifies.
pub(super) fn checksum6_valid(src: &str, dst: &str, protocol: u8, segment: &[u8]) -> bool {
    let mut acc = ipv6::pseudo_header_sum(&a6(src), &a6(dst), segment.len() as u32, protocol)
        + u64::from(checksum::sum(segment));
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc == 0xffff
}

#[test]
fn an_ipv6_syn_has_its_mss_clamped_into_the_tunnel() {
    let clamp =
        |v: &mut serde_json::Value| v["flow"] = serde_json::json!({"tcp_mss_ipsec_vpn": 1300});
    let mut gw1 = gateway(true, false, |v| {
        with_ipv6(true)(v);
        clamp(v);
    });
    let mut gw2 = gateway6(false, false);
    let (src, dst) = ("2001:db8:1::10", "2001:db8:2::10");
    let mut syn = vec![0u8; 24];
    syn[0..4].copy_from_slice(&[0x9c, 0x40, 0, 80]);
    syn[tcp::field::DATA_OFF] = 6 << 4;
    syn[tcp::field::FLAGS] = tcp::FLAG_SYN;
    syn[20..24].copy_from_slice(&[2, 4, 0x05, 0xb4]); // MSS 1460
    let mut acc =
        ipv6::pseudo_header_sum(&a6(src), &a6(dst), 24, 6) + u64::from(checksum::sum(&syn));
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    syn[16..18].copy_from_slice(&(!(acc as u16)).to_be_bytes());
    assert!(checksum6_valid(src, dst, ipv6::NEXT_TCP, &syn));
    let sent = frame6(GW1_LAN, src, dst, 64, ipv6::NEXT_TCP, &syn);
    let (_, wire) = run(&mut gw1, 0, &sent);
    let (v, got) = run(&mut gw2, 1, &wire);
    assert_eq!(v, Verdict::Tx(0));
    let seg = &got[14 + 40..];
    assert_eq!(&seg[22..24], &1300u16.to_be_bytes());
    assert!(
        checksum6_valid(src, dst, ipv6::NEXT_TCP, seg),
        "checksum fixed"
    );
}

#[test]
fn ipv6_routes_into_tunnels_change_live() {
    let mut gw1 = gateway6(true, false);
    let v6 = |p: &str| -> IpNet { p.parse().unwrap() };
    gw1.change(Change::DeleteRoute {
        prefix: "10.2.0.0/16".parse().unwrap(),
    })
    .unwrap();
    // An IPv6 route alone keeps the tunnel from being deleted.
    let e = gw1
        .change(Change::DeleteTunnel {
            name: name("st0.0"),
        })
        .unwrap_err();
    assert_eq!(e.reason, "route 2001:db8:2::/48 points at it");
    gw1.change(Change::DeleteRoute {
        prefix: v6("2001:db8:2::/48"),
    })
    .unwrap();
    assert_eq!(
        run(&mut gw1, 0, &a_to_b6(64, 10)).0,
        Verdict::Drop(Stat::NoRoute)
    );
    gw1.change(Change::SetRoute {
        prefix: v6("2001:db8:2::/64"),
        via: RouteVia::Tunnel(name("st0.0")),
    })
    .unwrap();
    assert_eq!(run(&mut gw1, 0, &a_to_b6(64, 10)).0, Verdict::Tx(1));
    gw1.change(Change::DeleteRoute {
        prefix: v6("2001:db8:2::/64"),
    })
    .unwrap();
    gw1.change(Change::DeleteTunnel {
        name: name("st0.0"),
    })
    .unwrap();
}

proptest! {
    /// Any IPv6 payload (any next header, TCP among them with the MSS clamp on) and hop limit
    /// goes through gw1 and gw2 without a panic; what reaches host b is as long as what host a
    /// sent.
    #[test]
    fn any_ipv6_through_the_tunnel(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        next in prop::sample::select(vec![0u8, 6, 17, 44, 58, 59]),
        hop_limit in any::<u8>(),
    ) {
        let mut gw1 = gateway(true, false, |v| {
            with_ipv6(true)(v);
            v["flow"] = serde_json::json!({"tcp_mss_ipsec_vpn": 1300});
        });
        let mut gw2 = gateway6(false, false);
        let sent = frame6(GW1_LAN, "2001:db8:1::10", "2001:db8:2::10", hop_limit, next, &bytes);
        let (v, wire) = run(&mut gw1, 0, &sent);
        if v == Verdict::Tx(1) {
            let (v, got) = run(&mut gw2, 1, &wire);
            if v == Verdict::Tx(0) {
                prop_assert_eq!(got.len(), sent.len());
                prop_assert_eq!(got[14 + 7], hop_limit - 2);
            } else {
                prop_assert_eq!(v, Verdict::Drop(Stat::HopLimitExceeded));
            }
        }
    }
}
