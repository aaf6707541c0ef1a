//! The whole pipeline between two gateways, frame in to frame out, with plain buffers.

use super::*;
use crate::packet::VecBuf;
use crate::wire::{checksum, icmp};
use proptest::prelude::*;

const GW1_LAN: Mac = Mac([2, 0, 0, 0, 1, 1]);
const GW1_WAN: Mac = Mac([2, 0, 0, 0, 0xa, 1]);
const GW2_WAN: Mac = Mac([2, 0, 0, 0, 0xa, 2]);
const GW2_LAN: Mac = Mac([2, 0, 0, 0, 2, 1]);
const HOST_A: Mac = Mac([2, 0, 0, 0, 1, 0x10]);
const HOST_B: Mac = Mac([2, 0, 0, 0, 2, 0x10]);
const K1: &str = "4a4b4c4d4e4f505152535455565758595a5b5c5d";
const K2: &str = "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f80818283";

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// gw1 (10.1.0.1 | 192.0.2.1) and gw2 (192.0.2.2 | 10.2.0.1), mirrored SAs, one worker.
fn gateway(first: bool, udp: bool, extra: impl FnOnce(&mut serde_json::Value)) -> Forwarder {
    let mut w = gateway_workers(first, udp, 1, extra);
    w.remove(0)
}

/// The same gateway with `n` workers in one anchor group: one `Forwarder` per worker.
fn gateway_workers(
    first: bool,
    udp: bool,
    n: u32,
    extra: impl FnOnce(&mut serde_json::Value),
) -> Vec<Forwarder> {
    let (lan, lan_net, wan, peer, remote_net, host, host_mac, peer_mac, lan_mac, wan_mac) = if first
    {
        (
            "10.1.0.1/24",
            "10.1",
            "192.0.2.1",
            "192.0.2.2",
            "10.2.0.0/16",
            "10.1.0.10",
            HOST_A,
            GW2_WAN,
            GW1_LAN,
            GW1_WAN,
        )
    } else {
        (
            "10.2.0.1/24",
            "10.2",
            "192.0.2.2",
            "192.0.2.1",
            "10.1.0.0/16",
            "10.2.0.10",
            HOST_B,
            GW1_WAN,
            GW2_LAN,
            GW2_WAN,
        )
    };
    let _ = lan_net;
    let (out_spi, in_spi, out_key, in_key, out_alg, in_alg) = if first {
        ("0x1001", "0x2001", K1, K2, "aes-128-gcm", "aes-256-gcm")
    } else {
        ("0x2001", "0x1001", K2, K1, "aes-256-gcm", "aes-128-gcm")
    };
    let mut v = serde_json::json!({
        "dataplane": {"workers": [1]},
        "interfaces": [{"name": "lan0", "port": 0, "address": lan, "mac": lan_mac.to_string()},
                       {"name": "wan0", "port": 1, "address": format!("{wan}/24"), "mac": wan_mac.to_string()}],
        "neighbors": [{"address": peer, "mac": peer_mac.to_string()}, {"address": host, "mac": host_mac.to_string()}],
        "tunnels": [{"name": "st0.0", "local": wan, "remote": peer}],
        "routes": [{"prefix": remote_net, "via": "st0.0"}],
        "manual_sas": [
            {"tunnel": "st0.0", "direction": "out", "spi": out_spi, "algorithm": out_alg, "key": out_key, "esn": true},
            {"tunnel": "st0.0", "direction": "in", "spi": in_spi, "algorithm": in_alg, "key": in_key, "esn": true}
        ]
    });
    if udp {
        v["tunnels"][0]["udp_encap"] = serde_json::json!({});
    }
    extra(&mut v);
    let lcores: Vec<u32> = (1..=n).collect();
    crate::testkit::forwarders(
        &v.to_string(),
        &lcores,
        |_| Mac([2, 0, 0, 0, 0, 0]),
        &crate::esp::crypto::Backend::Ring,
    )
    .unwrap()
}

/// An Ethernet frame carrying IPv4 `proto` from `src` to `dst` with `payload`.
fn frame(
    dst_mac: Mac,
    src_mac: Mac,
    src: &str,
    dst: &str,
    ttl: u8,
    proto: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut v = vec![0u8; 14];
    ethernet::Repr {
        dst: dst_mac,
        src: src_mac,
        ethertype: ethernet::ETHERTYPE_IPV4,
    }
    .emit((&mut v[..14]).try_into().unwrap());
    let mut h = [0u8; 20];
    ipv4::Repr {
        tos: 0,
        ident: 7,
        dont_frag: true,
        ttl,
        protocol: proto,
        src: ip(src),
        dst: ip(dst),
        payload_len: payload.len(),
    }
    .emit(&mut h);
    v.extend_from_slice(&h);
    v.extend_from_slice(payload);
    v
}

fn udp_payload(n: usize) -> Vec<u8> {
    let mut p = vec![0x30, 0x39, 0x00, 0x35, 0, 0, 0, 0];
    p[4..6].copy_from_slice(&((8 + n) as u16).to_be_bytes());
    p.extend((0..n).map(|i| i as u8));
    p
}

fn a_to_b(ttl: u8, n: usize) -> Vec<u8> {
    frame(
        GW1_LAN,
        HOST_A,
        "10.1.0.10",
        "10.2.0.10",
        ttl,
        ipv4::PROTO_UDP,
        &udp_payload(n),
    )
}

fn run(f: &mut Forwarder, port: u16, bytes: &[u8]) -> (Verdict, Vec<u8>) {
    let mut b = VecBuf::new(bytes);
    let v = f.receive(port, &mut b);
    (v, b.data().to_vec())
}

