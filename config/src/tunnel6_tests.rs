//! Tunnels with IPv6 endpoints (an IPv6 outer header): what is taken, what is refused and
//! the field the error names.

use super::*;
use channel::Change;

const K128: &str = "000102030405060708090a0b0c0d0e0f10111213";

/// An IPv6-outer tunnel between the WAN link's IPv6 addresses, carrying IPv4 and IPv6, next
/// to an IPv4-outer one.
fn example() -> serde_json::Value {
    serde_json::json!({
      "dataplane": {"workers": [1]},
      "interfaces": [{"name": "lan0", "port": 0, "address": "10.1.0.1/24", "address6": "2001:db8:1::1/64"},
                     {"name": "wan0", "port": 1, "address": "192.0.2.1/24", "address6": "2001:db8:ffff::1/64"}],
      "tunnels":    [{"name": "st0.0", "local": "2001:db8:ffff::1", "remote": "2001:db8:ffff::2"},
                     {"name": "st0.1", "local": "192.0.2.1", "remote": "192.0.2.2"}],
      "routes":     [{"prefix": "10.2.0.0/16", "via": "st0.0"},
                     {"prefix": "2001:db8:2::/48", "via": "st0.0"},
                     {"prefix": "10.3.0.0/16", "via": "st0.1"}],
      "manual_sas": [{"tunnel": "st0.0", "direction": "out", "spi": "0x1001", "algorithm": "aes-128-gcm", "key": K128},
                     {"tunnel": "st0.0", "direction": "in", "spi": "0x2001", "algorithm": "aes-128-gcm", "key": K128}]
    })
}

fn error_of(edit: impl FnOnce(&mut serde_json::Value)) -> ConfigError {
    let mut v = example();
    edit(&mut v);
    match Config::parse(&v.to_string()) {
        Ok(_) => panic!("config was accepted"),
        Err(e) => e,
    }
}

#[test]
fn ipv6_endpoints_reach_the_tunnel_spec() {
    let c = Config::parse(&example().to_string()).unwrap();
    let a = |s: &str| -> IpAddr { s.parse().unwrap() };
    assert_eq!(c.tunnels[0].encap.local, a("2001:db8:ffff::1"));
    assert_eq!(c.tunnels[0].encap.remote, a("2001:db8:ffff::2"));
    let specs: Vec<_> = crate::changes(&c)
        .into_iter()
        .filter_map(|c| match c {
            Change::SetTunnel(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(specs.len(), 2);
    assert_eq!(
        (specs[0].local, specs[0].remote, specs[0].dynamic),
        (a("2001:db8:ffff::1"), a("2001:db8:ffff::2"), false)
    );
    assert_eq!(specs[1].local, a("192.0.2.1"));
}

#[test]
fn ipv6_endpoints_follow_the_rules() {
    type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
    let cases: Vec<(Edit, &str)> = vec![
        // Not our address6.
        (
            Box::new(|v| v["tunnels"][0]["local"] = "2001:db8:ffff::9".into()),
            "tunnels[0].local",
        ),
        (
            Box::new(|v| v["tunnels"][0]["local"] = "2001:db8:ffff::1::".into()),
            "tunnels[0].local",
        ),
        // The families differ.
        (
            Box::new(|v| v["tunnels"][0]["remote"] = "192.0.2.2".into()),
            "tunnels[0].remote",
        ),
        (
            Box::new(|v| v["tunnels"][1]["remote"] = "2001:db8:ffff::2".into()),
            "tunnels[1].remote",
        ),
        (
            Box::new(|v| v["tunnels"][0]["remote"] = "ff02::1".into()),
            "tunnels[0].remote",
        ),
        (
            Box::new(|v| v["tunnels"][0]["remote"] = "fe80::2".into()),
            "tunnels[0].remote",
        ),
        (
            Box::new(|v| v["tunnels"][0]["remote"] = "2001:db8:ffff::1".into()),
            "tunnels[0].remote",
        ),
        // No NAT-T over IPv6.
        (
            Box::new(|v| {
                v["tunnels"][0]["udp_encap"] =
                    serde_json::json!({"local_port": 4500, "remote_port": 4500})
            }),
            "tunnels[0].udp_encap",
        ),
        // The peer only through a tunnel.
        (
            Box::new(|v| {
                v["tunnels"][0]["remote"] = "2001:db8:2::1".into();
            }),
            "tunnels[0].remote",
        ),
    ];
    for (edit, field) in cases {
        let e = error_of(edit);
        assert_eq!(e.field, field, "{e}");
        assert!(!e.reason.is_empty());
    }
    // Off-link, through an IPv6 next hop: reachable.
    let mut v = example();
    v["tunnels"][0]["remote"] = "2001:db8:9::2".into();
    if let Some(r) = v["routes"].as_array_mut() {
        r.push(serde_json::json!({"prefix": "::/0", "via": "2001:db8:ffff::fe"}));
    }
    Config::parse(&v.to_string()).unwrap();
}

#[test]
fn ike_is_refused_an_ipv6_tunnel() {
    let e = error_of(|v| {
        v["ike"] = serde_json::json!({
            "gateways": [{"name": "gw-b", "local_address": "192.0.2.1", "remote_address": "192.0.2.2",
                          "psk": "correct horse battery staple"}],
            "vpns": [{"name": "vpn-b", "gateway": "gw-b", "bind_interface": "st0.0"}]});
        v["manual_sas"] = serde_json::json!([]);
    });
    assert!(e.field.ends_with("bind_interface"), "{e}");
    assert!(e.reason.contains("IPv6"), "{e}");
}
