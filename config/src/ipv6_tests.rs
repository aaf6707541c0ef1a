//! IPv6 addresses on interfaces, IPv6 neighbors and routes: what is taken, what is refused
//! and the field the error names.

use super::*;
use channel::{Change, RouteVia as Via};

/// Two interfaces with IPv6, a static IPv6 neighbor and an IPv6 default route, as in
/// docs/configuration.md.
fn example() -> serde_json::Value {
    serde_json::json!({
      "dataplane": {"workers": [1]},
      "interfaces": [{"name": "lan0", "port": 0, "address": "10.1.0.1/24", "address6": "2001:db8:1::1/64",
                      "mac": "02:00:00:00:01:01"},
                     {"name": "wan0", "port": 1, "address": "192.0.2.1/24", "address6": "2001:db8:ffff::1/64"}],
      "neighbors":  [{"address": "10.1.0.10", "mac": "02:00:00:00:01:10"},
                     {"address": "2001:db8:1::10", "mac": "02:00:00:00:01:10"}],
      "routes":     [{"prefix": "0.0.0.0/0", "via": "192.0.2.254"},
                     {"prefix": "::/0", "via": "2001:db8:ffff::fe"},
                     {"prefix": "2001:db8:2::/48", "via": "2001:db8:1::20"}]
    })
}

fn parse(v: &serde_json::Value) -> Result<Config, ConfigError> {
    Config::parse(&v.to_string())
}

fn error_of(edit: impl FnOnce(&mut serde_json::Value)) -> ConfigError {
    let mut v = example();
    edit(&mut v);
    match parse(&v) {
        Ok(_) => panic!("config was accepted"),
        Err(e) => e,
    }
}

fn a6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

#[test]
fn the_documented_example_parses_into_changes() {
    let c = parse(&example()).unwrap();
    assert_eq!(
        c.interfaces[0].ipv6,
        Some("2001:db8:1::1/64".parse().unwrap())
    );
    assert_eq!(
        c.interfaces[0].subnet6(),
        Some("2001:db8:1::/64".parse().unwrap())
    );
    assert_eq!(c.neighbors.len(), 1);
    assert_eq!(
        c.neighbors6,
        vec![(a6("2001:db8:1::10"), Mac([2, 0, 0, 0, 1, 0x10]))]
    );
    assert_eq!(c.routes.len(), 1);
    assert_eq!(
        c.routes6,
        vec![
            Route6 {
                prefix: "::/0".parse().unwrap(),
                via: RouteVia::Gateway {
                    port: 1,
                    via: a6("2001:db8:ffff::fe")
                }
            },
            Route6 {
                prefix: "2001:db8:2::/48".parse().unwrap(),
                via: RouteVia::Gateway {
                    port: 0,
                    via: a6("2001:db8:1::20")
                }
            },
        ]
    );
    // Two interface routes each and the two static ones, at least the default room.
    assert_eq!(c.dataplane.capacity.routes6, dataplane::MIN_ROUTES6);
    let changes = crate::changes(&c);
    assert!(changes.contains(&Change::SetNeighbor {
        addr: a6("2001:db8:1::10").into(),
        mac: [2, 0, 0, 0, 1, 0x10]
    }));
    assert!(changes.contains(&Change::SetRoute {
        prefix: "::/0".parse().unwrap(),
        via: Via::Gateway(a6("2001:db8:ffff::fe").into())
    }));
    let Some(Change::SetInterface(lan)) = changes.first() else {
        panic!("interfaces first: {changes:?}");
    };
    assert_eq!(lan.ipv6, Some("2001:db8:1::1/64".parse().unwrap()));
}

#[test]
fn interface_addresses_follow_the_rules() {
    for (bad, why) in [
        ("2001:db8:1::1", "not an address/length"),
        ("2001:db8:1::1/129", "length 1..128"),
        ("fe80::1/64", "link-local"),
        ("ff02::1/64", "not a unicast address"),
        ("::/0", "not a unicast address"),
        ("2001:db8:1::/64", "not a host address"),
        ("10.1.0.1/24", "not an address/length"),
    ] {
        let e = error_of(|v| v["interfaces"][0]["address6"] = bad.into());
        assert_eq!(e.field, "interfaces[0].address6", "{bad}: {e}");
        assert!(e.reason.contains(why), "{bad}: {e}");
    }
    // An overlap is found on the later interface.
    let e = error_of(|v| v["interfaces"][1]["address6"] = "2001:db8:1::2/64".into());
    assert_eq!(e.field, "interfaces[1].address6");
    assert!(e.reason.contains("overlaps"), "{e}");
    // /127 and /128 have no subnet-router anycast rule.
    let mut v = example();
    v["interfaces"][1]["address6"] = "2001:db8:ffff::/127".into();
    v["routes"][1]["via"] = "2001:db8:ffff::1".into();
    let c = parse(&v).unwrap();
    assert_eq!(
        c.routes6[0].via,
        RouteVia::Gateway {
            port: 1,
            via: a6("2001:db8:ffff::1")
        }
    );
}