#[test]
fn host_to_host_through_both_gateways_raw_and_natt() {
    for udp in [false, true] {
        let mut gw1 = gateway(true, udp, |_| {});
        let mut gw2 = gateway(false, udp, |_| {});
        let sent = a_to_b(64, 100);
        let (v, wire) = run(&mut gw1, 0, &sent);
        assert_eq!(v, Verdict::Tx(1));
        assert_eq!(
            (&wire[0..6], &wire[6..12]),
            (&GW2_WAN.0[..], &GW1_WAN.0[..])
        );
        assert_eq!(
            wire[14 + 9],
            if udp {
                ipv4::PROTO_UDP
            } else {
                ipv4::PROTO_ESP
            }
        );
        let (v, got) = run(&mut gw2, 1, &wire);
        assert_eq!(v, Verdict::Tx(0), "udp={udp}");
        assert_eq!((&got[0..6], &got[6..12]), (&HOST_B.0[..], &GW2_LAN.0[..]));
        // The inner packet arrives as sent, TTL lower by two hops, checksum still valid.
        assert_eq!(got[14 + 8], 62);
        assert_eq!(checksum::sum(&got[14..34]), 0xffff);
        assert_eq!(&got[34..], &sent[34..]);
        assert_eq!((&got[14..22], &got[26..34]), (&sent[14..22], &sent[26..34]));
        assert_eq!(gw1.stats.get(Stat::EncryptedPackets), 1);
        assert_eq!(gw2.stats.get(Stat::DecryptedPackets), 1);
        assert_eq!(gw2.stats.get(Stat::DecryptedBytes), 128);

        // And back.
        let back = frame(
            GW2_LAN,
            HOST_B,
            "10.2.0.10",
            "10.1.0.10",
            64,
            ipv4::PROTO_UDP,
            &udp_payload(3),
        );
        let (v, wire) = run(&mut gw2, 0, &back);
        assert_eq!(v, Verdict::Tx(1));
        let (v, got) = run(&mut gw1, 1, &wire);
        assert_eq!(v, Verdict::Tx(0));
        assert_eq!(&got[34..], &back[34..]);

        // The same ESP frame again is a replay.
        let (v, _) = run(&mut gw1, 1, &wire);
        assert_eq!(v, Verdict::Drop(Stat::ReplayErrors));
    }
}

#[test]
fn ethernet_padding_is_stripped_before_encryption() {
    let mut gw1 = gateway(true, false, |_| {});
    let mut gw2 = gateway(false, false, |_| {});
    let mut short = a_to_b(64, 2); // 14 + 30 bytes
    short.resize(60, 0xee);
    let (_, wire) = run(&mut gw1, 0, &short);
    let (v, got) = run(&mut gw2, 1, &wire);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(got.len(), 14 + 30);
}

#[test]
fn every_malformed_or_unroutable_frame_is_dropped_and_counted() {
    let mut gw1 = gateway(true, false, |_| {});
    let good = a_to_b(64, 10);
    let mut bad_csum = good.clone();
    bad_csum[14 + 10] ^= 1;
    let mut bad_len = good.clone();
    bad_len[14 + 3] = 200; // total length beyond the frame
    let mut ipv6 = good.clone();
    ipv6[12..14].copy_from_slice(&[0x86, 0xdd]);
    let mut not_us = good.clone();
    not_us[0..6].copy_from_slice(&[2, 0, 0, 0, 9, 9]);
    let mut l2_broadcast = good.clone();
    l2_broadcast[0..6].copy_from_slice(&[0xff; 6]);
    // A fragment of an ESP packet for us: we do not reassemble.
    let mut frag = frame(
        GW1_LAN,
        HOST_A,
        "10.1.0.10",
        "10.1.0.1",
        64,
        ipv4::PROTO_ESP,
        &[0; 40],
    );
    frag[14 + 6] = 0x20; // MF
    ipv4::Packet::new_checked(&mut frag[14..])
        .unwrap()
        .fill_checksum();
    let cases: Vec<(Vec<u8>, Stat)> = vec![
        (good[..10].to_vec(), Stat::Malformed),
        (good[..14 + 19].to_vec(), Stat::Malformed),
        (bad_len, Stat::Malformed),
        (bad_csum, Stat::BadIpChecksum),
        (ipv6, Stat::UnsupportedEthertype),
        (not_us, Stat::NotForUs),
        (l2_broadcast, Stat::NotForUs),
        (
            frame(
                GW1_LAN,
                HOST_A,
                "10.1.0.10",
                "255.255.255.255",
                64,
                17,
                &udp_payload(1),
            ),
            Stat::NotForUs,
        ),
        (
            frame(
                GW1_LAN,
                HOST_A,
                "10.1.0.10",
                "239.1.1.1",
                64,
                17,
                &udp_payload(1),
            ),
            Stat::NotForUs,
        ),
        (a_to_b(1, 10), Stat::TtlExceeded),
        (
            frame(
                GW1_LAN,
                HOST_A,
                "10.1.0.10",
                "172.16.0.1",
                64,
                17,
                &udp_payload(1),
            ),
            Stat::NoRoute,
        ),
        (frag, Stat::Fragments),
        (
            frame(
                GW1_LAN,
                HOST_A,
                "10.1.0.10",
                "10.1.0.99",
                64,
                17,
                &udp_payload(1),
            ),
            Stat::NoNeighbor,
        ),
    ];
    for (i, (bytes, stat)) in cases.into_iter().enumerate() {
        let before = gw1.stats.get(stat);
        let (v, _) = run(&mut gw1, 0, &bytes);
        assert_eq!(v, Verdict::Drop(stat), "case {i}");
        assert_eq!(gw1.stats.get(stat), before + 1, "case {i} counted");
    }
    assert_eq!(
        run(&mut gw1, 5, &good).0,
        Verdict::Drop(Stat::NotForUs),
        "port without interface"
    );
}

