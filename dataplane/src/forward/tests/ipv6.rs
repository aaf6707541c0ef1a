//! IPv6 through a gateway without DPDK: forwarding between interfaces (hop limit, next hops
//! resolved or static, routes by longest prefix), what goes to the main lcore (neighbor
//! discovery, packets for our addresses), what a router must not forward, and IPv6 routes,
//! neighbors and addresses changed live.

use super::*;
use crate::wire::{icmpv6, ipv6};
use channel::RouteVia;
use std::net::{IpAddr, Ipv6Addr};

pub(super) fn a6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// gw1 with IPv6 on both interfaces: LAN 2001:db8:1::1/64 (host a 2001:db8:1::10 learned, not
/// static), WAN 2001:db8:ffff::1/64 with a static neighbor 2001:db8:ffff::2 (gw2's WAN
/// MAC), the router to 2001:db8:2::/48.
fn gateway6() -> Gateway {
    gateway(true, false, |v| {
        v["interfaces"][0]["address6"] = "2001:db8:1::1/64".into();
        v["interfaces"][1]["address6"] = "2001:db8:ffff::1/64".into();
        let n = serde_json::json!({"address": "2001:db8:ffff::2", "mac": GW2_WAN.to_string()});
        v["neighbors"].as_array_mut().unwrap().push(n);
        let r = serde_json::json!({"prefix": "2001:db8:2::/48", "via": "2001:db8:ffff::2"});
        v["routes"].as_array_mut().unwrap().push(r);
    })
}

/// An Ethernet frame carrying IPv6 `next` from `src` to `dst` with `payload`.
pub(super) fn frame6(
    dst_mac: Mac,
    src: &str,
    dst: &str,
    hop_limit: u8,
    next: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut v = vec![0u8; 14 + 40];
    ethernet::Repr {
        dst: dst_mac,
        src: HOST_A,
        ethertype: ethernet::ETHERTYPE_IPV6,
    }
    .emit((&mut v[..14]).try_into().unwrap());
    ipv6::Repr {
        traffic_class: 0,
        next_header: next,
        hop_limit,
        src: a6(src),
        dst: a6(dst),
        payload_len: payload.len(),
    }
    .emit((&mut v[14..54]).try_into().unwrap());
    v.extend_from_slice(payload);
    v
}

fn a_to_far(hop_limit: u8) -> Vec<u8> {
    frame6(
        GW1_LAN,
        "2001:db8:1::10",
        "2001:db8:2::10",
        hop_limit,
        ipv6::NEXT_UDP,
        &udp_payload(20),
    )
}

/// An echo request from `src` to `dst`, checksum filled.
fn echo6(dst_mac: Mac, src: &str, dst: &str) -> Vec<u8> {
    let mut m = vec![
        icmpv6::TYPE_ECHO_REQUEST,
        0,
        0,
        0,
        0x12,
        0x34,
        0,
        1,
        1,
        2,
        3,
    ];
    icmpv6::fill_checksum(&a6(src), &a6(dst), &mut m);
    frame6(dst_mac, src, dst, 64, ipv6::NEXT_ICMPV6, &m)
}

/// A neighbor solicitation from host a for `target`, to the target's solicited-node group.
fn ns(target: &str) -> Vec<u8> {
    let host = Interface {
        port: 0,
        mac: HOST_A,
        addr: ip("10.1.0.10"),
        prefix_len: 24,
        mtu: 1500,
        ipv6: "2001:db8:1::10/64".parse().ok(),
    };
    let mut f = vec![0u8; nd::FRAME_LEN];
    assert!(nd::solicit(
        (&mut f[..]).try_into().unwrap(),
        &host,
        a6(target)
    ));
    f
}

