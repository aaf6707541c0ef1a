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
            espgw_initiates,
            second_child: true,
            ..Setup::new(tag)
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
        edit: &edit,
        second_child: true,
        ..Setup::new("y")
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

/// Network namespaces a test made beside the topology's, removed when it ends.
struct ExtraNamespaces(Vec<String>);

impl Drop for ExtraNamespaces {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", n])
                .status();
        }
    }
}

/// A second peer for the lab: charon in namespace gw3 (198.51.100.3, reached through gw2,
/// which routes), with host c (10.3.0.10) behind it, one child 10.3.0.0/24 <-> 10.1.0.0/24.
fn second_peer(name: &str, dir: &std::path::Path, esp: &str) {
    let ns = |n: &str| format!("{name}-{n}");
    for n in ["gw3", "c"] {
        let ok = std::process::Command::new("ip")
            .args(["netns", "add", &ns(n)])
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let ip = |args: String| {
        let ok = std::process::Command::new("sh")
            .args(["-c", &args])
            .status()
            .unwrap();
        assert!(ok.success(), "{args}");
    };
    ip(format!(
        "ip link add w3 netns {gw2} type veth peer name wan netns {gw3} && \
         ip link add lan netns {gw3} type veth peer name eth0 netns {c}",
        gw2 = ns("gw2"),
        gw3 = ns("gw3"),
        c = ns("c")
    ));
    sh(
        &ns("gw2"),
        "ip addr add 198.51.100.1/24 dev w3 && ip link set w3 up",
    );
    sh(
        &ns("gw3"),
        "ip link set lo up && ip addr add 198.51.100.3/24 dev wan && ip link set wan up && \
         ip route add default via 198.51.100.1 && ip addr add 10.3.0.1/24 dev lan && \
         ip link set lan up && sysctl -qw net.ipv4.ip_forward=1",
    );
    sh(
        &ns("c"),
        "ip link set lo up && ip addr add 10.3.0.10/24 dev eth0 && ip link set eth0 up && \
         ip route add default via 10.3.0.1",
    );
    std::fs::create_dir_all(dir).unwrap();
    let d = dir.display();
    std::fs::write(
        dir.join("strongswan.conf"),
        format!(
            "charon {{\n  load_modular = yes\n  plugins {{\n    include /etc/strongswan.d/charon/*.conf\n    kernel-libipsec {{ load = yes }}\n  }}\n  filelog {{\n    log {{ path = {d}/charon.log\n          flush_line = yes\n          default = 1\n          ike = 2 }}\n  }}\n}}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("swanctl.conf"),
        format!(
            "connections {{\n  gw1 {{\n    version = 2\n    encap = yes\n    local_addrs = 198.51.100.3\n    remote_addrs = 192.0.2.1\n    proposals = aes256gcm16-prfsha256-x25519\n    local {{ auth = psk\n            id = gw3.example }}\n    remote {{ auth = psk\n             id = gw1.example }}\n    children {{\n      net {{ local_ts = 10.3.0.0/24\n            remote_ts = 10.1.0.0/24\n            esp_proposals = {esp}\n            start_action = none }}\n    }}\n  }}\n}}\nsecrets {{ ike-1 {{ id-1 = gw1.example\n                  id-2 = gw3.example\n                  secret = \"the second peer's key\" }} }}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("charon.sh"),
        format!(
            "#!/bin/sh\nmount -t tmpfs tmpfs /run\nexport STRONGSWAN_CONF={d}/strongswan.conf\n/usr/lib/ipsec/charon &\necho $! > {d}/charon.pid\nfor i in $(seq 100); do [ -S /run/charon.vici ] && break; sleep 0.1; done\nswanctl --load-all --file {d}/swanctl.conf > {d}/swanctl.log 2>&1\nwait\n"
        ),
    )
    .unwrap();
}

/// The case: three policies to two peers, both strongSwan. Two policies send
/// 10.2.0.0/24 and 10.2.1.0/24 into vpn0 (charon on gw2: two children under one IKE SA), the
/// third 10.3.0.0/24 into vpn-c (charon on gw3, behind gw2); host a reaches hosts b (both
/// addresses) and c, each through its peer.
#[test]
fn three_policies_to_two_strongswan_peers() {
    let tag = "z";
    let name = format!("espgw-s{tag}{}", std::process::id() % 10_000);
    let dir3 = std::env::temp_dir().join(format!("espgw-sw-{tag}-{}-gw3", std::process::id()));
    let _extra = ExtraNamespaces(vec![format!("{name}-gw3"), format!("{name}-c")]);
    let edit = |c: &mut serde_json::Value| {
        second_peer(&name, &dir3, "aes256gcm16");
        c["tunnels"] = serde_json::json!([]);
        c["routes"] = serde_json::json!([{"prefix": "198.51.100.0/24", "via": "192.0.2.2"}]);
        let v = &mut c["ike"]["vpns"][0];
        let o = v.as_object_mut().unwrap();
        for f in ["bind_interface", "local_ts", "remote_ts", "children"] {
            o.remove(f);
        }
        c["ike"]["gateways"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "name": "peer3", "local_address": "192.0.2.1", "remote_address": "198.51.100.3",
                "local_id": "gw1.example", "remote_id": "gw3.example",
                "psk": "the second peer's key", "proposals": ["aes256gcm16-prfsha256-x25519"],
                "dpd": {"interval_s": 5, "action": "clear"}}));
        c["ike"]["vpns"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
            "name": "vpn-c", "gateway": "peer3", "esp_proposals": ["aes256gcm16"],
            "establish": "immediately"}));
        c["policies"] = serde_json::json!([
            {"name": "b-net", "source": ["10.1.0.0/24"], "destination": ["10.2.0.0/24"],
             "then": {"ipsec_vpn": "vpn0"}},
            {"name": "b-net2", "source": ["10.1.0.0/24"], "destination": ["10.2.1.0/24"],
             "then": {"ipsec_vpn": "vpn0"}},
            {"name": "c-net", "source": ["10.1.0.0/24"], "destination": ["10.3.0.0/24"],
             "then": {"ipsec_vpn": "vpn-c"}}
        ]);
    };
    let Some(lab) = lab(&Setup {
        edit: &edit,
        second_child: true,
        ..Setup::new(tag)
    }) else {
        return;
    };
    let charon3 = Charon::start(&lab.ns("gw3"), &dir3);
    let charon3_log = || std::fs::read_to_string(dir3.join("charon.log")).unwrap_or_default();
    assert!(
        until(Duration::from_secs(40), || {
            let l = lab.charon_log();
            l.contains("CHILD_SA net{1} established")
                && l.contains("CHILD_SA net2{2} established")
                && charon3_log().contains("CHILD_SA net{1} established")
        }),
        "not every child: {}\ncharon on gw3:\n{}",
        lab.logs(),
        charon3_log()
    );
    let a = lab.ns("a");
    assert!(a_reaches_b(&a), "a -> b: {}", lab.logs());
    for to in ["10.2.1.10", "10.3.0.10"] {
        assert!(
            until(Duration::from_secs(5), || ping(
                &a,
                "10.1.0.10",
                to,
                1,
                "0.2"
            ) == (1, 1)),
            "a -> {to}: {}\ncharon on gw3:\n{}",
            lab.logs(),
            charon3_log()
        );
        assert_eq!(ping(&a, "10.1.0.10", to, 10, "0.02"), (10, 10));
    }
    // Two IKE SAs (one per peer), three children.
    assert_eq!(ike_up(&lab).len(), 2, "{}", lab.logs());
    let detail = lab.cli(&["show", "security", "ike", "security-associations", "detail"]);
    for (tunnel, remote) in [
        ("b-net", "10.2.0.0/24"),
        ("b-net2", "10.2.1.0/24"),
        ("c-net", "10.3.0.0/24"),
    ] {
        assert!(
            detail
                .lines()
                .any(|l| l.trim_start().starts_with(tunnel) && l.contains(remote)),
            "{tunnel} {remote} not in {detail}"
        );
    }
    // charon stops by the PID it wrote in dir3: before dir3 goes.
    drop(charon3);
    let _ = std::fs::remove_dir_all(&dir3);
}