#[test]
fn unresolved_next_hop_asks_the_main_lcore_once_a_second() {
    let mut gw1 = gateway(true, false, |_| {});
    let to = frame(
        GW1_LAN,
        HOST_A,
        "10.1.0.10",
        "10.1.0.99",
        64,
        17,
        &udp_payload(1),
    );
    gw1.now_ms = 5_000;
    run(&mut gw1, 0, &to);
    run(&mut gw1, 0, &to);
    assert_eq!(gw1.resolve, vec![(0, ip("10.1.0.99"))]);
    gw1.resolve.clear();
    gw1.now_ms = 6_000;
    run(&mut gw1, 0, &to);
    assert_eq!(gw1.resolve.len(), 1);
    // The neighbor learned at `mac`, then the packet forwarded again.
    let learned_at = |gw: &mut Forwarder, mac| {
        gw.apply(Command::SetNeighbor {
            addr: ip("10.1.0.99"),
            mac,
            permanent: false,
        });
        run(gw, 0, &to)
    };
    let (v, out) = learned_at(&mut gw1, HOST_B);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!((&out[..6], &out[6..12]), (&HOST_B.0[..], &GW1_LAN.0[..]));
    // The resolved rewrite is kept with the route, and follows the neighbor when it moves.
    let (v, out) = learned_at(&mut gw1, HOST_A);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(&out[..6], &HOST_A.0[..], "the new MAC, not the cached one");
}

#[test]
fn local_traffic_goes_to_the_main_lcore_and_natt_specials_are_recognised() {
    let mut gw2 = gateway(false, true, |_| {});
    let arp = {
        let mut f = vec![0u8; arp::FRAME_LEN];
        let asker = Interface {
            port: 1,
            mac: GW1_WAN,
            addr: ip("192.0.2.1"),
            prefix_len: 24,
            mtu: 1500,
        };
        arp::request(&mut f, &asker, ip("192.0.2.2"));
        f
    };
    assert_eq!(run(&mut gw2, 1, &arp).0, Verdict::Punt);
    let mut echo = vec![8u8, 0, 0, 0, 0, 1, 0, 1];
    let c = checksum::checksum(&echo);
    echo[2..4].copy_from_slice(&c.to_be_bytes());
    let ping = frame(
        GW2_WAN,
        GW1_WAN,
        "192.0.2.1",
        "192.0.2.2",
        64,
        ipv4::PROTO_ICMP,
        &echo,
    );
    let (v, punted) = run(&mut gw2, 1, &ping);
    assert_eq!(v, Verdict::Punt);
    assert_eq!(punted, ping, "punted with its own Ethernet header");
    assert!(icmp::echo_request_to_reply(&mut punted.clone()[34..]));

    let udp = |payload: &[u8], port: u16| {
        let mut u = port.to_be_bytes().to_vec();
        u.extend_from_slice(&port.to_be_bytes());
        u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(payload);
        frame(
            GW2_WAN,
            GW1_WAN,
            "192.0.2.1",
            "192.0.2.2",
            64,
            ipv4::PROTO_UDP,
            &u,
        )
    };
    assert_eq!(
        run(&mut gw2, 1, &udp(&[0xff], 4500)).0,
        Verdict::Drop(Stat::NattKeepalives)
    );
    assert_eq!(
        run(&mut gw2, 1, &udp(&[0, 0, 0, 0, 1, 2, 3], 4500)).0,
        Verdict::Punt
    );
    assert_eq!(run(&mut gw2, 1, &udp(&[1, 2, 3, 4], 500)).0, Verdict::Punt);
    assert_eq!(gw2.stats.get(Stat::IkePackets), 2);
    // SPI, sequence 1, then 40 bytes that are no valid ciphertext.
    let esp = |spi: u32| [&spi.to_be_bytes()[..], &[0, 0, 0, 1], &[0u8; 40]].concat();
    let unknown_spi = esp(0x9999);
    assert_eq!(
        run(&mut gw2, 1, &udp(&unknown_spi, 4500)).0,
        Verdict::Drop(Stat::InvalidSpi)
    );
    let known_spi = esp(0x1001);
    assert_eq!(
        run(&mut gw2, 1, &udp(&known_spi, 4500)).0,
        Verdict::Drop(Stat::EspAuthFailures)
    );
    let raw = frame(
        GW2_WAN,
        GW1_WAN,
        "192.0.2.1",
        "192.0.2.2",
        64,
        ipv4::PROTO_ESP,
        &known_spi,
    );
    assert_eq!(
        run(&mut gw2, 1, &raw).0,
        Verdict::Drop(Stat::BadHeaders),
        "raw ESP on a NAT-T SA"
    );
    assert_eq!(
        run(&mut gw2, 1, &udp(&known_spi[..20], 4500)).0,
        Verdict::Drop(Stat::BadHeaders)
    );
}

