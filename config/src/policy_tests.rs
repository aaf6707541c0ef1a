use super::*;

/// Two gateways: policies into vpn-b (two, one by protocol and port) and vpn-c, a deny and a
/// permit; a route-based tunnel beside them.
fn example() -> serde_json::Value {
    serde_json::json!({
      "dataplane": {"workers": [1]},
      "interfaces": [{"name": "lan0", "port": 0, "address": "10.1.0.1/24"},
                     {"name": "wan0", "port": 1, "address": "192.0.2.1/24"}],
      "tunnels": [{"name": "st0.0", "local": "192.0.2.1", "remote": "192.0.2.9"}],
      "routes": [{"prefix": "10.9.0.0/16", "via": "st0.0"}, {"prefix": "0.0.0.0/0", "via": "192.0.2.254"}],
      "ike": {
        "gateways": [{"name": "gw-b", "local_address": "192.0.2.1", "remote_address": "198.51.100.2", "psk": "k"},
                     {"name": "gw-c", "local_address": "192.0.2.1", "remote_address": "198.51.100.3", "psk": "k"},
                     {"name": "gw-r", "local_address": "192.0.2.1", "remote_address": "192.0.2.9", "psk": "k"}],
        "vpns": [{"name": "vpn-b", "gateway": "gw-b"},
                 {"name": "vpn-c", "gateway": "gw-c", "establish": "on-traffic"},
                 {"name": "vpn-r", "gateway": "gw-r", "bind_interface": "st0.0"}]
      },
      "policies": [
        {"name": "web-b", "source": ["10.1.0.0/24"], "destination": ["10.2.0.0/24"],
         "protocol": "tcp", "destination_ports": "443", "then": {"ipsec_vpn": "vpn-b"}},
        {"name": "all-b", "source": ["10.1.0.0/24"], "destination": ["10.2.0.0/16", "10.3.0.0/16"],
         "then": {"ipsec_vpn": "vpn-b"}},
        {"name": "to-c", "destination": ["10.4.0.0/16"], "then": {"ipsec_vpn": "vpn-c"}},
        {"name": "no-lab", "destination": ["10.66.0.0/16"], "then": "deny"},
        {"name": "web", "protocol": "tcp", "destination_ports": "80-81", "then": "permit"}
      ]
    })
}

fn parse(v: &serde_json::Value) -> Result<Config, ConfigError> {
    Config::parse(&v.to_string())
}

fn net(s: &str) -> ipnet::Ipv4Net {
    s.parse().unwrap()
}

#[test]
fn policies_into_a_vpn_make_its_children_and_their_tunnels() {
    let c = parse(&example()).unwrap();
    assert_eq!(c.policies.len(), 5);
    assert_eq!(c.policies[0].protocol, 6);
    assert_eq!(c.policies[0].destination_ports, (443, 443));
    assert_eq!(c.policies[3].then, PolicyThen::Deny);
    assert_eq!(c.policies[4].destination_ports, (80, 81));
    // A tunnel per policy into a VPN, named after it, between the gateway's addresses.
    let names: Vec<&str> = c.tunnels.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["st0.0", "web-b", "all-b", "to-c"]);
    let t = &c.tunnels[2];
    assert_eq!(
        (t.encap.local, t.encap.remote),
        (
            Ipv4Addr::new(192, 0, 2, 1).into(),
            Ipv4Addr::new(198, 51, 100, 2).into()
        )
    );
    assert_eq!(
        t.remote_selectors.as_slice(),
        [net("10.2.0.0/16"), net("10.3.0.0/16")]
    );
    // vpn-b: two children, in policy order, with the policies' selectors, protocol and ports.
    let b = &c.ike.vpns[0];
    assert_eq!(b.children.len(), 2);
    assert_eq!(
        b.children[0],
        VpnChild {
            tunnel: Name::new("web-b").unwrap(),
            local_ts: vec![net("10.1.0.0/24").into()],
            remote_ts: vec![net("10.2.0.0/24").into()],
            protocol: 6,
            local_ports: ANY_PORTS,
            remote_ports: (443, 443),
        }
    );
    // No source: any.
    assert_eq!(
        c.ike.vpns[1].children[0].local_ts,
        [ipnet::IpNet::from(net("0.0.0.0/0"))]
    );
    // The changes: a policy into a VPN sends into its tunnel, in order.
    let policies: Vec<_> = changes(&c)
        .into_iter()
        .filter_map(|ch| match ch {
            channel::Change::SetPolicy(p) => Some((p.position, p.name.to_string(), p.action)),
            _ => None,
        })
        .collect();
    assert_eq!(policies.len(), 5);
    assert_eq!(
        policies[1],
        (
            1,
            "all-b".into(),
            channel::PolicyAction::Tunnel(Name::new("all-b").unwrap())
        )
    );
    assert_eq!(policies[3].2, channel::PolicyAction::Deny);
}

