//! Frames through one gateway or two, packet by packet: what comes out, what is counted, and
//! what changes take effect between packets.

use super::*;

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
                           // An IPv4 packet in a frame that says IPv6: its version is wrong.
    let mut ipv6 = good.clone();
    ipv6[12..14].copy_from_slice(&[0x86, 0xdd]);
    let mut lldp = good.clone();
    lldp[12..14].copy_from_slice(&[0x88, 0xcc]);
    let mut not_us = good.clone();
    not_us[0..6].copy_from_slice(&[2, 0, 0, 0, 9, 9]);
    let mut l2_broadcast = good.clone();
    l2_broadcast[0..6].copy_from_slice(&[0xff; 6]);
    // A fragment of an ESP packet for us: we do not reassemble.
    // A fragment for us of anything but ESP, ESP in UDP or IKE (those are reassembled).
    let mut frag = frame(
        GW1_LAN,
        HOST_A,
        "10.1.0.10",
        "10.1.0.1",
        64,
        ipv4::PROTO_ICMP,
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
        (ipv6, Stat::Malformed),
        (lldp, Stat::UnsupportedEthertype),
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
    assert_eq!(resolutions(&mut gw1), vec![(0, ip("10.1.0.99").into())]);
    gw1.now_ms = 6_000;
    run(&mut gw1, 0, &to);
    assert_eq!(resolutions(&mut gw1).len(), 1);
    // The neighbor learned at `mac`, then the packet forwarded again.
    let learned_at = |gw: &mut Gateway, mac| {
        gw.control.learned(ip("10.1.0.99").into(), mac);
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
            ipv6: None,
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

    // Too big for the tunnel: with DF (as the frames here have), to the main lcore, tagged
    // with the tunnel's MTU (1500 less outer IPv4 20, ESP 8 + IV 8, ICV 16, trailer 2, to 4
    // bytes) and framed as it came.
    let mut gw1 = gateway(true, false, |_| {});
    let big = a_to_b(64, 1500 - 28);
    let (v, punted) = run(&mut gw1, 0, &big);
    assert_eq!(v, Verdict::Punt(Punt::TooBig { mtu: 1446 }));
    // The packet as it was routed: TTL down by one, the rest as sent.
    assert_eq!(punted.len(), big.len());
    assert_eq!(punted[14 + 8], 63);
    assert_eq!(&punted[14 + 20..], &big[14 + 20..]);
    let (v, _) = run(&mut gw1, 0, &a_to_b(64, 1446 - 28));
    assert_eq!(v, Verdict::Tx(1), "exactly the tunnel's MTU fits");
    let mut no_df = a_to_b(64, 1500 - 28);
    no_df[14 + 6] = 0;
    ipv4::Packet::new_checked(&mut no_df[14..])
        .unwrap()
        .fill_checksum();
    // A fragment of ESP for us: to the main lcore, to be put back together (`reassembly`).
    let mut esp_frag = frame(
        GW1_WAN,
        GW2_WAN,
        "192.0.2.2",
        "192.0.2.1",
        64,
        ipv4::PROTO_ESP,
        &[0; 48],
    );
    esp_frag[14 + 6] = 0x20;
    ipv4::Packet::new_checked(&mut esp_frag[14..])
        .unwrap()
        .fill_checksum();
    assert_eq!(
        run(&mut gw1, 1, &esp_frag).0,
        Verdict::Punt(Punt::Reassemble)
    );
    // Without DF, to the main lcore to be cut before encryption (`ipv4::fragment`).
    let (v, _) = run(&mut gw1, 0, &no_df);
    assert_eq!(v, Verdict::Punt(Punt::Fragment { mtu: 1446 }));
    assert_eq!(
        gw1.stats.get(Stat::ExceedsTunnelMtu),
        1,
        "only the DF one is dropped"
    );
    assert_eq!(
        Punt::from_tag(Punt::TooBig { mtu: 1446 }.tag()),
        Some(Punt::TooBig { mtu: 1446 })
    );

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
        addr: ip("192.0.2.3").into(),
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
    gw1.change(Change::SetTunnel(crate::testkit::tunnel_spec(
        "st0.9",
        ip("192.0.2.1"),
        ip("192.0.2.3"),
    )))
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

/// A TCP SYN from `src` to `dst` offering MSS 1460 (Linux's options), its checksum right.
fn syn(gw_mac: Mac, host_mac: Mac, src: &str, dst: &str, flags: u8) -> Vec<u8> {
    let mut tcp = vec![0u8; 20];
    tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
    tcp[12] = (40 / 4) << 4;
    tcp[13] = flags;
    tcp.extend_from_slice(&[
        2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
    ]);
    let sum = tcp_sum(src, dst, &tcp);
    tcp[16..18].copy_from_slice(&(!sum).to_be_bytes());
    frame(gw_mac, host_mac, src, dst, 64, ipv4::PROTO_TCP, &tcp)
}

/// The ones'-complement sum of a TCP segment with its pseudo header (0xffff: it verifies).
fn tcp_sum(src: &str, dst: &str, tcp: &[u8]) -> u16 {
    let mut p = Vec::new();
    p.extend_from_slice(&ip(src).octets());
    p.extend_from_slice(&ip(dst).octets());
    p.extend_from_slice(&[0, ipv4::PROTO_TCP]);
    p.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
    p.extend_from_slice(tcp);
    checksum::sum(&p)
}

/// `flow.tcp_mss_ipsec_vpn` (Junos `set security flow tcp-mss ipsec-vpn mss 1300`): the MSS of
/// SYNs into the tunnel (before encryption) and out of it (after decryption) is lowered to it,
/// checksum kept right; a gateway without it leaves them alone.
#[test]
fn tcp_syns_through_the_tunnel_have_their_mss_clamped() {
    let mss =
        |v: &mut serde_json::Value| v["flow"] = serde_json::json!({"tcp_mss_ipsec_vpn": 1300});
    let mut gw1 = gateway(true, false, mss);
    let mut gw2 = gateway(false, false, |_| {});
    let mss_of = |f: &[u8]| u16::from_be_bytes([f[34 + 22], f[34 + 23]]);
    // a -> b: clamped by gw1 going in.
    let (v, wire) = run(
        &mut gw1,
        0,
        &syn(GW1_LAN, HOST_A, "10.1.0.10", "10.2.0.10", 0x02),
    );
    assert_eq!(v, Verdict::Tx(1));
    let (v, got) = run(&mut gw2, 1, &wire);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(mss_of(&got), 1300);
    assert_eq!(tcp_sum("10.1.0.10", "10.2.0.10", &got[34..]), 0xffff);
    // b -> a (a SYN-ACK): gw2 leaves it alone, gw1 clamps it coming out.
    let (v, wire) = run(
        &mut gw2,
        0,
        &syn(GW2_LAN, HOST_B, "10.2.0.10", "10.1.0.10", 0x12),
    );
    assert_eq!(v, Verdict::Tx(1));
    let (v, got) = run(&mut gw1, 1, &wire);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(mss_of(&got), 1300);
    assert_eq!(tcp_sum("10.2.0.10", "10.1.0.10", &got[34..]), 0xffff);
    // Without the setting, a SYN keeps its MSS end to end.
    let (_, wire) = run(
        &mut gw2,
        0,
        &syn(GW2_LAN, HOST_B, "10.2.0.10", "10.1.0.10", 0x02),
    );
    let mut plain = gateway(true, false, |_| {});
    let (_, got) = run(&mut plain, 1, &wire);
    assert_eq!(mss_of(&got), 1460);
    // Set under the running SAs: the next SYN out of the tunnel is clamped.
    let mut t = crate::testkit::tunnel_spec("st0.0", ip("192.0.2.1"), ip("192.0.2.2"));
    t.tcp_mss = Some(1200);
    plain.change(channel::Change::SetTunnel(t)).unwrap();
    let (_, wire) = run(
        &mut gw2,
        0,
        &syn(GW2_LAN, HOST_B, "10.2.0.10", "10.1.0.10", 0x02),
    );
    let (_, got) = run(&mut plain, 1, &wire);
    assert_eq!(mss_of(&got), 1200);
}

/// `tunnels[].mtu`: the tunnel's own MTU, below what the egress interface would allow: a
/// bigger packet is too big with that MTU (ICMP with DF, cut without), one that size passes;
/// changed under the running SA, it applies at the next packet.
#[test]
fn a_tunnels_own_mtu_is_what_it_carries() {
    let mut gw1 = gateway(true, false, |v| v["tunnels"][0]["mtu"] = 1300.into());
    let (v, _) = run(&mut gw1, 0, &a_to_b(64, 1301 - 28));
    assert_eq!(v, Verdict::Punt(Punt::TooBig { mtu: 1300 }));
    let (v, _) = run(&mut gw1, 0, &a_to_b(64, 1300 - 28));
    assert_eq!(v, Verdict::Tx(1));
    let mut no_df = a_to_b(64, 1301 - 28);
    no_df[14 + 6] = 0;
    ipv4::Packet::new_checked(&mut no_df[14..])
        .unwrap()
        .fill_checksum();
    assert_eq!(
        run(&mut gw1, 0, &no_df).0,
        Verdict::Punt(Punt::Fragment { mtu: 1300 })
    );
    // Lowered live: the SA stays, the next packet of 1300 is too big.
    let mut t = crate::testkit::tunnel_spec("st0.0", ip("192.0.2.1"), ip("192.0.2.2"));
    t.mtu = Some(1200);
    gw1.change(channel::Change::SetTunnel(t)).unwrap();
    let (v, _) = run(&mut gw1, 0, &a_to_b(64, 1300 - 28));
    assert_eq!(v, Verdict::Punt(Punt::TooBig { mtu: 1200 }));
}