#[test]
fn tunnel_limits_sequence_exhaustion_mtu_and_selectors() {
    let mut gw1 = gateway(true, false, |v| {
        v["manual_sas"][0]["esn"] = false.into();
        v["manual_sas"][0]["initial_seq"] = u64::from(u32::MAX).into();
    });
    let (v, _) = run(&mut gw1, 0, &a_to_b(64, 10));
    assert_eq!(v, Verdict::Tx(1), "the last sequence number is used");
    let (v, _) = run(&mut gw1, 0, &a_to_b(64, 10));
    assert_eq!(v, Verdict::Drop(Stat::SeqExhausted));
    assert_eq!(
        gw1.outbound_sa_mut(0)
            .map(|s| s.counters.seq_exhausted.get()),
        Some(1)
    );

    let mut gw1 = gateway(true, false, |_| {});
    let (v, _) = run(&mut gw1, 0, &a_to_b(64, 1500 - 28));
    assert_eq!(v, Verdict::Drop(Stat::ExceedsTunnelMtu));
    let (v, _) = run(&mut gw1, 0, &a_to_b(64, 1500 - 28 - 60));
    assert_eq!(v, Verdict::Tx(1));

    // gw2 only admits 10.1.0.0/24 -> 10.2.0.0/24 from this tunnel.
    let mut gw2 = gateway(false, false, |v| {
        v["tunnels"][0]["traffic_selectors"] =
            serde_json::json!({"local": ["10.2.0.0/24"], "remote": ["10.1.0.0/24"]});
    });
    let mut gw1 = gateway(true, false, |_| {});
    let (_, ok) = run(&mut gw1, 0, &a_to_b(64, 10));
    assert_eq!(run(&mut gw2, 1, &ok).0, Verdict::Tx(0));
    let outside = frame(
        GW1_LAN,
        HOST_A,
        "10.1.0.10",
        "10.2.5.10",
        64,
        17,
        &udp_payload(1),
    );
    let (_, wire) = run(&mut gw1, 0, &outside);
    assert_eq!(run(&mut gw2, 1, &wire).0, Verdict::Drop(Stat::TsCheckFail));
}

#[test]
fn deleting_an_sa_or_route_takes_effect_between_packets() {
    let mut gw1 = gateway(true, false, |_| {});
    gw1.apply(Command::DelOutboundSa { tunnel: 0 });
    assert_eq!(
        run(&mut gw1, 0, &a_to_b(64, 10)).0,
        Verdict::Drop(Stat::NoSa)
    );
    gw1.apply(Command::DelRoute {
        prefix: "10.2.0.0/16".parse().unwrap(),
    });
    assert_eq!(
        run(&mut gw1, 0, &a_to_b(64, 10)).0,
        Verdict::Drop(Stat::NoRoute)
    );
}

/// A replacement outbound SA towards another peer takes effect at once, even though nothing
/// else changed: the tunnel's cached next hop is resolved again.
#[test]
fn a_new_outbound_sa_with_another_peer_is_followed() {
    let mut gw1 = gateway(true, false, |_| {});
    let other = Mac([2, 0, 0, 0, 0xa, 3]);
    gw1.apply(Command::SetNeighbor {
        addr: ip("192.0.2.3"),
        mac: other,
        permanent: true,
    });
    let (v, wire) = run(&mut gw1, 0, &a_to_b(64, 10));
    assert_eq!((v, &wire[..6]), (Verdict::Tx(1), &GW2_WAN.0[..]));
    let km = crate::esp::crypto::Keymat::new(
        crate::esp::crypto::Algorithm::Aes128Gcm,
        hex::decode(K1).unwrap().into(),
    )
    .unwrap();
    let mut encap = gw1.outbound_sa_mut(0).unwrap().encap;
    encap.remote = ip("192.0.2.3");
    let sa = OutboundSa::new(0x1009, false, 0, &km, encap, Default::default()).unwrap();
    gw1.apply(Command::SetOutboundSa(Box::new(sa)));
    let (v, wire) = run(&mut gw1, 0, &a_to_b(64, 10));
    assert_eq!((v, &wire[..6]), (Verdict::Tx(1), &other.0[..]));
    assert_eq!(
        &wire[14 + 16..14 + 20],
        &[192, 0, 2, 3],
        "outer destination"
    );
}

/// A second tunnel between the same gateways, SPIs 0x1002/0x2002: gw1 routes 10.2.0.0/25 (host
/// b) into it, the rest of 10.2.0.0/16 (say 10.2.0.200, also on gw2's LAN) into st0.0.
fn second_tunnel(first: bool) -> impl FnOnce(&mut serde_json::Value) {
    move |v| {
        let (local, remote) = if first {
            ("192.0.2.1", "192.0.2.2")
        } else {
            ("192.0.2.2", "192.0.2.1")
        };
        v["tunnels"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"name": "st0.1", "local": local, "remote": remote}));
        if first {
            v["routes"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"prefix": "10.2.0.0/25", "via": "st0.1"}));
        } else {
            let n = serde_json::json!({"address": "10.2.0.200", "mac": HOST_B.to_string()});
            v["neighbors"].as_array_mut().unwrap().push(n);
        }
        let (out_spi, in_spi) = if first {
            ("0x1002", "0x2002")
        } else {
            ("0x2002", "0x1002")
        };
        let sas = v["manual_sas"].as_array_mut().unwrap();
        sas.push(serde_json::json!({"tunnel": "st0.1", "direction": "out", "spi": out_spi, "algorithm": "aes-128-gcm", "key": K1}));
        sas.push(serde_json::json!({"tunnel": "st0.1", "direction": "in", "spi": in_spi, "algorithm": "aes-128-gcm", "key": K1}));
    }
}