#[test]
fn forwarded_between_interfaces_with_the_hop_limit_lowered() {
    let mut gw = gateway6();
    let mut sent = a_to_far(64);
    sent.extend_from_slice(&[0; 6]); // Ethernet padding
    let (v, out) = run(&mut gw, 0, &sent);
    assert_eq!(v, Verdict::Tx(1));
    assert_eq!(
        &out[..6],
        &GW2_WAN.0,
        "to the static neighbor, the route's next hop"
    );
    assert_eq!(&out[6..12], &GW1_WAN.0);
    assert_eq!(&out[12..14], &[0x86, 0xdd]);
    let mut want = a_to_far(63);
    want[..12].copy_from_slice(&out[..12]);
    assert_eq!(out, want, "only the hop limit changed, the padding gone");
    assert_eq!(gw.stats.get(Stat::ForwardedPackets), 1);

    for hop_limit in [1, 0] {
        let (v, _) = run(&mut gw, 0, &a_to_far(hop_limit));
        assert_eq!(v, Verdict::Drop(Stat::HopLimitExceeded));
    }
    assert_eq!(gw.stats.get(Stat::HopLimitExceeded), 2);
    assert_eq!(
        gw.stats.get(Stat::TtlExceeded),
        0,
        "IPv4's counter untouched"
    );
    // IPv4 still goes its way beside it, into the tunnel.
    assert_eq!(run(&mut gw, 0, &a_to_b(64, 10)).0, Verdict::Tx(1));
}

#[test]
fn a_next_hop_is_resolved_by_neighbor_discovery_once_a_second() {
    let mut gw = gateway6();
    let to = frame6(
        GW1_WAN,
        "2001:db8:ffff::2",
        "2001:db8:1::99",
        64,
        ipv6::NEXT_UDP,
        &udp_payload(1),
    );
    gw.now_ms = 5_000;
    assert_eq!(run(&mut gw, 1, &to).0, Verdict::Drop(Stat::NoNeighbor));
    run(&mut gw, 1, &to);
    let host: IpAddr = a6("2001:db8:1::99").into();
    assert_eq!(
        resolutions(&mut gw),
        vec![(0, host)],
        "on the LAN port, once"
    );
    gw.now_ms = 6_000;
    run(&mut gw, 1, &to);
    assert_eq!(resolutions(&mut gw), vec![(0, host)]);
    // What neighbor discovery learned reaches the worker.
    gw.control.learned(host, HOST_B);
    gw.sync();
    let (v, out) = run(&mut gw, 1, &to);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!((&out[..6], &out[6..12]), (&HOST_B.0[..], &GW1_LAN.0[..]));
    assert_eq!(out[14 + 7], 63);
}

#[test]
fn what_a_router_must_not_forward_is_dropped_and_counted() {
    let mut gw = gateway6();
    let udp = udp_payload(1);
    let mut multicast_src = a_to_far(64);
    multicast_src[22] = 0xff;
    let mut bad_version = a_to_far(64);
    bad_version[14] = 0x40;
    let cases: Vec<(Vec<u8>, Stat)> = vec![
        (
            frame6(GW1_LAN, "fe80::10", "2001:db8:2::10", 64, 17, &udp),
            Stat::Ipv6NotForwarded,
        ),
        (
            frame6(GW1_LAN, "2001:db8:1::10", "fe80::99", 64, 17, &udp),
            Stat::Ipv6NotForwarded,
        ),
        (multicast_src, Stat::Ipv6NotForwarded),
        (
            frame6(GW1_LAN, "2001:db8:1::10", "2001:db8:9::1", 64, 17, &udp),
            Stat::NoRoute,
        ),
        (
            frame6(GW1_LAN, "2001:db8:1::10", "ff0e::1", 64, 17, &udp),
            Stat::NotForUs,
        ),
        (a_to_far(64)[..14 + 39].to_vec(), Stat::Malformed),
        (bad_version, Stat::Malformed),
        // A unicast MAC not ours.
        (
            {
                let mut f = a_to_far(64);
                f[..6].copy_from_slice(&[2, 0, 0, 0, 9, 9]);
                f
            },
            Stat::NotForUs,
        ),
        // A fragment for us (not the first) of neither ESP nor UDP: not reassembled.
        (
            frame6(
                GW1_LAN,
                "2001:db8:1::10",
                "2001:db8:1::1",
                64,
                ipv6::NEXT_FRAGMENT,
                &[ipv6::NEXT_ICMPV6, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0],
            ),
            Stat::Fragments,
        ),
    ];
    for (i, (bytes, stat)) in cases.into_iter().enumerate() {
        let before = gw.stats.get(stat);
        let (v, _) = run(&mut gw, 0, &bytes);
        assert_eq!(v, Verdict::Drop(stat), "case {i}");
        assert_eq!(gw.stats.get(stat), before + 1, "case {i} counted");
    }
    assert_eq!(gw.stats.get(Stat::ForwardedPackets), 0);
}

