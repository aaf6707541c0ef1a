//! Policies (policy-based VPNs) on the packet path: the first matching policy sends a packet
//! into its tunnel whatever the routes say, drops it, or lets it be routed; what matches none
//! is routed and counted; decrypted packets are not looked up.

use super::*;
use channel::{PolicyAction, PolicySpec, Prefixes};

fn prefixes(l: &[&str]) -> Prefixes {
    l.iter().map(|p| p.parse().unwrap()).collect()
}

fn policy(
    name_: &str,
    position: u32,
    dst: &[&str],
    dports: (u16, u16),
    action: PolicyAction,
) -> Change {
    Change::SetPolicy(PolicySpec {
        name: name(name_),
        position,
        src: prefixes(&["10.1.0.0/24"]),
        dst: prefixes(dst),
        src6: Default::default(),
        dst6: Default::default(),
        protocol: if dports == (0, u16::MAX) {
            0
        } else {
            ipv4::PROTO_UDP
        },
        src_ports: (0, u16::MAX),
        dst_ports: dports,
        action,
    })
}

/// Deny-all, any to any (both families), last.
fn deny_all() -> Change {
    Change::SetPolicy(PolicySpec {
        name: name("deny-all"),
        position: 9,
        src: Prefixes::new(),
        dst: Prefixes::new(),
        src6: Default::default(),
        dst6: Default::default(),
        protocol: 0,
        src_ports: (0, u16::MAX),
        dst_ports: (0, u16::MAX),
        action: PolicyAction::Deny,
    })
}

/// gw1 with a second tunnel, st0.1 to 192.0.2.3 (SPI 0x3001), which no route uses.
fn with_second_tunnel(v: &mut serde_json::Value) {
    v["neighbors"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"address": "192.0.2.3", "mac": "02:00:00:00:0a:03"}));
    v["tunnels"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"name": "st0.1", "local": "192.0.2.1", "remote": "192.0.2.3"}));
    v["manual_sas"].as_array_mut().unwrap().push(serde_json::json!(
        {"tunnel": "st0.1", "direction": "out", "spi": "0x3001", "algorithm": "aes-128-gcm", "key": K1}
    ));
}

fn to(dst: &str) -> Vec<u8> {
    frame(
        GW1_LAN,
        HOST_A,
        "10.1.0.10",
        dst,
        64,
        ipv4::PROTO_UDP,
        &udp_payload(20),
    )
}

/// The SPI of the ESP frame on the wire, and its outer destination.
fn esp_of(wire: &[u8]) -> (u32, Ipv4Addr) {
    let spi = u32::from_be_bytes(wire[34..38].try_into().unwrap());
    let dst = Ipv4Addr::from(<[u8; 4]>::try_from(&wire[30..34]).unwrap());
    (spi, dst)
}