#[test]
fn packets_for_an_sa_owned_elsewhere_go_to_its_owner_and_resume_there() {
    // One gateway pair, two tunnels, two workers in one group: st0.0 on worker 0, st0.1 on 1.
    let mut gw1 = gateway_workers(true, true, 2, second_tunnel(true));
    let mut gw2 = gateway_workers(false, true, 2, second_tunnel(false));
    let via_st0_0 = frame(
        GW1_LAN,
        HOST_A,
        "10.1.0.10",
        "10.2.0.200",
        64,
        17,
        &udp_payload(20),
    );
    let via_st0_1 = frame(
        GW1_LAN,
        HOST_A,
        "10.1.0.10",
        "10.2.0.10",
        64,
        17,
        &udp_payload(30),
    );
    for (bytes, tunnel, owner) in [(&via_st0_0, 0u32, 0usize), (&via_st0_1, 1, 1)] {
        let other = 1 - owner;
        // Outbound: received by the other worker, which stops before touching the SA.
        let mut b = VecBuf::new(bytes);
        let before = gw1[other].stats.get(Stat::EncryptedPackets);
        let v = gw1[other].receive(0, &mut b);
        assert_eq!(
            v,
            Verdict::Handoff {
                worker: owner as u16,
                resume: Resume::TunnelOutput(tunnel).into()
            }
        );
        assert_eq!(gw1[other].stats.get(Stat::EncryptedPackets), before);
        assert!(
            gw1[other].outbound_sa_mut(tunnel).is_none(),
            "the non-owner does not even hold the SA"
        );
        let before = gw1[owner].stats.get(Stat::EncryptedPackets);
        assert_eq!(
            gw1[owner].resume(&mut b, Resume::TunnelOutput(tunnel)),
            Verdict::Tx(1)
        );
        assert_eq!(gw1[owner].stats.get(Stat::EncryptedPackets), before + 1);

        // Inbound at gw2: the ESP lands on the non-owner, goes to the owner by SPI.
        let mut e = VecBuf::new(b.data());
        let before = gw2[other].stats.get(Stat::DecryptedPackets);
        assert_eq!(
            gw2[other].receive(1, &mut e),
            Verdict::Handoff {
                worker: owner as u16,
                resume: Resume::EspInput.into()
            }
        );
        assert_eq!(gw2[other].stats.get(Stat::DecryptedPackets), before);
        assert_eq!(gw2[owner].resume(&mut e, Resume::EspInput), Verdict::Tx(0));
        assert_eq!(&e.data()[34..], &bytes[34..], "inner packet intact");

        // Received directly by the owner: no handoff.
        let mut d = VecBuf::new(bytes);
        assert_eq!(gw1[owner].receive(0, &mut d), Verdict::Tx(1));
    }
}

#[test]
fn resume_tags_round_trip() {
    for r in [
        Resume::EspInput,
        Resume::TunnelOutput(0),
        Resume::TunnelOutput(65535),
        Resume::TunnelOutput((1 << 30) - 1),
        Resume::Transmit(7),
        Resume::Transmit(u16::MAX),
    ] {
        assert_eq!(Resume::from_tag(r.tag()), Some(r));
    }
    assert_eq!(
        Resume::from_tag(0),
        None,
        "an RSS hash left in the mbuf is not a tag"
    );
    assert_eq!(Resume::from_tag(9 << 16), None);
}

proptest! {
    #[test]
    fn receive_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300), port in 0u16..3,
                            ip_proto in prop::sample::select(vec![1u8, 17, 50, 6])) {
        let mut gw = gateway(false, true, |_| {});
        let _ = run(&mut gw, port, &bytes);
        // Also with valid Ethernet + IPv4 headers in front, so the deeper layers get fuzzed.
        let mut f = frame(GW2_WAN, GW1_WAN, "192.0.2.1", "192.0.2.2", 64, ip_proto, &bytes);
        let _ = run(&mut gw, 1, &f);
        if f.len() > 42 {
            f[34..36].copy_from_slice(&4500u16.to_be_bytes());
            f[36..38].copy_from_slice(&4500u16.to_be_bytes());
            let _ = run(&mut gw, 1, &f);
        }
    }
}

