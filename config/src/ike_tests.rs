use super::*;

fn name(s: &str) -> Name {
    Name::new(s).unwrap()
}

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

const K128: &str = "000102030405060708090a0b0c0d0e0f10111213";
const PSK: &str = "correct horse battery staple";

/// Two IKE gateways and a VPN with each, next to a manually keyed tunnel (the `ike` example
/// of docs/configuration.md, with gw-c added).
fn example() -> serde_json::Value {
    serde_json::json!({
      "dataplane": {"workers": [1]},
      "interfaces": [{"name": "lan0", "port": 0, "address": "10.1.0.1/24"},
                     {"name": "wan0", "port": 1, "address": "192.0.2.1/24"}],
      "tunnels":    [{"name": "st0.0", "local": "192.0.2.1", "remote": "192.0.2.2",
                      "udp_encap": {"local_port": 4500, "remote_port": 4500}},
                     {"name": "st0.1", "local": "192.0.2.1", "remote": "198.51.100.2",
                      "traffic_selectors": {"local": ["10.1.0.0/16"], "remote": ["10.2.0.0/16"]}},
                     {"name": "st0.2", "local": "192.0.2.1", "remote": "198.51.100.3"}],
      "routes":     [{"prefix": "10.2.0.0/16", "via": "st0.1"}, {"prefix": "0.0.0.0/0", "via": "192.0.2.254"}],
      "manual_sas": [{"tunnel": "st0.0", "direction": "out", "spi": "0x1001", "algorithm": "aes-128-gcm", "key": K128},
                     {"tunnel": "st0.0", "direction": "in", "spi": "0x2001", "algorithm": "aes-128-gcm", "key": K128}],
      "ike": {
        "gateways": [{"name": "gw-b", "local_address": "192.0.2.1", "remote_address": "198.51.100.2",
                      "local_id": "gw1.example", "remote_id": "admin@gw2.example", "psk": PSK,
                      "proposals": ["aes256gcm16-prfsha384-ecp384", "aes128gcm16-prfsha256-ecp256"],
                      "lifetime_s": 28800, "dpd": {"interval_s": 10, "action": "restart"},
                      "nat_traversal": "force", "port": 10500, "fragment_size": 576},
                     {"name": "gw-c", "local_address": "192.0.2.1", "remote_address": "198.51.100.3",
                      "psk": "another one"}],
        "vpns": [{"name": "vpn-b", "gateway": "gw-b", "bind_interface": "st0.1",
                  "esp_proposals": ["aes128gcm16", "aes256gcm16"], "establish": "on-traffic",
                  "lifetime_s": 7200, "lifetime_bytes": 1_000_000_000u64, "lifetime_packets": null,
                  "rekey_margin_s": 600},
                 {"name": "vpn-c", "gateway": "gw-c", "bind_interface": "st0.2"}]
      }
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

#[test]
fn a_full_section_parses() {
    let c = parse(&example()).unwrap();
    assert_eq!(
        (c.ike.cookie_threshold, c.ike.half_open_limit),
        (1000, 10_000)
    );
    let mut small = example();
    small["ike"]["half_open_limit"] = 500.into();
    let s = parse(&small).unwrap();
    assert_eq!((s.ike.cookie_threshold, s.ike.half_open_limit), (500, 500));
    let (b, gc) = (&c.ike.gateways[0], &c.ike.gateways[1]);
    assert_eq!(b.name, name("gw-b"));
    assert_eq!(
        (b.local, b.remote, b.port),
        (
            Ipv4Addr::new(192, 0, 2, 1).into(),
            Ipv4Addr::new(198, 51, 100, 2).into(),
            10500
        )
    );
    assert_eq!(b.local_id, IkeId::Fqdn("gw1.example".into()));
    assert_eq!(b.remote_id, IkeId::UserFqdn("admin@gw2.example".into()));
    assert!(matches!(&b.auth, IkeAuth::Psk(k) if k.as_slice() == PSK.as_bytes()));
    assert_eq!(
        b.proposals,
        [
            "aes256gcm16-prfsha384-ecp384",
            "aes128gcm16-prfsha256-ecp256"
        ]
    );
    assert_eq!(b.lifetime_s, 28800);
    assert_eq!(
        b.dpd,
        Dpd {
            interval_s: 10,
            threshold: 5,
            action: DpdAction::Restart
        }
    );
    assert!(b.force_encap);
    assert_eq!(b.fragment_size, Some(576));

    // The defaults.
    assert_eq!(gc.port, 500);
    assert_eq!(gc.local_id, IkeId::Ipv4(Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(gc.remote_id, IkeId::Ipv4(Ipv4Addr::new(198, 51, 100, 3)));
    assert!(matches!(&gc.auth, IkeAuth::Psk(k) if k.as_slice() == b"another one"));
    assert_eq!(gc.proposals, ["aes256gcm16-prfsha256-x25519"]);
    assert_eq!(gc.lifetime_s, 14400);
    assert_eq!(
        gc.dpd,
        Dpd {
            interval_s: 30,
            threshold: 5,
            action: DpdAction::Clear
        }
    );
    assert!(!gc.force_encap);
    assert_eq!(
        gc.fragment_size,
        Some(1280),
        "offered by default, strongSwan's size"
    );

    let vb = &c.ike.vpns[0];
    assert_eq!(
        vb,
        &IpsecVpn {
            name: name("vpn-b"),
            gateway: 0,
            // The tunnel's traffic selectors.
            children: vec![VpnChild {
                tunnel: name("st0.1"),
                local_ts: vec![net("10.1.0.0/16").into()],
                remote_ts: vec![net("10.2.0.0/16").into()],
                protocol: 0,
                local_ports: ANY_PORTS,
                remote_ports: ANY_PORTS,
            }],
            esp_proposals: vec!["aes128gcm16".into(), "aes256gcm16".into()],
            establish: Establish::OnTraffic,
            lifetime_s: 7200,
            lifetime_bytes: Some(1_000_000_000),
            lifetime_packets: None,
            rekey_margin_s: 600,
        }
    );
    assert_eq!(
        c.ike.vpns[1],
        IpsecVpn {
            name: name("vpn-c"),
            gateway: 1,
            children: vec![VpnChild {
                tunnel: name("st0.2"),
                local_ts: vec![net("0.0.0.0/0").into()],
                remote_ts: vec![net("0.0.0.0/0").into()],
                protocol: 0,
                local_ports: ANY_PORTS,
                remote_ports: ANY_PORTS,
            }],
            esp_proposals: vec!["aes256gcm16".into()],
            establish: Establish::Immediately,
            lifetime_s: 3600,
            lifetime_bytes: None,
            lifetime_packets: None,
            rekey_margin_s: 360,
        }
    );
    // The section makes no dataplane change: the same changes as without it.
    let mut without = example();
    without.as_object_mut().unwrap().remove("ike");
    let plain = parse(&without).unwrap();
    assert!(plain.ike.gateways.is_empty() && plain.ike.vpns.is_empty());
    assert_eq!(changes(&c).len(), changes(&plain).len());
}

#[test]
fn traffic_selectors_given_and_identities() {
    let mut v = example();
    v["ike"]["vpns"][1]["local_ts"] = serde_json::json!(["10.1.0.0/24", "10.1.1.0/24"]);
    v["ike"]["vpns"][1]["remote_ts"] = serde_json::json!(["10.3.0.0/16"]);
    v["ike"]["gateways"][1]["local_id"] = "192.0.2.77".into();
    v["ike"]["gateways"][1]["remote_id"] = "peer".into();
    v["ike"]["gateways"][1]["dpd"] = serde_json::json!({"action": "none"});
    v["ike"]["gateways"][1]["nat_traversal"] = "auto".into();
    v["ike"]["gateways"][1]["fragmentation"] = false.into();
    let c = parse(&v).unwrap();
    let vc = &c.ike.vpns[1];
    assert_eq!(
        vc.children[0].local_ts,
        [
            ipnet::IpNet::from(net("10.1.0.0/24")),
            ipnet::IpNet::from(net("10.1.1.0/24"))
        ]
    );
    assert_eq!(
        vc.children[0].remote_ts,
        [ipnet::IpNet::from(net("10.3.0.0/16"))]
    );
    let gc = &c.ike.gateways[1];
    assert_eq!(gc.local_id, IkeId::Ipv4(Ipv4Addr::new(192, 0, 2, 77)));
    assert_eq!(gc.remote_id, IkeId::Fqdn("peer".into()));
    assert_eq!(
        gc.dpd,
        Dpd {
            interval_s: 30,
            threshold: 5,
            action: DpdAction::None
        }
    );
    assert!(!gc.force_encap);
    assert_eq!(gc.fragment_size, None, "fragmentation not offered");
    assert_eq!(IkeId::parse("a b"), Err("\"a b\" holds whitespace".into()));
    assert!(IkeId::parse("").is_err() && IkeId::parse(&"x".repeat(256)).is_err());
}

type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;

#[test]
fn errors_name_the_field() {
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|v| v["ike"]["vpns"][0]["gateway"] = "gw-x".into()),
            "ike.vpns[0].gateway",
        ),
        (
            Box::new(|v| v["ike"]["vpns"][1]["bind_interface"] = "st0.1".into()),
            "ike.vpns[1].bind_interface",
        ),
        (
            Box::new(|v| v["ike"]["vpns"][1]["bind_interface"] = "st0.9".into()),
            "ike.vpns[1].bind_interface",
        ),
        (
            Box::new(|v| v["ike"]["vpns"][1]["gateway"] = "gw-b".into()),
            "ike.vpns[1].bind_interface",
        ),
        (
            Box::new(|v| v["tunnels"][1]["udp_encap"] = serde_json::json!({})),
            "tunnels[1].udp_encap",
        ),
        (
            Box::new(|v| v["manual_sas"][1]["tunnel"] = "st0.2".into()),
            "manual_sas[1].tunnel",
        ),
        (
            Box::new(|v| v["ike"]["gateways"][0]["psk_file"] = "/etc/espgw/gw-b.psk".into()),
            "ike.gateways[0].psk",
        ),
        (
            Box::new(|v| {
                v["ike"]["gateways"][1]
                    .as_object_mut()
                    .unwrap()
                    .remove("psk");
            }),
            "ike.gateways[1].psk",
        ),
        (
            Box::new(|v| v["ike"]["gateways"][1]["psk"] = "".into()),
            "ike.gateways[1].psk",
        ),
        (
            Box::new(|v| v["ike"]["vpns"][0]["establish"] = "later".into()),
            "ike.vpns[0].establish",
        ),
        (
            Box::new(|v| v["ike"]["vpns"][0]["rekey_margin_s"] = 7200.into()),
            "ike.vpns[0].rekey_margin_s",
        ),
        (
            Box::new(|v| v["ike"]["vpns"][1]["lifetime_s"] = 59.into()),
            "ike.vpns[1].lifetime_s",
        ),
        (
            Box::new(|v| v["ike"]["vpns"][1]["lifetime_s"] = 86401.into()),
            "ike.vpns[1].lifetime_s",
        ),
        (
            Box::new(|v| v["ike"]["vpns"][1]["lifetime_packets"] = 0.into()),
            "ike.vpns[1].lifetime_packets",
        ),
        (
            Box::new(|v| v["ike"]["vpns"][1]["name"] = "vpn-b".into()),
            "ike.vpns[1].name",
        ),
        (
            Box::new(|v| v["ike"]["vpns"][1]["esp_proposals"] = serde_json::json!([])),
            "ike.vpns[1].esp_proposals",
        ),
        (
            Box::new(|v| v["ike"]["vpns"][1]["remote_ts"] = serde_json::json!(["10.2.0.1/16"])),
            "ike.vpns[1].remote_ts[0]",
        ),
        (
            Box::new(|v| v["ike"]["vpns"][1]["local_ts"] = serde_json::json!([])),
            "ike.vpns[1].local_ts",
        ),
        (
            Box::new(|v| v["ike"]["gateways"][1]["name"] = "gw-b".into()),
            "ike.gateways[1].name",
        ),
        (
            Box::new(|v| v["ike"]["gateways"][1]["name"] = "x".repeat(33).into()),
            "ike.gateways[1].name",
        ),
        (
            Box::new(|v| v["ike"]["gateways"][1]["local_address"] = "192.0.2.9".into()),
            "ike.gateways[1].local_address",
        ),
        (
            Box::new(|v| v["ike"]["gateways"][1]["remote_address"] = "peer.example".into()),
            "ike.gateways[1].remote_address",
        ),
        (
            Box::new(|v| v["ike"]["gateways"][1]["local_id"] = "gw 1".into()),
            "ike.gateways[1].local_id",
        ),
        (
            Box::new(|v| v["ike"]["gateways"][1]["proposals"] = serde_json::json!(["x", " "])),
            "ike.gateways[1].proposals[1]",
        ),
        (
            Box::new(|v| v["ike"]["gateways"][1]["lifetime_s"] = (86400 * 7 + 1).into()),
            "ike.gateways[1].lifetime_s",
        ),
        (
            Box::new(|v| v["ike"]["gateways"][1]["dpd"] = serde_json::json!({"interval_s": 0})),
            "ike.gateways[1].dpd.interval_s",
        ),
        (
            Box::new(|v| v["ike"]["gateways"][1]["dpd"] = serde_json::json!({"action": "hold"})),
            "ike.gateways[1].dpd.action",
        ),
        (
            Box::new(|v| v["ike"]["gateways"][1]["nat_traversal"] = "yes".into()),
            "ike.gateways[1].nat_traversal",
        ),
        (
            Box::new(|v| v["ike"]["gateways"][1]["port"] = 0.into()),
            "ike.gateways[1].port",
        ),
        (
            Box::new(|v| v["ike"]["gateways"][1]["fragment_size"] = 255.into()),
            "ike.gateways[1].fragment_size",
        ),
        (
            Box::new(|v| v["ike"]["gateways"][1]["fragment_size"] = 9001.into()),
            "ike.gateways[1].fragment_size",
        ),
        (
            Box::new(|v| v["ike"]["gateways"][1]["port"] = 65536.into()),
            "ike.gateways[1].port",
        ),
        (
            Box::new(|v| v["ike"]["gateways"][1]["psk_file"] = "gw-c.psk".into()),
            "ike.gateways[1].psk",
        ),
        (
            Box::new(|v| v["ike"]["vpns"][0]["bogus"] = 1.into()),
            "config",
        ),
        (
            Box::new(|v| v["ike"]["half_open_limit"] = 0.into()),
            "ike.half_open_limit",
        ),
        (
            Box::new(|v| {
                v["ike"]["half_open_limit"] = 100.into();
                v["ike"]["cookie_threshold"] = 101.into();
            }),
            "ike.cookie_threshold",
        ),
    ];
    for (edit, field) in cases {
        let e = error_of(edit);
        assert_eq!(e.field, field, "{e}");
        assert!(!e.reason.is_empty());
        assert!(!e.to_string().contains(PSK), "the psk leaked into {e}");
    }
}

/// gw-c made a dial-up peer (`%any`): its tunnel's remote too, known by its identity.
fn dial_up(v: &mut serde_json::Value) {
    v["ike"]["gateways"][1]["remote_address"] = "%any".into();
    v["ike"]["gateways"][1]["remote_id"] = "branch.example".into();
    v["tunnels"][2]["remote"] = "%any".into();
}

#[test]
fn dial_up_peers_call_in_and_are_known_by_their_identity() {
    let mut v = example();
    dial_up(&mut v);
    let c = parse(&v).unwrap();
    let g = &c.ike.gateways[1];
    assert_eq!(g.remote, Ipv4Addr::UNSPECIFIED);
    assert_eq!(g.remote_id, IkeId::Fqdn("branch.example".into()));
    assert_eq!(c.tunnels[2].encap.remote, Ipv4Addr::UNSPECIFIED);
    assert_eq!(
        c.ike.vpns[1].establish,
        Establish::ResponderOnly,
        "by default"
    );
    let cases: Vec<(Edit, &str, &str)> = vec![
        (
            Box::new(|v| {
                v["ike"]["gateways"][1]
                    .as_object_mut()
                    .unwrap()
                    .remove("remote_id");
            }),
            "ike.gateways[1].remote_id",
            "identity",
        ),
        (
            Box::new(|v| v["ike"]["vpns"][1]["establish"] = "immediately".into()),
            "ike.vpns[1].establish",
            "responder-only",
        ),
        (
            Box::new(|v| v["ike"]["gateways"][1]["dpd"] = serde_json::json!({"action": "restart"})),
            "ike.gateways[1].dpd.action",
            "called back",
        ),
        (
            Box::new(|v| v["tunnels"][2]["remote"] = "198.51.100.3".into()),
            "ike.vpns[1].bind_interface",
            "runs",
        ),
        (
            Box::new(|v| {
                v["ike"]["vpns"].as_array_mut().unwrap().pop();
            }),
            "tunnels[2].remote",
            "bind it",
        ),
        (
            Box::new(|v| {
                v["ike"]["gateways"][0]["remote_address"] = "%any".into();
                v["tunnels"][1]["remote"] = "%any".into();
                v["ike"]["vpns"][0]["establish"] = "responder-only".into();
                v["ike"]["gateways"][0]["dpd"] = serde_json::json!({"action": "clear"});
            }),
            "ike.gateways[1].proposals",
            "share their IKE proposals",
        ),
    ];
    for (edit, field, why) in cases {
        let e = error_of(|v| {
            dial_up(v);
            edit(v);
        });
        assert_eq!(e.field, field, "{e}");
        assert!(e.reason.contains(why), "{e}");
    }
}

/// Removes the directory when the test ends, passed or not.
struct Dir(std::path::PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[path = "ike_auth_tests.rs"]
mod auth;

/// A VPN with more children under its IKE SA: each its own tunnel and selectors, checked as
/// the VPN's own binding is.
#[test]
fn a_vpn_keys_several_tunnels_with_one_child_each() {
    let mut v = example();
    v["tunnels"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"name": "st0.3", "local": "192.0.2.1", "remote": "198.51.100.2"}));
    v["ike"]["vpns"][0]["children"] = serde_json::json!([
        {"bind_interface": "st0.3", "local_ts": ["10.1.0.0/24"], "remote_ts": ["10.3.0.0/24", "10.4.0.0/24"]}
    ]);
    let c = parse(&v).unwrap();
    let children = &c.ike.vpns[0].children;
    assert_eq!(children.len(), 2);
    assert_eq!(children[0].tunnel, name("st0.1"));
    assert_eq!(
        children[1],
        VpnChild {
            tunnel: name("st0.3"),
            local_ts: vec![net("10.1.0.0/24").into()],
            remote_ts: vec![net("10.3.0.0/24").into(), net("10.4.0.0/24").into()],
            protocol: 0,
            local_ports: ANY_PORTS,
            remote_ports: ANY_PORTS,
        }
    );
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|v| v["ike"]["vpns"][0]["children"][0]["bind_interface"] = "st0.9".into()),
            "ike.vpns[0].children[0].bind_interface",
        ),
        (
            Box::new(|v| v["ike"]["vpns"][0]["children"][0]["bind_interface"] = "st0.1".into()),
            "ike.vpns[0].children[0].bind_interface",
        ),
        (
            Box::new(|v| v["ike"]["vpns"][0]["children"][0]["bind_interface"] = "st0.2".into()),
            "ike.vpns[0].children[0].bind_interface",
        ),
        (
            Box::new(|v| v["ike"]["vpns"][0]["children"][0]["remote_ts"] = serde_json::json!([])),
            "ike.vpns[0].children[0].remote_ts",
        ),
        (
            Box::new(|v| {
                v["ike"]["vpns"][0]["children"] = serde_json::json!(vec![
                    serde_json::json!({"bind_interface": "st0.3"});
                    MAX_CHILDREN
                ])
            }),
            "ike.vpns[0].children",
        ),
    ];
    for (edit, field) in cases {
        let mut w = v.clone();
        edit(&mut w);
        let e = parse(&w)
            .err()
            .unwrap_or_else(|| panic!("accepted: {field}"));
        assert_eq!(e.field, field, "{e}");
    }
}

/// A VPN's selectors may be IPv6 prefixes beside IPv4 ones (IKE negotiates both).
#[test]
fn vpn_selectors_take_ipv6_prefixes() {
    let mut v = example();
    v["ike"]["vpns"][1]["remote_ts"] = serde_json::json!(["10.3.0.0/16", "2001:db8:3::/48"]);
    let c = parse(&v).unwrap();
    assert_eq!(
        c.ike.vpns[1].children[0].remote_ts,
        [
            ipnet::IpNet::from(net("10.3.0.0/16")),
            "2001:db8:3::/48".parse::<ipnet::IpNet>().unwrap()
        ]
    );
    v["ike"]["vpns"][1]["remote_ts"] = serde_json::json!(["2001:db8:3::1/48"]);
    let e = parse(&v).err().unwrap();
    assert_eq!(e.field, "ike.vpns[1].remote_ts[0]", "{e}");
}