#[test]
fn neighbors_and_next_hops_must_be_on_link() {
    for (bad, why) in [
        ("fe80::10", "link-local"),
        ("2001:db8:9::10", "not on any interface's IPv6 subnet"),
        ("2001:db8:1::1", "our own address"),
        ("ff02::1", "not a unicast address"),
        ("2001:db8:1::10", "listed twice"),
        ("2001:db8::g", "not an IPv4 or IPv6 address"),
    ] {
        let e = error_of(|v| {
            let n = serde_json::json!({"address": bad, "mac": "02:00:00:00:01:11"});
            v["neighbors"].as_array_mut().unwrap().push(n);
        });
        assert_eq!(e.field, "neighbors[2].address", "{bad}: {e}");
        assert!(e.reason.contains(why), "{bad}: {e}");
    }
    let e = error_of(|v| v["neighbors"][1]["mac"] = "33:33:00:00:00:01".into());
    assert_eq!(e.field, "neighbors[1].mac");
    for (via, why) in [
        ("fe80::1", "link-local"),
        ("2001:db8:9::1", "not on any interface's IPv6 subnet"),
        ("2001:db8:ffff::1", "our own address"),
        ("192.0.2.254", "nor an IPv6 next hop"),
    ] {
        let e = error_of(|v| v["routes"][1]["via"] = via.into());
        assert_eq!(e.field, "routes[1].via", "{via}: {e}");
        assert!(e.reason.contains(why), "{via}: {e}");
    }
}

#[test]
fn route_prefixes_are_checked() {
    for (prefix, why) in [
        ("2001:db8:2::1/48", "did you mean 2001:db8:2::/48"),
        ("2001:db8:2::/129", "length 0..128"),
        ("2001:db8:1::/64", "an interface's own route"),
        ("2001:db8:1::1/128", "an interface's own route"),
        ("::/0", "routed twice"),
    ] {
        let e = error_of(|v| v["routes"][2]["prefix"] = prefix.into());
        assert_eq!(e.field, "routes[2].prefix", "{prefix}: {e}");
        assert!(e.reason.contains(why), "{prefix}: {e}");
    }
    let e = error_of(|v| v["routes"][2]["via"] = "st0.9".into());
    assert_eq!(e.field, "routes[2].via");
    assert!(
        e.reason
            .contains("neither a tunnel name nor an IPv6 next hop"),
        "{e}"
    );
}

#[test]
fn ipv6_routes_may_point_into_a_tunnel() {
    let mut v = example();
    v["tunnels"] =
        serde_json::json!([{"name": "st0.0", "local": "192.0.2.1", "remote": "192.0.2.2"}]);
    v["routes"][2]["via"] = "st0.0".into();
    let c = parse(&v).unwrap();
    let st0 = channel::Name::new("st0.0").unwrap();
    assert_eq!(c.routes6[1].via, RouteVia::Tunnel(st0));
    assert!(crate::changes(&c).contains(&Change::SetRoute {
        prefix: "2001:db8:2::/48".parse().unwrap(),
        via: Via::Tunnel(st0)
    }));
}

#[test]
fn the_ipv6_route_table_is_sized() {
    let mut v = example();
    v["dataplane"]["max_routes6"] = 5.into();
    let e = parse(&v).unwrap_err();
    assert_eq!(e.field, "dataplane.max_routes6");
    assert!(e.reason.contains("fewer than the 6"), "{e}");
    v["dataplane"]["max_routes6"] = 6.into();
    assert_eq!(parse(&v).unwrap().dataplane.capacity.routes6, 6);
}

#[test]
fn tunnel_selectors_may_hold_ipv6_prefixes() {
    let mut v = example();
    v["tunnels"] = serde_json::json!([{"name": "st0.0", "local": "192.0.2.1", "remote": "192.0.2.2",
        "traffic_selectors": {"local": ["10.1.0.0/16", "2001:db8:1::/48"],
                              "remote": ["2001:db8:2::/48"]}}]);
    let c = parse(&v).unwrap();
    let t = &c.tunnels[0];
    assert_eq!(
        t.local_selectors.as_slice(),
        &["10.1.0.0/16".parse().unwrap()]
    );
    assert!(t.remote_selectors.is_empty());
    let n6 = |s: &str| -> Ipv6Net { s.parse().unwrap() };
    assert_eq!(t.local_selectors6.as_slice(), &[n6("2001:db8:1::/48")]);
    assert_eq!(t.remote_selectors6.as_slice(), &[n6("2001:db8:2::/48")]);
    let Some(Change::SetTunnel(spec)) = crate::changes(&c)
        .into_iter()
        .find(|c| matches!(c, Change::SetTunnel(_)))
    else {
        panic!("no tunnel");
    };
    assert_eq!(*spec.local_selectors6, t.local_selectors6);
    assert_eq!(*spec.remote_selectors6, t.remote_selectors6);

    v["tunnels"][0]["traffic_selectors"]["remote"][0] = "2001:db8:2::1/48".into();
    let e = parse(&v).unwrap_err();
    assert_eq!(e.field, "tunnels[0].traffic_selectors.remote[0]");
    assert!(e.reason.contains("did you mean 2001:db8:2::/48"), "{e}");

    // A tunnel keyed by IKE: its VPN proposes the tunnel's selectors of both families.
    v["tunnels"][0]["traffic_selectors"]["remote"][0] = "2001:db8:2::/48".into();
    v["ike"] = serde_json::json!({
        "gateways": [{"name": "gw-b", "local_address": "192.0.2.1", "remote_address": "192.0.2.2",
                      "psk": "correct horse battery staple"}],
        "vpns": [{"name": "vpn-b", "gateway": "gw-b", "bind_interface": "st0.0"}]});
    let c = parse(&v).unwrap();
    let child = &c.ike.vpns[0].children[0];
    let nets = |l: &[&str]| -> Vec<ipnet::IpNet> { l.iter().map(|p| p.parse().unwrap()).collect() };
    assert_eq!(child.local_ts, nets(&["10.1.0.0/16", "2001:db8:1::/48"]));
    assert_eq!(child.remote_ts, nets(&["2001:db8:2::/48"]));
}
