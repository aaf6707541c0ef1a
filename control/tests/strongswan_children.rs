//! Several children under one IKE SA with strongSwan's charon (the lab of `common/charon.rs`):
//! a route-based VPN with two children (two tunnels), and a policy-based VPN whose policies
//! make the children, beside a deny and traffic in clear.

#[path = "common/charon.rs"]
#[allow(dead_code)] // each strongswan_* test uses part of the lab
mod charon;
#[path = "common/gateways.rs"]
mod gateways;
#[path = "../../dataplane/tests/common/host.rs"]
#[allow(dead_code)]
mod host;
use charon::*;
use gateways::*;
use std::time::Duration;

/// One VPN, two children under one IKE SA with charon, each with its own selectors and
/// espgw tunnel (st0.0: 10.2.0.0/24, st0.1: 10.2.1.0/24): espgw asks for the second by
/// CREATE_CHILD_SA, or charon does and espgw matches it to its tunnel by the selectors.
#[test]
fn two_children_under_one_ike_sa_with_strongswan_both_roles() {
    for (tag, espgw_initiates) in [("m", true), ("k", false)] {
        let Some(lab) = lab(&Setup {
            tag,
            ike: "aes256gcm16-prfsha256-x25519",
            esp: "aes256gcm16",
            espgw_initiates,
            edit: &|_| {},
            rekey_time: "4h",
            charon_extra: "",
            certs: None,
            second_child: true,
            ipv6: false,
        }) else {
            return;
        };
        assert!(
            until(Duration::from_secs(30), || {
                let l = lab.charon_log();
                l.contains("CHILD_SA net{1} established")
                    && l.contains("CHILD_SA net2{2} established")
            }),
            "not both children: {}",
            lab.logs()
        );
        let a = lab.ns("a");
        assert!(a_reaches_b(&a), "a -> b: {}", lab.logs());
        assert!(
            until(Duration::from_secs(5), || ping(
                &a,
                "10.1.0.10",
                "10.2.1.10",
                1,
                "0.2"
            ) == (1, 1)),
            "a -> b's second address (second child): {}",
            lab.logs()
        );
        assert_eq!(ping(&a, "10.1.0.10", "10.2.1.10", 20, "0.02"), (20, 20));
        assert_eq!(ping(&a, "10.1.0.10", "10.2.0.10", 20, "0.02"), (20, 20));
        // One IKE SA, two children, each keying its tunnel.
        assert_eq!(ike_up(&lab).len(), 1, "{}", lab.logs());
        let detail = lab.cli(&["show", "security", "ike", "security-associations", "detail"]);
        for (tunnel, remote) in [("st0.0", "10.2.0.0/24"), ("st0.1", "10.2.1.0/24")] {
            assert!(
                detail
                    .lines()
                    .any(|l| l.trim_start().starts_with(tunnel) && l.contains(remote)),
                "{tunnel} {remote} not in {detail}"
            );
        }
    }
}

/// A policy-based VPN with charon (Junos `then permit tunnel ipsec-vpn`): no route into a
/// tunnel at all; two policies send 10.2.0.0/24 and 10.2.1.0/24 into the VPN, whose IKE SA
/// carries a child for each (charon's `net` and `net2`, different selectors); a third drops
/// what goes to 10.2.2.0/24; what matches none (gw2's own address) is routed in clear. Each
/// is counted (`/v1/statistics`).
#[test]
fn a_policy_based_vpn_with_two_children_a_deny_and_traffic_in_clear() {
    let edit = |c: &mut serde_json::Value| {
        c["tunnels"] = serde_json::json!([]);
        c["routes"] = serde_json::json!([]);
        let v = &mut c["ike"]["vpns"][0];
        let o = v.as_object_mut().unwrap();
        for f in ["bind_interface", "local_ts", "remote_ts", "children"] {
            o.remove(f);
        }
        c["policies"] = serde_json::json!([
            {"name": "b-net", "source": ["10.1.0.0/24"], "destination": ["10.2.0.0/24"],
             "then": {"ipsec_vpn": "vpn0"}},
            {"name": "b-net2", "source": ["10.1.0.0/24"], "destination": ["10.2.1.0/24"],
             "then": {"ipsec_vpn": "vpn0"}},
            {"name": "no-lab", "destination": ["10.2.2.0/24"], "then": "deny"}
        ]);
    };
    let Some(lab) = lab(&Setup {
        tag: "y",
        ike: "aes256gcm16-prfsha256-x25519",
        esp: "aes256gcm16",
        espgw_initiates: true,
        edit: &edit,
        rekey_time: "4h",
        charon_extra: "",
        certs: None,
        second_child: true,
        ipv6: false,
    }) else {
        return;
    };
    assert!(
        until(Duration::from_secs(30), || {
            let l = lab.charon_log();
            l.contains("CHILD_SA net{1} established") && l.contains("CHILD_SA net2{2} established")
        }),
        "not both children: {}",
        lab.logs()
    );
    let a = lab.ns("a");
    assert!(a_reaches_b(&a), "a -> b: {}", lab.logs());
    assert!(
        until(Duration::from_secs(5), || ping(
            &a,
            "10.1.0.10",
            "10.2.1.10",
            1,
            "0.2"
        ) == (1, 1)),
        "second policy's child: {}",
        lab.logs()
    );
    assert_eq!(ping(&a, "10.1.0.10", "10.2.1.10", 10, "0.02"), (10, 10));
    // Denied: nothing comes back.
    sh(&lab.ns("b"), "ip addr add 10.2.2.10/16 dev eth0");
    assert_eq!(ping(&a, "10.1.0.10", "10.2.2.10", 3, "0.05").1, 0);
    // No policy: routed in clear, from a source no policy names (10.1.5.10) to gw2's own
    // address, which answers in clear too (10.1.5.0/24 is outside charon's selectors).
    sh(&a, "ip addr add 10.1.5.10/16 dev eth0");
    sh(&lab.ns("gw2"), "ip route add 10.1.5.0/24 via 192.0.2.1");
    assert!(
        until(Duration::from_secs(5), || ping(
            &a,
            "10.1.5.10",
            "192.0.2.2",
            1,
            "0.2"
        ) == (1, 1)),
        "in clear: {}",
        lab.logs()
    );
    assert_eq!(ping(&a, "10.1.5.10", "192.0.2.2", 3, "0.05"), (3, 3));
    let detail = lab.cli(&["show", "security", "ike", "security-associations", "detail"]);
    for (tunnel, remote) in [("b-net", "10.2.0.0/24"), ("b-net2", "10.2.1.0/24")] {
        assert!(
            detail
                .lines()
                .any(|l| l.trim_start().starts_with(tunnel) && l.contains(remote)),
            "{tunnel} {remote} not in {detail}"
        );
    }
    let shown = lab.cli(&["show", "security", "policies"]);
    for want in ["b-net2", "10.2.1.0/24", "ipsec-vpn vpn0", "no-lab", "deny"] {
        assert!(shown.contains(want), "{want} not in {shown}");
    }
    let stats = lab.cli(&["show", "security", "ipsec", "statistics"]);
    assert!(
        stats.contains("Policies:") && !stats.contains("Denied: 0,"),
        "{stats}"
    );
    let token = std::fs::read_to_string(lab.p("token")).unwrap();
    let (_, body) = http(&lab.ns("gw1"), "/v1/statistics", Some(token.trim()));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let g = &v["global"];
    assert!(g["policy_tunneled"].as_u64() >= Some(12), "{g}");
    assert!(g["policy_denied"].as_u64() >= Some(3), "{g}");
    assert!(g["policy_unmatched"].as_u64() >= Some(3), "{g}");
}