/// A burst mixing outbound cleartext, inbound ESP (with a duplicate, a forged packet and a
/// packet for the gateway itself), run with batched crypto, gives exactly the verdicts and
/// bytes of the same packets run one by one; the duplicate in the same batch is caught when
/// the window is updated after the open.
#[test]
fn batched_crypto_matches_packet_by_packet() {
    for udp in [false, true] {
        let mut gw2 = gateway(false, udp, |_| {});
        let esp: Vec<Vec<u8>> = (0..4)
            .map(|i| {
                let f = frame(
                    GW2_LAN,
                    HOST_B,
                    "10.2.0.10",
                    "10.1.0.10",
                    64,
                    ipv4::PROTO_UDP,
                    &udp_payload(10 + 50 * i),
                );
                let (v, wire) = run(&mut gw2, 0, &f);
                assert_eq!(v, Verdict::Tx(1));
                wire
            })
            .collect();
        let mut forged = esp[2].clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        let ping = ping_gw1();
        let burst: Vec<(u16, Vec<u8>)> = vec![
            (0, a_to_b(64, 1)),
            (1, esp[0].clone()),
            (0, a_to_b(64, 200)),
            (1, esp[1].clone()),
            (1, esp[1].clone()),
            (1, forged),
            (0, ping),
            (0, a_to_b(64, 1000)),
            (1, esp[3].clone()),
            (1, esp[2].clone()),
        ];

        let mut one_by_one = gateway(true, udp, |_| {});
        let want: Vec<(Verdict, Vec<u8>)> = burst
            .iter()
            .map(|(port, b)| run(&mut one_by_one, *port, b))
            .collect();

        let mut batched = gateway(true, udp, |_| {});
        let (mut bufs, mut verdicts) = receive_batched(&mut batched, &burst);
        assert_eq!(
            verdicts.iter().filter(|v| **v == Verdict::Crypto).count(),
            9,
            "every ESP and tunnel packet waits for its batch"
        );
        batched.complete(&mut bufs, &mut verdicts);
        let got: Vec<Option<(Verdict, Vec<u8>)>> = verdicts
            .into_iter()
            .zip(&bufs)
            .map(|(v, b)| Some((v, b.data().to_vec())))
            .collect();
        for (i, (g, w)) in got.into_iter().zip(&want).enumerate() {
            let g = g.unwrap();
            assert_eq!(g.0, w.0, "packet {i} udp={udp}");
            if matches!(w.0, Verdict::Tx(_) | Verdict::Punt) {
                assert_eq!(g.1, w.1, "packet {i} bytes udp={udp}");
            }
        }
        assert_eq!(want[4].0, Verdict::Drop(Stat::ReplayErrors));
        assert_eq!(want[5].0, Verdict::Drop(Stat::EspAuthFailures));
        for s in [
            Stat::EncryptedPackets,
            Stat::DecryptedPackets,
            Stat::ReplayErrors,
            Stat::EspAuthFailures,
            Stat::Punted,
        ] {
            assert_eq!(batched.stats.get(s), one_by_one.stats.get(s), "{s:?}");
        }
    }
}

/// A full burst with the parked packets at every odd position (the last, 31, among them)
/// leaves as packet by packet; and verdicts that claim more parked packets than there are
/// (a caller bug) fail every one of them as crypto errors, never a wrong pairing.
#[test]
fn a_full_burst_maps_every_parked_packet_back() {
    let ping = ping_gw1();
    let burst: Vec<(u16, Vec<u8>)> = (0..MAX_BURST)
        .map(|i| {
            (
                0,
                if i % 2 == 0 {
                    ping.clone()
                } else {
                    a_to_b(64, 10 + i)
                },
            )
        })
        .collect();
    let mut one_by_one = gateway(true, false, |_| {});
    let want: Vec<(Verdict, Vec<u8>)> = burst
        .iter()
        .map(|(port, b)| run(&mut one_by_one, *port, b))
        .collect();
    let mut batched = gateway(true, false, |_| {});
    let (mut bufs, mut verdicts) = receive_batched(&mut batched, &burst);
    assert_eq!(verdicts[MAX_BURST - 1], Verdict::Crypto);
    batched.complete(&mut bufs, &mut verdicts);
    for (i, ((v, b), (wv, wb))) in verdicts.iter().zip(&bufs).zip(&want).enumerate() {
        assert_eq!(v, wv, "packet {i}");
        assert_eq!(b.data(), &wb[..], "packet {i} bytes");
    }
    assert_eq!(want[1].0, Verdict::Tx(1));

    let mut gw = gateway(true, false, |_| {});
    let burst: Vec<(u16, Vec<u8>)> = (0..3).map(|i| (0, a_to_b(64, 10 + i))).collect();
    let (mut bufs, mut verdicts) = receive_batched(&mut gw, &burst);
    verdicts.push(Verdict::Crypto);
    bufs.push(VecBuf::new(&ping));
    gw.complete(&mut bufs, &mut verdicts);
    assert_eq!(verdicts, vec![Verdict::Drop(Stat::CryptoErrors); 4]);
    assert_eq!(gw.stats.get(Stat::CryptoErrors), 4);
    assert!(!gw.has_parked(), "nothing is left parked");
}

/// An ICMP echo request from host a to gateway 1's LAN address.
fn ping_gw1() -> Vec<u8> {
    frame(
        GW1_LAN,
        HOST_A,
        "10.1.0.10",
        "10.1.0.1",
        64,
        ipv4::PROTO_ICMP,
        &[8, 0, 0xf7, 0xff, 0, 0, 0, 0],
    )
}

/// A burst of (port, frame) received with batching on, as a worker does: the buffers and
/// their verdicts, before `complete`.
fn receive_batched(gw: &mut Forwarder, burst: &[(u16, Vec<u8>)]) -> (Vec<VecBuf>, Vec<Verdict>) {
    gw.set_batching(true);
    let mut bufs: Vec<VecBuf> = burst.iter().map(|(_, b)| VecBuf::new(b)).collect();
    let verdicts = bufs
        .iter_mut()
        .zip(burst)
        .map(|(b, (port, _))| gw.receive(*port, b))
        .collect();
    (bufs, verdicts)
}