#[test]
fn the_first_matching_policy_decides_before_the_routes() {
    let mut gw1 = gateway(true, false, with_second_tunnel);
    let mut gw2 = gateway(false, false, |_| {});
    gw1.change(policy(
        "dns-to-c",
        0,
        &["10.2.5.0/24"],
        (53, 53),
        PolicyAction::Tunnel(name("st0.1")),
    ))
    .unwrap();
    gw1.change(policy(
        "block",
        1,
        &["10.2.9.0/24"],
        (0, u16::MAX),
        PolicyAction::Deny,
    ))
    .unwrap();
    gw1.change(policy(
        "lab",
        2,
        &["10.7.0.0/16"],
        (0, u16::MAX),
        PolicyAction::Permit,
    ))
    .unwrap();
    // UDP 53 to 10.2.5.5: the policy's tunnel, not the route's.
    let (v, wire) = run(&mut gw1, 0, &to("10.2.5.5"));
    assert_eq!(v, Verdict::Tx(1));
    assert_eq!(esp_of(&wire), (0x3001, ip("192.0.2.3")));
    // Another destination in 10.2/16: no policy, the route into st0.0.
    let (v, wire) = run(&mut gw1, 0, &to("10.2.0.10"));
    assert_eq!(v, Verdict::Tx(1));
    assert_eq!(esp_of(&wire), (0x1001, ip("192.0.2.2")));
    // Denied; permitted but unroutable.
    assert_eq!(
        run(&mut gw1, 0, &to("10.2.9.9")).0,
        Verdict::Drop(Stat::PolicyDenied)
    );
    assert_eq!(
        run(&mut gw1, 0, &to("10.7.0.1")).0,
        Verdict::Drop(Stat::NoRoute)
    );
    let counted = |gw: &crate::testkit::Gateway| {
        [
            Stat::PolicyTunneled,
            Stat::PolicyUnmatched,
            Stat::PolicyDenied,
            Stat::PolicyPermitted,
        ]
        .map(|s| gw.stats.get(s))
    };
    assert_eq!(counted(&gw1), [1, 1, 1, 1]);
    // What arrives through a tunnel is not looked up (it was, at the other end): a policy
    // that would drop it changes nothing.
    gw1.change(Change::SetPolicy(PolicySpec {
        name: name("inbound"),
        position: 3,
        src: Prefixes::new(),
        dst: prefixes(&["10.1.0.0/24"]),
        src6: Default::default(),
        dst6: Default::default(),
        protocol: 0,
        src_ports: (0, u16::MAX),
        dst_ports: (0, u16::MAX),
        action: PolicyAction::Deny,
    }))
    .unwrap();
    let back = frame(
        GW2_LAN,
        HOST_B,
        "10.2.9.9",
        "10.1.0.10",
        64,
        ipv4::PROTO_UDP,
        &udp_payload(3),
    );
    let (v, wire) = run(&mut gw2, 0, &back);
    assert_eq!(v, Verdict::Tx(1));
    assert_eq!(run(&mut gw1, 1, &wire).0, Verdict::Tx(0));
    assert_eq!(counted(&gw1), [1, 1, 1, 1]);
    // The tunnel stays while a policy sends into it; without the policy, the route rules.
    let e = gw1
        .change(Change::DeleteTunnel {
            name: name("st0.1"),
        })
        .unwrap_err();
    assert!(e.reason.contains("policy dns-to-c"), "{e}");
    gw1.change(Change::DeletePolicy {
        name: name("dns-to-c"),
    })
    .unwrap();
    let (_, wire) = run(&mut gw1, 0, &to("10.2.5.5"));
    assert_eq!(esp_of(&wire).0, 0x1001);
    assert!(gw1
        .change(policy(
            "x",
            3,
            &[],
            (0, 9),
            PolicyAction::Tunnel(name("st0.9"))
        ))
        .is_err());
    // No policy left that matters... and none at all: no lookup, nothing counted.
    for n in ["block", "lab", "inbound"] {
        gw1.change(Change::DeletePolicy { name: name(n) }).unwrap();
    }
    run(&mut gw1, 0, &to("10.2.9.9"));
    assert_eq!(counted(&gw1), [1, 2, 1, 1]);
}

/// The gateway's own packets (IKE, ICMP) are not looked up, so a last "deny everything"
/// policy (Junos' default) cannot cut its IKE; the fragments the main lcore cuts from a packet
/// too big for its tunnel are (as transit), the non-first ones by addresses and protocol.
#[test]
fn the_gateways_own_packets_are_not_looked_up_and_its_fragments_are() {
    let mut gw1 = gateway(true, false, with_second_tunnel);
    gw1.change(policy(
        "dns-to-c",
        0,
        &["10.2.5.0/24"],
        (53, 53),
        PolicyAction::Tunnel(name("st0.1")),
    ))
    .unwrap();
    gw1.change(deny_all()).unwrap();
    let packet = |dst: &str| to(dst)[14..].to_vec();
    let send = |gw: &mut crate::testkit::Gateway, bytes: Vec<u8>, own: bool| {
        let mut b = [VecBuf::new(&bytes)];
        let mut v = [if own {
            gw.output_ip(&mut b[0])
        } else {
            gw.transit_ip(&mut b[0])
        }];
        gw.complete(&mut b, &mut v);
        (v[0], b[0].data().to_vec())
    };
    // Ours: routed into st0.0 whatever the policies say.
    let (v, wire) = send(&mut gw1, packet("10.2.0.10"), true);
    assert_eq!(v, Verdict::Tx(1));
    assert_eq!(esp_of(&wire).0, 0x1001);
    // Another host's, handed back by the main lcore: denied.
    assert_eq!(
        send(&mut gw1, packet("10.2.0.10"), false).0,
        Verdict::Drop(Stat::PolicyDenied)
    );
    // A non-first fragment of UDP to 10.2.5.5 (no ports to read): follows the port policy.
    let mut frag = packet("10.2.5.5");
    frag[6] = 0x00;
    frag[7] = 0x10; // offset 128 bytes
    let sum = checksum::sum(&{
        let mut h = frag[..20].to_vec();
        h[10] = 0;
        h[11] = 0;
        h
    });
    frag[10..12].copy_from_slice(&(!sum).to_be_bytes());
    let (v, wire) = send(&mut gw1, frag, false);
    assert_eq!(v, Verdict::Tx(1));
    assert_eq!(esp_of(&wire), (0x3001, ip("192.0.2.3")));
}