#[test]
fn neighbor_discovery_and_traffic_for_us_go_to_the_main_lcore() {
    let mut gw = gateway6();
    // Solicitations for our global and link-local addresses, to their groups' MACs.
    for target in ["2001:db8:1::1", "fe80::ff:fe00:101"] {
        let f = ns(target);
        let (v, punted) = run(&mut gw, 0, &f);
        assert_eq!(v, Verdict::Punt(Punt::Nd), "{target}");
        assert_eq!(punted, f, "punted with its own Ethernet header");
    }
    // For someone else's address: not ours.
    assert_eq!(
        run(&mut gw, 0, &ns("2001:db8:1::20")).0,
        Verdict::Drop(Stat::NotForUs)
    );
    // An advertisement unicast to us.
    let mut na = vec![0u8; 32];
    let r = icmpv6::NdRepr::Advert {
        flags: icmpv6::NA_SOLICITED,
        target: a6("2001:db8:1::10"),
        target_mac: Some(HOST_A),
    };
    r.emit(&a6("2001:db8:1::10"), &a6("2001:db8:1::1"), &mut na)
        .unwrap();
    let f = frame6(GW1_LAN, "2001:db8:1::10", "2001:db8:1::1", 255, 58, &na);
    assert_eq!(run(&mut gw, 0, &f).0, Verdict::Punt(Punt::Nd));
    // Echo to each of our addresses, and UDP: for the main lcore as anything local.
    for (mac, dst) in [
        (GW1_LAN, "2001:db8:1::1"),
        (GW1_LAN, "fe80::ff:fe00:101"),
        (GW1_LAN, "2001:db8:ffff::1"),
    ] {
        let f = echo6(mac, "2001:db8:1::10", dst);
        assert_eq!(
            run(&mut gw, 0, &f),
            (Verdict::Punt(Punt::Local), f.clone()),
            "{dst}"
        );
    }
    let f = frame6(
        GW1_LAN,
        "2001:db8:1::10",
        "2001:db8:1::1",
        64,
        17,
        &udp_payload(4),
    );
    assert_eq!(run(&mut gw, 0, &f).0, Verdict::Punt(Punt::Local));
    assert_eq!(gw.stats.get(Stat::Punted), 7);
}

/// What the main lcore originates (an echo reply) is routed with its hop limit as set.
#[test]
fn originated_packets_are_routed_as_they_are() {
    let mut gw = gateway6();
    let mut reply = echo6(GW1_LAN, "2001:db8:1::1", "2001:db8:2::10")[14..].to_vec();
    reply[7] = 64;
    let mut b = VecBuf::new(&reply);
    assert_eq!(gw.output_ip(&mut b), Verdict::Tx(1));
    assert_eq!(&b.data()[..6], &GW2_WAN.0);
    assert_eq!(
        &b.data()[14..],
        &reply[..],
        "hop limit 64, as the main lcore set it"
    );
    // To ourselves, nothing goes around again.
    let mut b = VecBuf::new(&echo6(GW1_LAN, "2001:db8:2::10", "2001:db8:1::1")[14..]);
    assert_eq!(gw.output_ip(&mut b), Verdict::Drop(Stat::NoRoute));
}

