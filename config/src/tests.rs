use super::dataplane::DEFAULT_HANDOFF_RING;
use super::*;
use channel::DfPolicy;
use channel::DEFAULT_REPLAY_WINDOW as DEFAULT_WINDOW;

fn name(s: &str) -> Name {
    Name::new(s).unwrap()
}

const K128: &str = "000102030405060708090a0b0c0d0e0f10111213";
const K256: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223";

/// The example from the issue and docs/configuration.md.
fn example() -> serde_json::Value {
    serde_json::json!({
      "dataplane": {"eal": ["-l", "0,1", "--in-memory", "--no-pci", "--vdev", "net_af_packet0,iface=gw-lan",
                            "--vdev", "net_af_packet1,iface=gw-wan"], "workers": [1]},
      "interfaces": [{"name": "lan0", "port": 0, "address": "10.1.0.1/24", "mac": "02:00:00:00:01:01"},
                     {"name": "wan0", "port": 1, "address": "192.0.2.1/24"}],
      "neighbors":  [{"address": "192.0.2.2", "mac": "02:00:00:00:02:02"},
                     {"address": "10.1.0.10", "mac": "02:00:00:00:01:10"}],
      "tunnels":    [{"name": "st0.0", "local": "192.0.2.1", "remote": "192.0.2.2",
                      "udp_encap": {"local_port": 4500, "remote_port": 4500}}],
      "routes":     [{"prefix": "10.2.0.0/16", "via": "st0.0"}, {"prefix": "0.0.0.0/0", "via": "192.0.2.254"}],
      "manual_sas": [{"tunnel": "st0.0", "direction": "out", "spi": "0x1001", "algorithm": "aes-128-gcm",
                      "key": K128, "esn": false},
                     {"tunnel": "st0.0", "direction": "in", "spi": "0x2001", "algorithm": "aes-256-gcm",
                      "key": K256, "esn": true, "replay_window": 4096}]
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
fn the_documented_example_parses() {
    let c = parse(&example()).unwrap();
    assert_eq!(c.dataplane.workers, vec![1]);
    assert_eq!(c.interfaces[0].mac, Some(Mac([2, 0, 0, 0, 1, 1])));
    assert_eq!(c.interfaces[1].mac, None);
    assert_eq!(c.interfaces[1].mtu, 1500);
    assert_eq!(c.tunnels[0].encap.udp, Some((4500, 4500)));
    assert_eq!(c.tunnels[0].encap.df, DfPolicy::Copy);
    assert_eq!(c.routes[0].via, RouteVia::Tunnel(name("st0.0")));
    assert_eq!(
        c.routes[1].via,
        RouteVia::Gateway {
            port: 1,
            via: Ipv4Addr::new(192, 0, 2, 254)
        }
    );
    let (o, i) = (&c.manual_sas[0], &c.manual_sas[1]);
    assert_eq!(
        (o.spi, o.direction, o.esn, o.replay_window),
        (0x1001, Direction::Out, false, DEFAULT_WINDOW)
    );
    assert_eq!(
        (i.spi, i.direction, i.esn, i.replay_window),
        (0x2001, Direction::In, true, 4096)
    );
    assert_eq!(i.keys.salt(), [0x20, 0x21, 0x22, 0x23]);
}

/// `flow.tcp_mss_ipsec_vpn` (Junos `set security flow tcp-mss ipsec-vpn mss N`): every
/// tunnel's SYNs are clamped to it; absent, none is.
#[test]
fn the_tcp_mss_clamp_reaches_every_tunnel() {
    let c = parse(&example()).unwrap();
    assert_eq!(c.tcp_mss_ipsec_vpn, None);
    let mut v = example();
    v["flow"] = serde_json::json!({"tcp_mss_ipsec_vpn": 1350});
    let c = parse(&v).unwrap();
    assert_eq!(c.tcp_mss_ipsec_vpn, Some(1350));
    let tunnels: Vec<Option<u16>> = crate::changes(&c)
        .into_iter()
        .filter_map(|ch| match ch {
            channel::Change::SetTunnel(t) => Some(t.tcp_mss),
            _ => None,
        })
        .collect();
    assert!(!tunnels.is_empty() && tunnels.iter().all(|&m| m == Some(1350)));
    for bad in [535, 8961, 100_000] {
        let e = error_of(|v| v["flow"] = serde_json::json!({"tcp_mss_ipsec_vpn": bad}));
        assert_eq!(e.field, "flow.tcp_mss_ipsec_vpn", "{e}");
    }
    let e = error_of(|v| v["flow"] = serde_json::json!({"tcp_mss": 1}));
    assert!(e.reason.contains("tcp_mss"), "{e}");
}

#[test]
fn a_tunnel_may_have_its_own_mtu() {
    let mut v = example();
    v["tunnels"][0]["mtu"] = 1400.into();
    let c = parse(&v).unwrap();
    assert_eq!(c.tunnels[0].encap.mtu, Some(1400));
    for bad in [575, 9001] {
        let e = error_of(|v| v["tunnels"][0]["mtu"] = bad.into());
        assert_eq!(e.field, "tunnels[0].mtu", "{e}");
    }
}

#[test]
fn several_workers_and_anchor_groups() {
    let mut v = example();
    v["dataplane"]["workers"] = serde_json::json!([1, 2, 3]);
    v["dataplane"]["anchor_groups"] = serde_json::json!([[1, 3], [2]]);
    let c = parse(&v).unwrap();
    assert_eq!(c.dataplane.anchor_groups, Some(vec![vec![1, 3], vec![2]]));
    assert_eq!(c.dataplane.handoff_ring_size, DEFAULT_HANDOFF_RING);
}

#[test]
fn spi_as_number_or_string() {
    let mut v = example();
    v["manual_sas"][0]["spi"] = serde_json::json!(4097);
    v["manual_sas"][1]["spi"] = serde_json::json!("8193");
    let c = parse(&v).unwrap();
    assert_eq!((c.manual_sas[0].spi, c.manual_sas[1].spi), (4097, 8193));
}

type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;

#[test]
fn errors_name_the_field() {
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|v| v["manual_sas"][0]["spi"] = "0xff".into()),
            "manual_sas[0].spi",
        ),
        (
            Box::new(|v| v["manual_sas"][0]["spi"] = "zz".into()),
            "manual_sas[0].spi",
        ),
        (
            Box::new(|v| v["manual_sas"][1]["key"] = K128.into()),
            "manual_sas[1].key",
        ),
        (
            Box::new(|v| v["manual_sas"][1]["key"] = "xyz".into()),
            "manual_sas[1].key",
        ),
        (
            Box::new(|v| v["manual_sas"][1]["replay_window"] = 65537.into()),
            "manual_sas[1].replay_window",
        ),
        (
            Box::new(|v| v["manual_sas"][0]["replay_window"] = 64.into()),
            "manual_sas[0].replay_window",
        ),
        (
            Box::new(|v| v["manual_sas"][0]["tunnel"] = "st0.9".into()),
            "manual_sas[0].tunnel",
        ),
        (
            Box::new(|v| v["manual_sas"][1]["direction"] = "out".into()),
            "manual_sas[1].tunnel",
        ),
        (
            Box::new(|v| v["routes"][0]["prefix"] = "10.2.0.1/16".into()),
            "routes[0].prefix",
        ),
        (
            Box::new(|v| v["routes"][1]["via"] = "172.16.0.1".into()),
            "routes[1].via",
        ),
        (
            Box::new(|v| v["routes"][1]["via"] = "st9".into()),
            "routes[1].via",
        ),
        (
            Box::new(|v| v["interfaces"][1]["port"] = 0.into()),
            "interfaces[1].port",
        ),
        (
            Box::new(|v| v["interfaces"][1]["address"] = "10.1.0.2/24".into()),
            "interfaces[1].address",
        ),
        (
            Box::new(|v| v["interfaces"][0]["mac"] = "01:00:5e:00:00:01".into()),
            "interfaces[0].mac",
        ),
        (
            Box::new(|v| v["interfaces"][0]["mtu"] = 100.into()),
            "interfaces[0].mtu",
        ),
        (
            Box::new(|v| v["neighbors"][0]["address"] = "172.16.0.1".into()),
            "neighbors[0].address",
        ),
        (
            Box::new(|v| v["tunnels"][0]["local"] = "192.0.2.9".into()),
            "tunnels[0].local",
        ),
        (
            Box::new(|v| v["tunnels"][0]["dscp"] = 64.into()),
            "tunnels[0].dscp",
        ),
        (
            Box::new(|v| v["tunnels"][0]["udp_encap"]["local_port"] = 0.into()),
            "tunnels[0].udp_encap",
        ),
        (
            Box::new(|v| v["dataplane"]["workers"] = serde_json::json!([])),
            "dataplane.workers",
        ),
        (Box::new(|v| v["dataplane"]["bogus"] = 1.into()), "config"),
        (
            Box::new(|v| {
                v["routes"] = serde_json::json!([{"prefix": "192.0.0.0/8", "via": "st0.0"}, {"prefix": "10.2.0.0/16", "via": "st0.0"}]);
                v["tunnels"][0]["remote"] = "198.51.100.2".into();
            }),
            "tunnels[0].remote",
        ),
    ];
    for (edit, field) in cases {
        let e = error_of(edit);
        assert_eq!(e.field, field, "{e}");
        assert!(!e.reason.is_empty());
        assert!(
            !e.to_string().contains("0001020304"),
            "key material leaked into {e}"
        );
    }
}

