//! IPv6 hosts behind espgw and strongSwan's charon (the lab of `common/charon.rs`): IKE
//! negotiates IPv6 traffic selectors beside IPv4's in one child (TS_IPV6_ADDR_RANGE), and the
//! IPv4 tunnel carries IPv6 (ESP next header 41) both ways, each side decrypting the other's;
//! then IKE and ESP themselves over IPv6 (an IPv6 WAN), IPv4 and IPv6 inside.

#[path = "common/charon.rs"]
#[allow(dead_code)] // each strongswan_* test uses part of the lab
mod charon;
#[path = "common/gateways.rs"]
mod gateways;
#[path = "../../dataplane/tests/common/host.rs"]
#[allow(dead_code)]
mod host;
use charon::*;
use gateways::http;
use std::process::Command;
use std::time::Duration;

/// `ping -6` from `ns` to `to`: (sent, received).
fn ping6(ns: &str, to: &str, count: u32) -> (u32, u32) {
    ping_with(ns, &["-6"], to, count)
}

/// `ping` with `args` from `ns` to `to`, `count` echoes 50 ms apart: (sent, received).
fn ping_with(ns: &str, args: &[&str], to: &str, count: u32) -> (u32, u32) {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "ping", "-n", "-q", "-c"])
        .arg(count.to_string())
        .args(args)
        .args(["-i", "0.05", "-W", "2", to])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_default();
    let n = |w: &str| {
        line.split(',')
            .find(|p| p.contains(w))
            .and_then(|p| p.split_whitespace().next())
            .and_then(|x| x.parse().ok())
            .unwrap_or(0)
    };
    (n("transmitted"), n("received"))
}

#[test]
fn ipv6_hosts_talk_through_a_tunnel_keyed_by_ike_with_strongswan_both_roles() {
    for (tag, espgw_initiates) in [("6", true), ("7", false)] {
        let Some(lab) = lab(&Setup {
            espgw_initiates,
            ipv6: true,
            ..Setup::new(tag)
        }) else {
            return;
        };
        lab.wait_child_up();
        // Both families in the one child, as charon sees it.
        let l = lab.charon_log();
        assert!(
            l.contains("2001:db8:2::/64") && l.contains("2001:db8:1::/64"),
            "{l}"
        );
        let a = lab.ns("a");
        // Host a learns its gateway (neighbor discovery), then reaches host b by IPv6.
        assert_eq!(ping6(&a, "2001:db8:1::1", 2), (2, 2), "{}", lab.logs());
        assert!(
            until(Duration::from_secs(10), || ping6(&a, "2001:db8:2::10", 1)
                == (1, 1)),
            "a -> b over IPv6: {}",
            lab.logs()
        );
        assert_eq!(ping6(&a, "2001:db8:2::10", 20), (20, 20));
        assert_eq!(ping6(&lab.ns("b"), "2001:db8:1::10", 20), (20, 20));
        // IPv4 still crosses the same child.
        assert!(a_reaches_b(&a), "{}", lab.logs());
        let detail = lab.cli(&["show", "security", "ike", "security-associations", "detail"]);
        assert!(detail.contains("2001:db8:2::/64"), "{detail}");
    }
}

/// IKE over IPv6 with charon, both roles: the IKE SA between the WAN's IPv6 addresses (ID
/// by FQDN as before), NAT detection over IPv6 (charon's libipsec fakes a NAT, so IKE floats
/// to 4500 and ESP goes in UDP over IPv6, its checksum filled: Linux drops a zero one), and
/// hosts a and b reaching each other over IPv4 and IPv6 through the tunnel; then ESP that
/// charon's kernel cut into IPv6 fragments, which espgw puts back together.
#[test]
fn ike_and_esp_over_ipv6_with_strongswan_both_roles() {
    // A WAN of IPv6's minimum MTU on espgw's side (charon's is lowered below).
    let edit = |c: &mut serde_json::Value| c["interfaces"][1]["mtu"] = 1280.into();
    for (tag, espgw_initiates) in [("8", true), ("9", false)] {
        let Some(lab) = lab(&Setup {
            espgw_initiates,
            ipv6: true,
            ipv6_wan: true,
            edit: &edit,
            ..Setup::new(tag)
        }) else {
            return;
        };
        lab.wait_child_up();
        let l = lab.charon_log();
        assert!(
            l.contains(
                "established between 2001:db8:ffff::2[gw2.example]...2001:db8:ffff::1[gw1.example]"
            ),
            "{l}"
        );
        let a = lab.ns("a");
        assert!(a_reaches_b(&a), "IPv4 in IPv6: {}", lab.logs());
        assert_eq!(ping6(&a, "2001:db8:1::1", 2), (2, 2), "{}", lab.logs());
        assert!(
            until(Duration::from_secs(10), || ping6(&a, "2001:db8:2::10", 1)
                == (1, 1)),
            "a -> b over IPv6 in IPv6: {}",
            lab.logs()
        );
        assert_eq!(ping6(&a, "2001:db8:2::10", 20), (20, 20));
        assert_eq!(ping6(&lab.ns("b"), "2001:db8:1::10", 20), (20, 20));
        // espgw's view: the peer at its IPv6 address, floated to 4500 (NAT-T).
        let detail = lab.cli(&["show", "security", "ike", "security-associations", "detail"]);
        assert!(detail.contains("[2001:db8:ffff::2]:4500"), "{detail}");

        // charon's side at 1280 too: its ESP in UDP for a 1300-byte ping no longer fits, and
        // its kernel cuts it (in IPv6 only the source may); espgw reassembles, then decrypts.
        // The reply is too big for espgw's tunnel at that MTU: host a gets a "fragmentation
        // needed" and sends its next replies in pieces that fit.
        sh(&lab.ns("gw2"), "ip link set wan mtu 1280");
        let b = lab.ns("b");
        let big = ["-s", "1300"];
        assert!(
            until(Duration::from_secs(10), || ping_with(
                &b,
                &big,
                "10.1.0.10",
                1
            ) == (1, 1)),
            "b -> a, 1300 bytes: {}",
            lab.logs()
        );
        assert_eq!(ping_with(&b, &big, "10.1.0.10", 5), (5, 5));
        // The statistics are published about once a second: read until the pings are in.
        let token = std::fs::read_to_string(lab.p("token")).unwrap();
        let stats = || -> serde_json::Value {
            let (code, body) = http(&lab.ns("gw1"), "/v1/statistics", Some(token.trim()));
            assert_eq!(code, 200, "{body}");
            serde_json::from_str(&body).unwrap()
        };
        let reassembled = |v: &serde_json::Value| v["main"]["reassembled"].as_u64().unwrap_or(0);
        // Every request was cut (1300 bytes and more never fit 1280), each into two.
        assert!(
            until(Duration::from_secs(5), || reassembled(&stats()) >= 6),
            "{}",
            stats()
        );
        let v = stats();
        assert_eq!(
            v["main"]["reassembly_fragments"].as_u64(),
            Some(2 * reassembled(&v)),
            "{v}"
        );
        assert_eq!(v["global"]["bad_udp_checksum"].as_u64(), Some(0), "{v}");
    }
}