/// A burst's parked packets group by SA in order of first appearance, each group holding
/// exactly its SA's packets; a tunnel and an inbound slot with the same number are different
/// SAs; 32 packets of 32 SAs make 32 groups.
#[test]
fn parked_packets_group_by_sa() {
    let prep = Prepared {
        offset: 0,
        len: 0,
        seq: 0,
    };
    let seal = |tunnel| AfterCrypto::Seal {
        tunnel,
        port: 0,
        inner_len: 0,
    };
    let open = |slot| AfterCrypto::Open { slot, esp_off: 0 };
    let mut p = Parked::default();
    for step in [
        seal(7),
        open(7),
        seal(3),
        seal(7),
        open(7),
        seal(3),
        seal(9),
    ] {
        assert!(p.push(prep, step));
    }
    let groups = p.groups();
    assert_eq!(
        groups.as_slice(),
        &[(0, 0b1001), (1, 0b10010), (2, 0b100100), (6, 0b1000000)]
    );

    let mut p = Parked::default();
    for t in 0..MAX_BURST as u32 {
        assert!(p.push(prep, seal(t * 1024)));
    }
    assert!(!p.push(prep, seal(0)), "a full burst takes no more");
    let groups = p.groups();
    assert_eq!(groups.len(), MAX_BURST);
    // A burst over as many tunnels as packets goes to the queue pair on the filter's count
    // alone (more SAs than a third of the packets), without being grouped.
    let (mixed, at_least) = p.spread();
    assert!(mixed && at_least as usize * 3 > MAX_BURST, "{at_least}");
    for (j, &(first, members)) in groups.iter().enumerate() {
        assert_eq!((first, members), (j, 1 << j));
    }
    // One SA: one group of everything parked, from 1 packet to a full burst.
    for n in [1, 2, 31, MAX_BURST] {
        let mut p = Parked::default();
        for _ in 0..n {
            assert!(p.push(prep, open(5)));
        }
        let all = (u64::MAX >> (64 - n)) as u32;
        assert_eq!(p.groups().as_slice(), &[(0, all)], "{n} packets");
    }
    // The same number as a tunnel and as an inbound slot: two SAs.
    let mut p = Parked::default();
    assert!(p.push(prep, seal(3)) && p.push(prep, open(3)));
    assert_eq!(p.groups().as_slice(), &[(0, 0b1), (1, 0b10)]);
}

proptest! {
    /// `groups` agrees with the obvious scan on any burst: colliding and wrapping probes,
    /// runs, interleavings and full bursts alike.
    #[test]
    fn groups_match_a_plain_scan(
        sas in prop::collection::vec((any::<bool>(), 0u32..6), 0..=MAX_BURST),
        spread in any::<u32>(),
    ) {
        let mut p = Parked::default();
        for &(seal, sa) in &sas {
            // A few SAs, spread far apart or packed, so that probes collide and wrap.
            let sa = sa.wrapping_mul(spread | 1);
            let step = if seal {
                AfterCrypto::Seal { tunnel: sa, port: 0, inner_len: 0 }
            } else {
                AfterCrypto::Open { slot: sa, esp_off: 0 }
            };
            let prep = Prepared { offset: 0, len: 0, seq: 0 };
            prop_assert!(p.push(prep, step));
        }
        let mut expect: Vec<(usize, u32)> = Vec::new();
        for j in 0..sas.len() {
            match expect.iter_mut().find(|(first, _)| p.sa_key(*first) == p.sa_key(j)) {
                Some(g) => g.1 |= 1 << j,
                None => expect.push((j, 1 << j)),
            }
        }
        let got = p.groups();
        prop_assert_eq!(got.as_slice(), expect.as_slice());
        // `spread`: mixed exactly when there are several groups, and never more SAs than
        // there are.
        let (mixed, at_least) = p.spread();
        prop_assert_eq!(mixed, expect.len() > 1);
        prop_assert!(at_least as usize <= expect.len().max(1));
        prop_assert!(at_least >= 1 || sas.is_empty());
    }
}

/// IPv4 `proto` from the peer gateway (192.0.2.2) to gw1's WAN address.
fn to_us(proto: u8, payload: &[u8]) -> Vec<u8> {
    frame(
        GW1_WAN,
        GW2_WAN,
        "192.0.2.2",
        "192.0.2.1",
        64,
        proto,
        payload,
    )
}

/// UDP 4500 to 4500 (NAT-T) carrying `payload`, from the peer gateway to gw1.
fn natt(payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x11, 0x94, 0x11, 0x94, 0, 0, 0, 0];
    p[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(payload);
    to_us(ipv4::PROTO_UDP, &p)
}

/// The look ahead over a burst (`prefetch_sas`) is only a hint: over frames of every kind,
/// malformed ones included, it counts nothing, asks for no resolution, and leaves every
/// packet's verdict and bytes as a gateway without it gives them.
#[test]
fn the_look_ahead_changes_nothing() {
    for udp in [false, true] {
        let mut gw2 = gateway(false, udp, |_| {});
        let (_, esp) = run(
            &mut gw2,
            0,
            &frame(
                GW2_LAN,
                HOST_B,
                "10.2.0.10",
                "10.1.0.10",
                64,
                ipv4::PROTO_UDP,
                &udp_payload(20),
            ),
        );
        let good = a_to_b(64, 10);
        let mut unknown_spi = esp.clone();
        let spi_at = 14 + 20 + if udp { 8 } else { 0 };
        unknown_spi[spi_at..spi_at + 4].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        let mut ipv6 = good.clone();
        ipv6[12..14].copy_from_slice(&[0x86, 0xdd]);
        let frames: Vec<(u16, Vec<u8>)> = vec![
            (0, good.clone()),
            (1, esp.clone()),
            (1, esp[..14 + 20 + 2].to_vec()),
            (1, unknown_spi),
            (0, good[..10].to_vec()),
            (0, good[..14 + 12].to_vec()),
            (0, ipv6),
            (1, to_us(ipv4::PROTO_ESP, &[0, 0])),
            (1, natt(&[0xff])),
            (1, natt(&[0, 0, 0, 0, 1, 2, 3, 4])),
            (
                0,
                frame(
                    GW1_LAN,
                    HOST_A,
                    "10.1.0.10",
                    "172.16.0.1",
                    64,
                    17,
                    &udp_payload(1),
                ),
            ),
            (
                0,
                frame(
                    GW1_LAN,
                    HOST_A,
                    "10.1.0.10",
                    "10.1.0.99",
                    64,
                    17,
                    &udp_payload(1),
                ),
            ),
            (0, good),
        ];
        let mut plain = gateway(true, udp, |_| {});
        let mut looked = gateway(true, udp, |_| {});
        looked.spread = true;
        let bufs: Vec<VecBuf> = frames.iter().map(|(_, b)| VecBuf::new(b)).collect();
        looked.prefetch_sas(&bufs);
        for s in Stat::ALL {
            assert_eq!(looked.stats.get(*s), 0, "{s:?} counted by the look ahead");
        }
        assert!(looked.resolve.is_empty(), "no resolution asked");
        for (i, (port, b)) in frames.iter().enumerate() {
            assert_eq!(
                run(&mut looked, *port, b),
                run(&mut plain, *port, b),
                "frame {i}"
            );
        }
    }
}