/// IPv6 has its policies too, looked up among IPv6 rules only: a policy naming IPv6 prefixes
/// sends IPv6 into its tunnel (ESP next header 41), one naming IPv4 prefixes never matches
/// IPv6, a deny-all (any to any) drops IPv6 too, but not neighbor discovery or pings to the
/// gateway itself; fragments follow the port-specific policy (opaque), and headers that do
/// not parse are dropped.
#[test]
fn ipv6_packets_have_their_own_policies() {
    use super::ipv6::frame6;
    use super::ipv6_tunnel::{a_to_b6, with_ipv6};
    use crate::wire::ipv6::{NEXT_DEST_OPTS, NEXT_FRAGMENT, NEXT_ICMPV6, NEXT_UDP};
    let mut gw1 = gateway(true, false, |v| {
        with_second_tunnel(v);
        with_ipv6(true)(v);
    });
    let prefixes6 = |l: &[&str]| -> Box<channel::Prefixes6> {
        Box::new(l.iter().map(|p| p.parse().unwrap()).collect())
    };
    gw1.change(Change::SetPolicy(PolicySpec {
        name: name("web6-to-c"),
        position: 0,
        src: Prefixes::new(),
        dst: Prefixes::new(),
        src6: prefixes6(&["2001:db8:1::/64"]),
        dst6: prefixes6(&["2001:db8:2:5::/64"]),
        protocol: ipv4::PROTO_UDP,
        src_ports: (0, u16::MAX),
        dst_ports: (53, 53),
        action: PolicyAction::Tunnel(name("st0.1")),
    }))
    .unwrap();
    // IPv4 only: the IPv6 packets to 2001:db8:2::/48 pass it by.
    gw1.change(policy(
        "v4",
        1,
        &["0.0.0.0/0"],
        (0, u16::MAX),
        PolicyAction::Deny,
    ))
    .unwrap();
    let dns = |dst: &str, dport: u16| {
        let mut u = udp_payload(12);
        u[2..4].copy_from_slice(&dport.to_be_bytes());
        frame6(GW1_LAN, "2001:db8:1::10", dst, 64, NEXT_UDP, &u)
    };
    // Into the policy's tunnel (st0.1, SPI 0x3001), IPv6 inside.
    let (v, wire) = run(&mut gw1, 0, &dns("2001:db8:2:5::9", 53));
    assert_eq!(v, Verdict::Tx(1));
    assert_eq!(esp_of(&wire), (0x3001, ip("192.0.2.3")));
    // Another port: no IPv6 policy matches, the IPv4 deny does not apply, the route's tunnel.
    let (v, wire) = run(&mut gw1, 0, &dns("2001:db8:2:5::9", 80));
    assert_eq!(v, Verdict::Tx(1));
    assert_eq!(esp_of(&wire), (0x1001, ip("192.0.2.2")));
    // A fragment of UDP to the same host: opaque ports, so the policy's tunnel, as its
    // packet's other fragments.
    let mut frag = vec![NEXT_UDP, 0, 0, 9, 0, 0, 0, 1];
    frag.extend_from_slice(&udp_payload(16)[..16]);
    let f = frame6(
        GW1_LAN,
        "2001:db8:1::10",
        "2001:db8:2:5::9",
        64,
        NEXT_FRAGMENT,
        &frag,
    );
    let (v, wire) = run(&mut gw1, 0, &f);
    assert_eq!(v, Verdict::Tx(1));
    assert_eq!(esp_of(&wire).0, 0x3001);
    assert_eq!(
        [Stat::PolicyTunneled, Stat::PolicyUnmatched].map(|s| gw1.stats.get(s)),
        [2, 1]
    );
    // A destination options header cut short: not classifiable, dropped.
    let bad = frame6(
        GW1_LAN,
        "2001:db8:1::10",
        "2001:db8:2::10",
        64,
        NEXT_DEST_OPTS,
        &[17, 9],
    );
    assert_eq!(run(&mut gw1, 0, &bad).0, Verdict::Drop(Stat::Malformed));

    // Deny-all, any to any: IPv6 transit dropped, the gateway's own ND and echo answered.
    gw1.change(deny_all()).unwrap();
    assert_eq!(
        run(&mut gw1, 0, &a_to_b6(64, 20)).0,
        Verdict::Drop(Stat::PolicyDenied)
    );
    let echo = frame6(
        GW1_LAN,
        "2001:db8:1::10",
        "2001:db8:1::1",
        64,
        NEXT_ICMPV6,
        &[128, 0, 0, 0, 0, 1, 0, 1],
    );
    assert_eq!(run(&mut gw1, 0, &echo).0, Verdict::Punt(Punt::Local));
}
