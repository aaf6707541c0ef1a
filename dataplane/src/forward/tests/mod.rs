//! The whole pipeline between two gateways, frame in to frame out, with plain buffers: each
//! gateway a control state and its workers' forwarders (`testkit::Gateway`), built and changed
//! through plain-data changes as the dataplane is.

mod batch;
mod changes;
mod lookahead;

use super::*;
use crate::packet::VecBuf;
use crate::testkit::Gateway;
use crate::wire::ethernet::{self, Mac};
use crate::wire::{checksum, icmp, ipv4};
use channel::{Change, Name};
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

fn name(s: &str) -> Name {
    Name::new(s).unwrap()
}

/// gw1 (10.1.0.1 | 192.0.2.1) and gw2 (192.0.2.2 | 10.2.0.1), mirrored SAs, one worker.
fn gateway(first: bool, udp: bool, extra: impl FnOnce(&mut serde_json::Value)) -> Gateway {
    gateway_workers(first, udp, 1, extra)
}

/// The same gateway with `n` workers in one anchor group.
fn gateway_workers(
    first: bool,
    udp: bool,
    n: u32,
    extra: impl FnOnce(&mut serde_json::Value),
) -> Gateway {
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
    Gateway::new(&v.to_string(), &lcores, &crate::esp::crypto::Backend::Ring).unwrap()
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

/// One frame received on `port`, as a burst of one: its verdict and what the buffer holds.
fn run(f: &mut Forwarder, port: u16, bytes: &[u8]) -> (Verdict, Vec<u8>) {
    let mut b = [VecBuf::new(bytes)];
    let mut v = [f.receive(port, &mut b[0])];
    f.complete(&mut b, &mut v);
    (v[0], b[0].data().to_vec())
}

/// A packet another worker handed over, resumed as a burst of one.
fn resume(f: &mut Forwarder, b: &mut VecBuf, r: Resume) -> Verdict {
    let mut v = [f.resume(b, r)];
    f.complete(std::slice::from_mut(b), &mut v);
    v[0]
}

/// The next-hop resolutions a gateway's bursts asked for, taken.
fn resolutions(f: &mut Forwarder) -> Vec<(u16, Ipv4Addr)> {
    let mut r = Vec::new();
    f.events.retain(|e| match *e {
        Event::Resolve { port, addr } => {
            r.push((port, addr));
            false
        }
        _ => true,
    });
    r
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
    assert_eq!(resolutions(&mut gw1), vec![(0, ip("10.1.0.99"))]);
    gw1.now_ms = 6_000;
    run(&mut gw1, 0, &to);
    assert_eq!(resolutions(&mut gw1).len(), 1);
    // The neighbor learned at `mac`, then the packet forwarded again.
    let learned_at = |gw: &mut Gateway, mac| {
        gw.control.learned(ip("10.1.0.99"), mac);
        gw.sync();
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
    assert_eq!(run(&mut gw2, 1, &arp).0, Verdict::Punt(Punt::Arp));
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
    assert_eq!(v, Verdict::Punt(Punt::Local));
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
        Verdict::Punt(Punt::Ike)
    );
    assert_eq!(
        run(&mut gw2, 1, &udp(&[1, 2, 3, 4], 500)).0,
        Verdict::Punt(Punt::Ike)
    );
    assert_eq!(
        run(&mut gw2, 1, &udp(&[1, 2, 3, 4], 53)).0,
        Verdict::Punt(Punt::Local)
    );
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
    let t = gw1.control.view().lock().unwrap().tunnels[&name("st0.0")].id;
    assert_eq!(
        gw1.tables
            .outbound(t)
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
    gw1.change(Change::DeleteOutboundSa {
        tunnel: name("st0.0"),
    })
    .unwrap();
    assert_eq!(
        run(&mut gw1, 0, &a_to_b(64, 10)).0,
        Verdict::Drop(Stat::NoSa)
    );
    gw1.change(Change::DeleteRoute {
        prefix: "10.2.0.0/16".parse().unwrap(),
    })
    .unwrap();
    assert_eq!(
        run(&mut gw1, 0, &a_to_b(64, 10)).0,
        Verdict::Drop(Stat::NoRoute)
    );
}

/// An outbound SA replaced (a rekey) takes over at the next packet, and the main lcore frees
/// the old one once the worker gives it back; a tunnel added again towards another peer is
/// followed at once: its next hop is resolved afresh.
#[test]
fn a_replaced_sa_takes_over_and_a_new_peer_is_followed() {
    let mut gw1 = gateway(true, false, |_| {});
    let (v, wire) = run(&mut gw1, 0, &a_to_b(64, 10));
    assert_eq!(
        (v, &wire[14 + 20..14 + 24]),
        (Verdict::Tx(1), &[0, 0, 0x10, 1][..])
    );
    let sas = gw1.control.live_sas();
    let keys = channel::KeyMaterial::new(channel::Algorithm::Aes128Gcm, &hex::decode(K1).unwrap())
        .unwrap();
    let spec = |tunnel: &str, spi: u32| {
        Change::SetOutboundSa(channel::OutboundSaSpec {
            sa: channel::SaSpec {
                tunnel: name(tunnel),
                spi,
                keys: keys.clone(),
                esn: false,
                soft: Default::default(),
                hard: Default::default(),
            },
            first_seq: 1,
        })
    };
    gw1.change(spec("st0.0", 0x1009)).unwrap();
    let (v, wire) = run(&mut gw1, 0, &a_to_b(64, 10));
    assert_eq!(
        (v, &wire[14 + 20..14 + 24]),
        (Verdict::Tx(1), &[0, 0, 0x10, 9][..])
    );
    assert_eq!(
        gw1.control.live_sas(),
        sas,
        "the old SA went back and was freed"
    );

    let other = Mac([2, 0, 0, 0, 0xa, 3]);
    gw1.change(Change::SetNeighbor {
        addr: ip("192.0.2.3"),
        mac: other.0,
    })
    .unwrap();
    gw1.change(Change::DeleteRoute {
        prefix: "10.2.0.0/16".parse().unwrap(),
    })
    .unwrap();
    gw1.change(Change::DeleteTunnel {
        name: name("st0.0"),
    })
    .unwrap();
    assert_eq!(gw1.control.live_sas(), sas - 2, "its SAs went with it");
    gw1.change(Change::SetTunnel(channel::TunnelSpec {
        name: name("st0.9"),
        local: ip("192.0.2.1"),
        remote: ip("192.0.2.3"),
        udp: None,
        df: Default::default(),
        dscp: Default::default(),
        ttl: 64,
        local_selectors: Default::default(),
        remote_selectors: Default::default(),
    }))
    .unwrap();
    gw1.change(Change::SetRoute {
        prefix: "10.2.0.0/16".parse().unwrap(),
        via: channel::RouteVia::Tunnel(name("st0.9")),
    })
    .unwrap();
    gw1.change(spec("st0.9", 0x100a)).unwrap();
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
            gw1[other].tables.outbound(tunnel).is_none(),
            "the non-owner does not even hold the SA"
        );
        let before = gw1[owner].stats.get(Stat::EncryptedPackets);
        assert_eq!(
            resume(&mut gw1[owner], &mut b, Resume::TunnelOutput(tunnel)),
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
        assert_eq!(
            resume(&mut gw2[owner], &mut e, Resume::EspInput),
            Verdict::Tx(0)
        );
        assert_eq!(&e.data()[34..], &bytes[34..], "inner packet intact");

        // Received directly by the owner: no handoff.
        assert_eq!(run(&mut gw1[owner], 0, bytes).0, Verdict::Tx(1));
    }
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