#[test]
fn routes_neighbors_and_addresses_change_live() {
    let mut gw = gateway6();
    assert_eq!(run(&mut gw, 0, &a_to_far(64)).0, Verdict::Tx(1));
    // A longer route to another next hop wins; its neighbor is static too.
    gw.change(Change::SetNeighbor {
        addr: a6("2001:db8:ffff::3").into(),
        mac: HOST_B.0,
    })
    .unwrap();
    gw.change(Change::SetRoute {
        prefix: "2001:db8:2::/64".parse().unwrap(),
        via: RouteVia::Gateway(a6("2001:db8:ffff::3").into()),
    })
    .unwrap();
    let (v, out) = run(&mut gw, 0, &a_to_far(64));
    assert_eq!((v, &out[..6]), (Verdict::Tx(1), &HOST_B.0[..]));
    gw.change(Change::DeleteNeighbor {
        addr: a6("2001:db8:ffff::3").into(),
    })
    .unwrap();
    assert_eq!(
        run(&mut gw, 0, &a_to_far(64)).0,
        Verdict::Drop(Stat::NoNeighbor)
    );
    gw.change(Change::DeleteRoute {
        prefix: "2001:db8:2::/64".parse().unwrap(),
    })
    .unwrap();
    assert_eq!(
        run(&mut gw, 0, &a_to_far(64)).0,
        Verdict::Tx(1),
        "the /48 again"
    );
    gw.change(Change::DeleteRoute {
        prefix: "2001:db8:2::/48".parse().unwrap(),
    })
    .unwrap();
    assert_eq!(
        run(&mut gw, 0, &a_to_far(64)).0,
        Verdict::Drop(Stat::NoRoute)
    );
    // The LAN's address moves (once nothing stands on the interface, as for IPv4): the old
    // one is no longer ours, the new one is.
    gw.change(Change::DeleteNeighbor {
        addr: ip("10.1.0.10").into(),
    })
    .unwrap();
    let lan = |v6: &str| {
        Change::SetInterface(channel::InterfaceSpec {
            name: name("lan0"),
            port: 0,
            addr: ip("10.1.0.1"),
            prefix_len: 24,
            ipv6: Some(v6.parse().unwrap()),
            mac: Some(GW1_LAN.0),
            mtu: 1500,
        })
    };
    gw.change(lan("2001:db8:5::1/64")).unwrap();
    let old = echo6(GW1_LAN, "2001:db8:1::10", "2001:db8:1::1");
    assert_eq!(run(&mut gw, 0, &old).0, Verdict::Drop(Stat::NoRoute));
    let new = echo6(GW1_LAN, "2001:db8:5::10", "2001:db8:5::1");
    assert_eq!(run(&mut gw, 0, &new).0, Verdict::Punt(Punt::Local));
    assert_eq!(
        run(
            &mut gw,
            0,
            &echo6(GW1_LAN, "2001:db8:5::10", "fe80::ff:fe00:101")
        )
        .0,
        Verdict::Punt(Punt::Local),
        "the link-local address stays"
    );
}

#[test]
fn changes_that_do_not_fit_are_refused_whole() {
    let mut gw = gateway6();
    let route = |via: RouteVia| Change::SetRoute {
        prefix: "2001:db8:7::/48".parse().unwrap(),
        via,
    };
    for (c, why) in [
        (route(RouteVia::Gateway(a6("fe80::1").into())), "link-local"),
        (
            route(RouteVia::Gateway(a6("2001:db8:9::1").into())),
            "not on any interface's IPv6 subnet",
        ),
        (
            route(RouteVia::Gateway(a6("2001:db8:1::1").into())),
            "our own address",
        ),
        (route(RouteVia::Gateway(ip("192.0.2.2").into())), "not IPv6"),
        (
            route(RouteVia::Tunnel(name("st0.9"))),
            "no tunnel named st0.9",
        ),
        (
            Change::SetRoute {
                prefix: "2001:db8:1::/64".parse().unwrap(),
                via: RouteVia::Gateway(a6("2001:db8:ffff::2").into()),
            },
            "an interface's own route",
        ),
        (
            Change::SetNeighbor {
                addr: a6("2001:db8:9::10").into(),
                mac: HOST_A.0,
            },
            "not on any interface's IPv6 subnet",
        ),
        (
            Change::SetNeighbor {
                addr: a6("fe80::10").into(),
                mac: HOST_A.0,
            },
            "link-local",
        ),
    ] {
        let e = gw.change(c.clone()).unwrap_err();
        assert!(e.reason.contains(why), "{c:?}: {e}");
    }
    // An interface an IPv6 route goes through stays.
    gw.change(Change::DeleteNeighbor {
        addr: ip("10.1.0.10").into(),
    })
    .unwrap();
    gw.change(Change::SetRoute {
        prefix: "2001:db8:3::/48".parse().unwrap(),
        via: RouteVia::Gateway(a6("2001:db8:1::20").into()),
    })
    .unwrap();
    let e = gw
        .change(Change::DeleteInterface { name: name("lan0") })
        .unwrap_err();
    assert_eq!(e.reason, "route 2001:db8:3::/48 goes through it");
    assert_eq!(
        run(&mut gw, 0, &a_to_far(64)).0,
        Verdict::Tx(1),
        "nothing changed"
    );
}