/// What the look ahead reads from a frame: the SPI of ESP and of ESP in UDP on the NAT-T
/// port (after IPv4 options too), the destination of a frame to route, and nothing for
/// anything the pipeline drops before routing or that carries no SA.
#[test]
fn the_look_ahead_reads_spis_and_destinations() {
    use super::lookahead::{DST, SPI};
    let gw = gateway(true, true, |_| {});
    let esp = to_us(ipv4::PROTO_ESP, &[0, 0, 0x20, 0x01, 0, 0, 0, 1]);
    // The same with 4 bytes of IPv4 options (IHL 6): the SPI follows them.
    let mut with_options = esp[..34].to_vec();
    with_options[14] = 0x46;
    with_options.extend_from_slice(&[1, 1, 1, 0, 0, 0, 0x20, 0x02]);
    let mut ihl4 = esp.clone();
    ihl4[14] = 0x44;
    let mut v6 = esp.clone();
    v6[14] = 0x65;
    let other_port = {
        let mut f = natt(&[0, 0, 0x20, 0x01]);
        f[14 + 20 + 3] = 0x95;
        f
    };
    let bcast = frame(
        GW1_LAN,
        HOST_A,
        "10.1.0.10",
        "255.255.255.255",
        64,
        17,
        &[0; 8],
    );
    let mcast = frame(GW1_LAN, HOST_A, "10.1.0.10", "239.1.1.1", 64, 17, &[0; 8]);
    let cases: Vec<(&str, Vec<u8>, u64)> = vec![
        ("esp", esp.clone(), SPI | 0x2001),
        ("esp after options", with_options, SPI | 0x2002),
        (
            "esp in udp",
            natt(&[0, 0, 0x20, 0x01, 0, 0, 0, 1]),
            SPI | 0x2001,
        ),
        ("non-esp marker", natt(&[0, 0, 0, 0, 1, 2, 3, 4]), 0),
        ("keepalive", natt(&[0xff]), 0),
        ("udp to another port", other_port, 0),
        ("routed", a_to_b(64, 10), DST | 0x0a02_000a),
        ("broadcast", bcast, 0),
        ("multicast", mcast, 0),
        ("ihl below 5", ihl4, 0),
        ("not version 4", v6, 0),
        ("esp cut before its spi", esp[..14 + 20 + 2].to_vec(), 0),
        ("header cut short", esp[..14 + 19].to_vec(), 0),
        ("ethernet only", esp[..14].to_vec(), 0),
        ("empty", Vec::new(), 0),
    ];
    for (what, f, want) in cases {
        assert_eq!(gw.sa_key(&f), want, "{what}");
    }
}

proptest! {
    /// Any bytes, as whole bursts of frames, pass through the look ahead without a panic or
    /// a count, and frames that start as IPv4 for us or to route reach its deeper reads.
    #[test]
    fn the_look_ahead_takes_any_bytes(
        frames in proptest::collection::vec(
            (0usize..4, proptest::collection::vec(any::<u8>(), 0..90)), 1..32)
    ) {
        let mut gw = gateway(true, true, |_| {});
        gw.spread = true;
        let udp = frame(GW1_WAN, GW2_WAN, "192.0.2.2", "192.0.2.1", 64, ipv4::PROTO_UDP, &[]);
        let mut esp = udp.clone();
        esp[14 + 9] = ipv4::PROTO_ESP;
        // Random bytes after nothing, after an IPv4 header up to its protocol (a random
        // destination: routed), or after a whole header for us of UDP or ESP.
        let heads: [&[u8]; 4] = [&[], &udp[..24], &udp[..34], &esp[..34]];
        let bufs: Vec<VecBuf> = frames
            .iter()
            .map(|(h, tail)| {
                let mut f = heads[*h].to_vec();
                f.extend_from_slice(tail);
                VecBuf::new(&f)
            })
            .collect();
        gw.prefetch_sas(&bufs);
        for s in Stat::ALL {
            prop_assert_eq!(gw.stats.get(*s), 0);
        }
    }
}

/// 32 destinations that differ in one octet only (each subnet's .10, or 32 hosts of one
/// subnet) take 32 entries of the route cache, whichever octet it is: none evicts another.
#[test]
fn route_cache_spreads_destinations_differing_in_one_octet() {
    for shift in [0, 8, 16, 24] {
        for base in [0x0a02_000a_u32, 0xc0a8_0001, 0x0a80_0000] {
            let slots: std::collections::HashSet<usize> = (0..32u32)
                .map(|i| route_slot((base & !(0xff << shift)) | (i << shift)))
                .collect();
            assert_eq!(slots.len(), 32, "octet at bit {shift} of {base:#x}");
        }
    }
}