#[test]
fn unknown_fields_are_reported_by_name() {
    let e = error_of(|v| v["tunnels"][0]["remtoe"] = "1.2.3.4".into());
    assert!(e.reason.contains("remtoe"), "{e}");
}

/// 100 000 tunnels with an SA pair each validate (in linear time: the checks that compare
/// tunnels, routes and SPIs use hash sets), and the ids go past the old 16-bit limit.
#[test]
fn a_hundred_thousand_tunnels() {
    let n = 100_000u32;
    let mut v = example();
    v["tunnels"] = (0..n)
        .map(|t| serde_json::json!({"name": format!("st0.{t}"), "local": "192.0.2.1", "remote": "192.0.2.2"}))
        .collect();
    v["routes"] = (0..n)
        .map(|t| {
            let a = std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(10, 128, 0, 0)) + t);
            serde_json::json!({"prefix": format!("{a}/32"), "via": format!("st0.{t}")})
        })
        .collect();
    v["manual_sas"] = (0..n)
        .flat_map(|t| {
            [("out", 0x1000 + t), ("in", 0x10_0000 + t)].map(|(d, spi)| {
                serde_json::json!({"tunnel": format!("st0.{t}"), "direction": d, "spi": spi,
                                   "algorithm": "aes-128-gcm", "key": K128})
            })
        })
        .collect();
    let started = std::time::Instant::now();
    let c = parse(&v).unwrap();
    assert_eq!((c.tunnels.len(), c.manual_sas.len()), (100_000, 200_000));
    assert_eq!(c.tunnels[99_999].name, name("st0.99999"));
    assert_eq!(c.routes[99_999].via, RouteVia::Tunnel(name("st0.99999")));
    // Room for twice as many tunnels and inbound SAs. The /32s need 2 route tables for their
    // /16s and 391 for their /24s, the interfaces 4: twice that is under the least.
    assert_eq!(c.dataplane.capacity.tunnels, 200_000);
    assert_eq!(c.dataplane.capacity.inbound_sas, 400_000);
    assert_eq!(c.dataplane.capacity.route_tables, 1024);
    v["dataplane"]["route_tables"] = 396.into();
    let e = parse(&v).err().unwrap();
    assert_eq!(e.field, "dataplane.route_tables", "{e}");
    v["dataplane"]["route_tables"] = 397.into();
    assert!(parse(&v).is_ok());
    // Quadratic checks would take minutes here.
    assert!(started.elapsed() < std::time::Duration::from_secs(60));

    // A duplicate name deep in the list is still found, by position.
    v["tunnels"][77_777]["name"] = serde_json::json!("st0.5");
    let e = parse(&v).err().unwrap();
    assert_eq!(e.field, "tunnels[77777].name");
}