/// The workers' IPv6 table holds what the dataplane was sized for, and no more.
#[test]
fn the_ipv6_route_table_has_its_size() {
    let mut gw = gateway(true, false, |v| {
        v["dataplane"]["max_routes6"] = 4.into();
        v["interfaces"][1]["address6"] = "2001:db8:ffff::1/64".into();
    });
    let route = |i: u16| Change::SetRoute {
        prefix: format!("2001:db8:{i}::/48").parse().unwrap(),
        via: RouteVia::Gateway(a6("2001:db8:ffff::2").into()),
    };
    gw.change(route(1)).unwrap();
    gw.change(route(2)).unwrap();
    let e = gw.change(route(3)).unwrap_err();
    assert!(e.reason.contains("max_routes6"), "{e}");
    assert_eq!(gw.stats.get(Stat::CommandErrors), 0);
}

proptest! {
    /// Any bytes behind a valid IPv6 header (any next header, to us, to a group, to route),
    /// and any bytes in a frame that says IPv6, go through without a panic.
    #[test]
    fn ipv6_input_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..200),
        next in prop::sample::select(vec![0u8, 6, 17, 43, 44, 58, 59, 60]),
        dst in prop::sample::select(vec!["2001:db8:1::1", "ff02::1:ff00:1", "2001:db8:2::10", "fe80::ff:fe00:101"]),
        hop_limit in any::<u8>(),
    ) {
        let mut gw = gateway6();
        let mut raw = vec![0u8; 14];
        raw[..6].copy_from_slice(&GW1_LAN.0);
        raw[12..14].copy_from_slice(&[0x86, 0xdd]);
        raw.extend_from_slice(&bytes);
        let _ = run(&mut gw, 0, &raw);
        let mac = if dst.starts_with("ff") { Mac([0x33, 0x33, 0xff, 0, 0, 1]) } else { GW1_LAN };
        let f = frame6(mac, "2001:db8:1::10", dst, hop_limit, next, &bytes);
        let _ = run(&mut gw, 0, &f);
        let _ = nd::handle(&f, &Interface { ipv6: "2001:db8:1::1/64".parse().ok(), ..*gw.tables.interface(0).unwrap() },
            &mut [0; nd::FRAME_LEN]);
    }
}

