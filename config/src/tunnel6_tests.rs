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
    // ESP in UDP over IPv6 (RFC 3948's encapsulation, kept over IPv6 as Linux and strongSwan
    // do): the ports reach the spec.
    let mut v = example();
    v["tunnels"][0]["udp_encap"] = serde_json::json!({"local_port": 4500, "remote_port": 4501});
    let c = Config::parse(&v.to_string()).unwrap();
    assert_eq!(c.tunnels[0].encap.udp, Some((4500, 4501)));
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
        // NAT-T over IPv6 as over IPv4: ports non-zero.
        (
            Box::new(|v| {
                v["tunnels"][0]["udp_encap"] =
                    serde_json::json!({"local_port": 0, "remote_port": 4500})
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

/// `example` with IKE keying st0.0 over IPv6 (`gateway` edited by the case).
fn with_ike6(v: &mut serde_json::Value, gateway: impl FnOnce(&mut serde_json::Value)) {
    let mut g = serde_json::json!({"name": "gw-b", "local_address": "2001:db8:ffff::1",
        "remote_address": "2001:db8:ffff::2", "psk": "correct horse battery staple"});
    gateway(&mut g);
    v["ike"] = serde_json::json!({"gateways": [g],
        "vpns": [{"name": "vpn-b", "gateway": "gw-b", "bind_interface": "st0.0"}]});
    v["manual_sas"] = serde_json::json!([]);
}

#[test]
fn ike_keys_a_tunnel_over_ipv6() {
    let mut v = example();
    with_ike6(&mut v, |_| {});
    let c = Config::parse(&v.to_string()).unwrap();
    let g = &c.ike.gateways[0];
    let a = |s: &str| -> IpAddr { s.parse().unwrap() };
    assert_eq!(
        (g.local, g.remote),
        (a("2001:db8:ffff::1"), a("2001:db8:ffff::2"))
    );
    // Identities by default the addresses (ID_IPV6_ADDR); an IPv6 literal is one too.
    assert_eq!(g.local_id, IkeId::Ipv6("2001:db8:ffff::1".parse().unwrap()));
    assert_eq!(
        g.remote_id,
        IkeId::Ipv6("2001:db8:ffff::2".parse().unwrap())
    );
    assert_eq!(
        IkeId::parse("2001:db8::7"),
        Ok(IkeId::Ipv6("2001:db8::7".parse().unwrap()))
    );
    assert_eq!(c.ike.vpns[0].children[0].tunnel.to_string(), "st0.0");
    // A dial-up peer over IPv6: tunnel and gateway both %any.
    let mut v = example();
    with_ike6(&mut v, |g| {
        g["remote_address"] = "%any".into();
        g["remote_id"] = "road.example".into();
    });
    v["tunnels"][0]["remote"] = "%any".into();
    let c = Config::parse(&v.to_string()).unwrap();
    assert_eq!(c.ike.gateways[0].remote, a("::"));
    assert_eq!(c.tunnels[0].encap.remote, a("::"));
}

#[test]
fn ike_over_ipv6_mistakes_are_named() {
    type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|g| g["local_address"] = "2001:db8:ffff::9".into()),
            "ike.gateways[0].local_address",
        ),
        (
            Box::new(|g| g["remote_address"] = "192.0.2.2".into()),
            "ike.gateways[0].remote_address",
        ),
        (
            Box::new(|g| g["remote_address"] = "fe80::2".into()),
            "ike.gateways[0].remote_address",
        ),
        (
            Box::new(|g| g["remote_address"] = "ff02::1".into()),
            "ike.gateways[0].remote_address",
        ),
        // An IPv4 gateway cannot key the IPv6 tunnel.
        (
            Box::new(|g| {
                g["local_address"] = "192.0.2.1".into();
                g["remote_address"] = "192.0.2.2".into();
            }),
            "ike.vpns[0].bind_interface",
        ),
    ];
    for (edit, field) in cases {
        let e = error_of(|v| with_ike6(v, edit));
        assert_eq!(e.field, field, "{e}");
        assert!(!e.reason.is_empty());
    }
}