#[test]
fn policy_mistakes_are_named() {
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(Edit, &str, &str)> = vec![
        (
            Box::new(|v| v["policies"][2]["then"] = serde_json::json!({"ipsec_vpn": "vpn-x"})),
            "policies[2].then.ipsec_vpn",
            "no VPN",
        ),
        (
            Box::new(|v| v["policies"][1]["name"] = "st0.0".into()),
            "policies[1].name",
            "already",
        ),
        (
            Box::new(|v| v["policies"][1]["name"] = "web-b".into()),
            "policies[1].name",
            "already",
        ),
        (
            Box::new(|v| v["policies"][0]["protocol"] = "gre".into()),
            "policies[0].protocol",
            "not",
        ),
        (
            Box::new(|v| v["policies"][2]["destination_ports"] = "53".into()),
            "policies[2].destination_ports",
            "tcp",
        ),
        (
            Box::new(|v| v["policies"][0]["destination_ports"] = "9-1".into()),
            "policies[0].destination_ports",
            "range",
        ),
        (
            Box::new(|v| v["policies"][3]["then"] = "reject".into()),
            "policies[3].then",
            "permit",
        ),
        (
            Box::new(|v| v["ike"]["vpns"][2]["bind_interface"] = serde_json::Value::Null),
            "ike.vpns[2].bind_interface",
            "policy",
        ),
        (
            Box::new(|v| v["ike"]["vpns"][0]["bind_interface"] = "st0.0".into()),
            "ike.vpns[0].bind_interface",
            "not both",
        ),
        (
            Box::new(|v| v["ike"]["vpns"][0]["local_ts"] = serde_json::json!(["10.1.0.0/24"])),
            "ike.vpns[0].children",
            "policies'",
        ),
    ];
    for (edit, field, why) in cases {
        let mut v = example();
        edit(&mut v);
        let e = parse(&v)
            .err()
            .unwrap_or_else(|| panic!("accepted: {field}"));
        assert_eq!(e.field, field, "{e}");
        assert!(e.reason.contains(why), "{e}");
    }
}

/// IPv6 prefixes in policies: each family's prefixes reach the spec; a policy whose sides name
/// prefixes of different families is refused; a child's selectors hold the families its
/// policy applies to (a side that is any: the whole of each such family).
#[test]
fn policies_take_ipv6_prefixes() {
    let mut v = example();
    v["policies"] = serde_json::json!([
        {"name": "v6-b", "source": ["2001:db8:1::/64"], "destination": ["2001:db8:2::/48", "10.2.0.0/16"],
         "then": {"ipsec_vpn": "vpn-b"}},
        {"name": "any-c", "then": {"ipsec_vpn": "vpn-c"}},
        {"name": "deny-all", "then": "deny"}
    ]);
    let c = parse(&v).unwrap();
    let p = &c.policies[0];
    assert_eq!(p.source.as_slice(), []);
    assert_eq!(p.source6.as_slice(), ["2001:db8:1::/64".parse().unwrap()]);
    assert_eq!(p.destination.as_slice(), [net("10.2.0.0/16")]);
    let ts = |l: &[&str]| -> Vec<ipnet::IpNet> { l.iter().map(|s| s.parse().unwrap()).collect() };
    // v6-b: the source names IPv6 only, so the policy is IPv6's.
    let b = &c.ike.vpns[0].children[0];
    assert_eq!(b.local_ts, ts(&["2001:db8:1::/64"]));
    assert_eq!(b.remote_ts, ts(&["10.2.0.0/16", "2001:db8:2::/48"]));
    // any-c: both families whole.
    let any = &c.ike.vpns[1].children[0];
    assert_eq!(any.local_ts, ts(&["0.0.0.0/0", "::/0"]));
    assert_eq!(any.remote_ts, ts(&["0.0.0.0/0", "::/0"]));
    let specs: Vec<channel::PolicySpec> = changes(&c)
        .into_iter()
        .filter_map(|ch| match ch {
            channel::Change::SetPolicy(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(specs[0].families(), (false, true));
    assert_eq!(
        specs[0].dst6.as_slice(),
        ["2001:db8:2::/48".parse().unwrap()]
    );
    assert_eq!(specs[2].families(), (true, true), "deny-all denies both");
    // IPv4 from, IPv6 to: matches nothing.
    v["policies"] = serde_json::json!([
        {"name": "odd", "source": ["10.1.0.0/24"], "destination": ["2001:db8:2::/48"], "then": "deny"}
    ]);
    let e = parse(&v).unwrap_err();
    assert_eq!(e.field, "policies[0].destination", "{e}");
}