/// IKE over IPv6: UDP 500, and 4500 behind the non-ESP marker, to one of our IPv6 addresses
/// goes to the main lcore as IKE (what it hands the control comes out of the frame whole, its
/// UDP checksum checked there); a NAT keepalive is dropped; the control's answer leaves
/// routed, hop limit 64.
#[test]
fn ike_over_ipv6_goes_to_the_control_and_back() {
    use crate::forward::ike;
    let mut gw = gateway6();
    let peer = "2001:db8:2::1";
    let udp = |port: u16, payload: &[u8]| {
        let mut u = port.to_be_bytes().to_vec();
        u.extend_from_slice(&port.to_be_bytes());
        u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(payload);
        let (s, d) = (IpAddr::V6(a6(peer)), IpAddr::V6(a6("2001:db8:ffff::1")));
        let c = crate::wire::udp::checksum(s, d, &u).unwrap();
        u[6..8].copy_from_slice(&c.to_be_bytes());
        frame6(GW1_WAN, peer, "2001:db8:ffff::1", 60, ipv6::NEXT_UDP, &u)
    };
    for (port, payload) in [(500, &b"IKE_SA_INIT"[..]), (4500, &b"\0\0\0\0IKE_AUTH"[..])] {
        let f = udp(port, payload);
        let (v, punted) = run(&mut gw, 1, &f);
        assert_eq!(v, Verdict::Punt(Punt::Ike), "{port}");
        let d = ike::datagram_of(&punted, 1).expect("IKE in the punted frame");
        assert_eq!(
            (d.src, d.dst, d.sport, d.dport),
            (
                IpAddr::V6(a6(peer)),
                IpAddr::V6(a6("2001:db8:ffff::1")),
                port,
                port
            )
        );
        assert_eq!(
            d.payload,
            payload.strip_prefix(&[0, 0, 0, 0][..]).unwrap_or(payload)
        );
    }
    assert_eq!(gw.stats.get(Stat::IkePackets), 2);
    // A zero or wrong checksum: punted (the worker does not read the whole datagram), but no
    // IKE for the control.
    for c in [[0, 0], [0x12, 0x34]] {
        let mut f = udp(500, b"IKE_SA_INIT");
        f[14 + 40 + 6..14 + 40 + 8].copy_from_slice(&c);
        let (_, punted) = run(&mut gw, 1, &f);
        assert_eq!(ike::datagram_of(&punted, 1), None);
    }
    assert_eq!(
        run(&mut gw, 1, &udp(4500, &[0xff])).0,
        Verdict::Drop(Stat::NattKeepalives)
    );
    // ESP in UDP is not taken over IPv6: for the gateway's stack, which has no use for it.
    assert_eq!(
        run(&mut gw, 1, &udp(4500, &[0, 0, 0x10, 1, 0, 0, 0, 1])).0,
        Verdict::Punt(Punt::Local)
    );
    // The control's response, as the main lcore writes it, goes to the peer's router.
    let d = channel::Datagram {
        port: 0,
        src: IpAddr::V6(a6("2001:db8:ffff::1")),
        dst: IpAddr::V6(a6(peer)),
        sport: 500,
        dport: 500,
        payload: b"IKE_SA_INIT response",
    };
    let mut packet = vec![0u8; ike::packet_len(&d)];
    assert!(ike::emit(&d, &mut packet));
    let mut b = VecBuf::new(&packet);
    assert_eq!(gw.output_ip(&mut b), Verdict::Tx(1));
    assert_eq!(&b.data()[..6], &GW2_WAN.0, "to the next hop's MAC");
    assert_eq!(&b.data()[14..], &packet[..], "as written: hop limit 64");

    // A big IKE message the peer's stack cut into fragments: reassembled on the main lcore,
    // then IKE again, in a frame of its own.
    let big = vec![0x2a; 3000];
    let d = channel::Datagram {
        port: 1,
        src: IpAddr::V6(a6(peer)),
        dst: IpAddr::V6(a6("2001:db8:ffff::1")),
        sport: 500,
        dport: 500,
        payload: &big,
    };
    let mut packet = vec![0u8; ike::packet_len(&d)];
    assert!(ike::emit(&d, &mut packet));
    let mut r = crate::reassembly::Reassembler::default();
    let mut whole = None;
    for p in crate::reassembly::tests6::cut(&packet, 40, 6, 1232, 5) {
        let f = [&udp(500, b"x")[..14], &p[..]].concat();
        let (v, punted) = run(&mut gw, 1, &f);
        assert_eq!(v, Verdict::Punt(Punt::Reassemble));
        whole = whole.or(r.add(&punted[14..], std::time::Instant::now()));
    }
    let mut b = VecBuf::new(&whole.expect("whole"));
    assert_eq!(gw.output_ip(&mut b), Verdict::Punt(Punt::Ike));
    assert_eq!(ike::datagram_of(b.data(), 1), Some(d));
}
