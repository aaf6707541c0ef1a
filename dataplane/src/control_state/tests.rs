//! The control state on its own: anchoring through changes, ids, capacity, and SAs freed once
//! their workers give them back.

use crate::esp::crypto::Backend;
use crate::testkit::Gateway;
use channel::{Change, Name, RouteVia};
use std::net::Ipv4Addr;

fn name(s: &str) -> Name {
    Name::new(s).unwrap()
}

fn tunnel(n: &str, remote: [u8; 4]) -> Change {
    let local = Ipv4Addr::new(192, 0, 2, 1);
    Change::SetTunnel(crate::testkit::tunnel_spec(
        n,
        local,
        Ipv4Addr::from(remote),
    ))
}

fn empty_config(max_tunnels: u32) -> serde_json::Value {
    serde_json::json!({
        "dataplane": {"workers": [1, 2, 3, 4], "anchor_groups": [[1, 2], [3, 4]],
                      "max_tunnels": max_tunnels, "max_sas": 64, "route_tables": 64},
        "interfaces": [{"name": "wan0", "port": 1, "address": "192.0.2.1/24"}],
    })
}

/// Four workers in two anchor groups of two, and no tunnel yet.
fn empty(max_tunnels: u32) -> Gateway {
    let cfg = empty_config(max_tunnels);
    Gateway::new(&cfg.to_string(), &[1, 2, 3, 4], &Backend::Ring).unwrap()
}

fn placement(gw: &Gateway, n: &str) -> (usize, u32) {
    let v = gw.control.view();
    let v = v.lock().unwrap();
    let t = &v.tunnels[&name(n)];
    (t.group, t.worker)
}

/// Juniper's rules through changes: tunnels to one peer share a group, peers spread by load
/// factor, and a tunnel added later moves none of those before it.
#[test]
fn tunnels_anchor_by_peer_and_load_factor_and_never_move() {
    let mut gw = empty(16);
    let mut gw_groups = Vec::new();
    for (i, peer) in [2u8, 2, 3, 3, 2].into_iter().enumerate() {
        gw.change(tunnel(&format!("st0.{i}"), [192, 0, 2, peer]))
            .unwrap();
        gw_groups.push(placement(&gw, &format!("st0.{i}")));
    }
    let groups: Vec<usize> = gw_groups.iter().map(|p| p.0).collect();
    assert_eq!(
        groups,
        [0, 0, 1, 1, 0],
        "by peer: 192.0.2.2 on group 0, .3 on group 1"
    );
    let workers: Vec<u32> = gw_groups.iter().map(|p| p.1).collect();
    assert_eq!(workers, [1, 2, 3, 4, 1], "spread over the group's workers");
    let before: Vec<_> = (0..5)
        .map(|i| placement(&gw, &format!("st0.{i}")))
        .collect();
    gw.change(tunnel("st0.9", [192, 0, 2, 9])).unwrap();
    let after: Vec<_> = (0..5)
        .map(|i| placement(&gw, &format!("st0.{i}")))
        .collect();
    assert_eq!(before, after, "adding a tunnel moves no other");
    assert_eq!(
        placement(&gw, "st0.9").0,
        1,
        "the lighter group (2 tunnels against 3)"
    );
}

#[test]
fn tunnel_ids_are_reused_and_the_capacity_holds() {
    let mut gw = empty(2);
    gw.change(tunnel("a", [192, 0, 2, 2])).unwrap();
    gw.change(tunnel("b", [192, 0, 2, 2])).unwrap();
    let e = gw.change(tunnel("c", [192, 0, 2, 2])).unwrap_err();
    assert!(e.reason.contains("max_tunnels"), "{e}");
    let id = |gw: &Gateway, n: &str| gw.control.view().lock().unwrap().tunnels[&name(n)].id;
    let a = id(&gw, "a");
    gw.change(Change::DeleteTunnel { name: name("a") }).unwrap();
    gw.change(tunnel("c", [192, 0, 2, 2])).unwrap();
    assert_eq!(id(&gw, "c"), a, "the freed id, taken again");
    // A route holds its tunnel: it cannot go while the route points at it.
    gw.change(Change::SetRoute {
        prefix: "10.9.0.0/16".parse().unwrap(),
        via: RouteVia::Tunnel(name("c")),
    })
    .unwrap();
    assert!(gw.change(Change::DeleteTunnel { name: name("c") }).is_err());
}

#[test]
fn routes_beyond_the_trie_are_refused_whole() {
    let mut gw = empty(4);
    gw.change(tunnel("a", [192, 0, 2, 2])).unwrap();
    // 64 route tables: the interface takes 2 (192.0/16 and 192.0.2/24), each /32 in a new /16
    // two more.
    let mut added = 0;
    let mut refused = None;
    for i in 0..40u8 {
        let c = Change::SetRoute {
            prefix: format!("10.{i}.0.1/32").parse().unwrap(),
            via: RouteVia::Tunnel(name("a")),
        };
        match gw.change(c) {
            Ok(_) => added += 1,
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    assert_eq!(added, 31);
    let e = refused.unwrap();
    assert!(
        e.reason.contains("route_tables") || e.reason.contains("child tables"),
        "{e}"
    );
    // The workers took every route that was accepted, and nothing of the refused one.
    assert_eq!(gw[0].stats.get(crate::counters::Stat::CommandErrors), 0);
    // A shorter route still fits where no table is needed.
    gw.change(Change::SetRoute {
        prefix: "11.0.0.0/8".parse().unwrap(),
        via: RouteVia::Tunnel(name("a")),
    })
    .unwrap();
}

fn outbound(tunnel: &str, spi: u32, seed: u8, soft_packets: Option<u64>) -> Change {
    Change::SetOutboundSa(channel::OutboundSaSpec {
        sa: channel::SaSpec {
            tunnel: name(tunnel),
            spi,
            keys: crate::testkit::keymat(channel::Algorithm::Aes128Gcm, seed),
            esn: false,
            soft: channel::Lifetime {
                packets: soft_packets,
                bytes: None,
            },
            hard: Default::default(),
        },
        first_seq: 1,
    })
}

fn inbound(tunnel: &str, spi: u32, seed: u8) -> Change {
    Change::SetInboundSa(channel::InboundSaSpec {
        sa: channel::SaSpec {
            tunnel: name(tunnel),
            spi,
            keys: crate::testkit::keymat(channel::Algorithm::Aes128Gcm, seed),
            esn: false,
            soft: Default::default(),
            hard: Default::default(),
        },
        replay_window: 64,
        highest_seen: 0,
        idle_after: None,
    })
}

fn route(prefix: &str, tunnel: &str) -> Change {
    Change::SetRoute {
        prefix: prefix.parse().unwrap(),
        via: RouteVia::Tunnel(name(tunnel)),
    }
}

/// Setting again what is set changes nothing: no new generation, no SA rebuilt (an outbound
/// SA keeps its sequence numbers, an inbound one its replay window).
/// A dial-up peer's tunnel: created with no peer address, anchored with no affinity, its
/// remote set and changed, its SAs following; a fixed peer's tunnel keeps its gateways.
#[test]
fn a_dial_up_tunnel_learns_its_peer_while_it_has_no_sas() {
    let mut gw = empty(8);
    let dial_up = |remote: [u8; 4]| {
        let mut t =
            crate::testkit::tunnel_spec("d", Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::from(remote));
        t.dynamic = true;
        Change::SetTunnel(t)
    };
    let e = gw.change(tunnel("s", [0, 0, 0, 0])).unwrap_err();
    assert!(e.reason.contains("cannot be a tunnel peer"), "{e}");
    gw.change(dial_up([0, 0, 0, 0])).unwrap();
    let at = placement(&gw, "d");
    gw.change(dial_up([198, 51, 100, 7])).unwrap();
    gw.change(outbound("d", 0x1001, 1, None)).unwrap();
    gw.change(inbound("d", 0x2001, 2)).unwrap();
    // The peer calls from elsewhere: the SAs follow (their outer headers), as after a NAT
    // rebinding; what they copied (selectors, ESP in UDP or not) cannot change under them.
    gw.change(dial_up([198, 51, 100, 8])).unwrap();
    let mut selective = crate::testkit::tunnel_spec(
        "d",
        Ipv4Addr::new(192, 0, 2, 1),
        Ipv4Addr::new(198, 51, 100, 8),
    );
    selective.dynamic = true;
    selective
        .remote_selectors
        .push("10.9.0.0/16".parse().unwrap());
    let e = gw.change(Change::SetTunnel(selective)).unwrap_err();
    assert!(e.reason.contains("SAs are built from it"), "{e}");
    gw.change(Change::DeleteOutboundSa { tunnel: name("d") })
        .unwrap();
    gw.change(Change::DeleteInboundSa { spi: 0x2001 }).unwrap();
    gw.change(dial_up([198, 51, 100, 9])).unwrap();
    assert_eq!(placement(&gw, "d"), at, "it stays where it was anchored");
    {
        let v = gw.control.view();
        let v = v.lock().unwrap();
        assert_eq!(v.tunnels[&name("d")].remote, Ipv4Addr::new(198, 51, 100, 9));
    }
    // Neither a fixed peer's tunnel nor the kind of a tunnel changes.
    gw.change(tunnel("s", [192, 0, 2, 2])).unwrap();
    let e = gw.change(tunnel("s", [192, 0, 2, 3])).unwrap_err();
    assert!(e.reason.contains("gateways cannot change"), "{e}");
    let e = gw.change(tunnel("d", [198, 51, 100, 8])).unwrap_err();
    assert!(e.reason.contains("gateways cannot change"), "{e}");
}

#[test]
fn an_identical_change_changes_nothing() {
    let mut gw = empty(4);
    let all = || {
        [
            tunnel("a", [192, 0, 2, 2]),
            outbound("a", 0x1001, 1, None),
            inbound("a", 0x2001, 2),
            route("10.1.0.0/16", "a"),
        ]
    };
    for c in all() {
        assert!(gw.control.apply(c).unwrap().changed);
    }
    gw.sync();
    let g = gw.control.generation();
    let sas = gw.control.live_sas();
    for c in all() {
        let a = gw.control.apply(c).unwrap();
        assert!(!a.changed);
        assert_eq!(a.generation, g);
    }
    gw.sync();
    assert_eq!(gw.control.generation(), g);
    assert_eq!(gw.control.live_sas(), sas, "no SA built again");
    // A new key under the same SPI is a change (a rekey).
    assert!(
        gw.control
            .apply(outbound("a", 0x1001, 9, None))
            .unwrap()
            .changed
    );
}

/// The key an outbound SA runs with cannot be installed again with other settings: its
/// sequence numbers, and so its GCM nonces, would start over.
#[test]
fn an_outbound_key_in_use_is_not_installed_again() {
    let mut gw = empty(4);
    gw.change(tunnel("a", [192, 0, 2, 2])).unwrap();
    gw.change(outbound("a", 0x1001, 1, None)).unwrap();
    let e = gw.change(outbound("a", 0x1001, 1, Some(1000))).unwrap_err();
    assert!(e.reason.contains("repeat its sequence numbers"), "{e}");
    // Once the SA is gone, the control decides (it resumes above the published numbers).
    gw.change(Change::DeleteOutboundSa { tunnel: name("a") })
        .unwrap();
    gw.change(outbound("a", 0x1001, 1, Some(1000))).unwrap();
}

/// A resync keeps what is set again, untouched, and deletes the rest, routes before tunnels.
#[test]
fn a_resync_removes_only_what_was_not_set_again() {
    let mut gw = empty(8);
    let keep = || {
        [
            tunnel("a", [192, 0, 2, 2]),
            outbound("a", 0x1001, 1, None),
            inbound("a", 0x2001, 2),
            route("10.1.0.0/16", "a"),
        ]
    };
    for c in keep() {
        gw.change(c).unwrap();
    }
    for c in [
        tunnel("b", [192, 0, 2, 3]),
        outbound("b", 0x1002, 3, None),
        inbound("b", 0x2002, 4),
        route("10.2.0.0/16", "b"),
        inbound("a", 0x2003, 5),
    ] {
        gw.change(c).unwrap();
    }
    let g = gw.control.generation();
    gw.control.sync_begin();
    // The whole state again, as a control process sends it: the interface, then the rest.
    let file = crate::config::Config::parse(&empty_config(8).to_string()).unwrap();
    for c in crate::config::changes(&file).into_iter().chain(keep()) {
        assert!(!gw.control.apply(c).unwrap().changed);
    }
    assert_eq!(gw.control.generation(), g, "nothing kept was touched");
    let (deleted, g2) = gw.control.sync_end();
    gw.sync();
    // Route 10.2/16, SAs 0x2003, 0x2002 and 0x1002, then tunnel b.
    assert_eq!(deleted, 5);
    assert!(g2 > g);
    let v = gw.control.view();
    let v = v.lock().unwrap();
    assert!(v.tunnels.contains_key(&name("a")) && !v.tunnels.contains_key(&name("b")));
    let mut spis: Vec<u32> = v.sas.values().map(|s| s.spi).collect();
    spis.sort();
    assert_eq!(spis, [0x1001, 0x2001]);
    drop(v);
    // What a resync deleted is installed again by the next change that sets it.
    assert!(
        gw.control
            .apply(tunnel("b", [192, 0, 2, 3]))
            .unwrap()
            .changed
    );
}

/// An inbound SA that asked to be watched is reported idle once, after its quiet time; traffic
/// re-arms it.
#[test]
fn an_idle_inbound_sa_is_reported_once_until_traffic_returns() {
    use std::time::{Duration, Instant};
    let mut gw = empty(4);
    gw.change(tunnel("a", [192, 0, 2, 2])).unwrap();
    let Change::SetInboundSa(mut spec) = inbound("a", 0x2001, 2) else {
        unreachable!()
    };
    spec.idle_after = Some(5);
    gw.change(Change::SetInboundSa(spec)).unwrap();
    gw.change(inbound("a", 0x2002, 3)).unwrap(); // not watched
    let idle = |gw: &mut Gateway| -> Vec<u32> {
        gw.control
            .take_notices()
            .into_iter()
            .filter_map(|e| match e {
                channel::message::Event::Idle { spi, .. } => Some(spi),
                _ => None,
            })
            .collect()
    };
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    gw.control.check_idle(at(0));
    gw.control.check_idle(at(4));
    assert!(idle(&mut gw).is_empty(), "not quiet long enough yet");
    gw.control.check_idle(at(6));
    assert_eq!(idle(&mut gw), [0x2001]);
    gw.control.check_idle(at(20));
    assert!(idle(&mut gw).is_empty(), "once");
    // A packet arrives: watched again from then on.
    let c = gw.control.view().lock().unwrap().sas[&super::view::SaKey::In(0x2001)]
        .counters
        .clone();
    c.packets.inc();
    gw.control.check_idle(at(21));
    gw.control.check_idle(at(25));
    assert!(idle(&mut gw).is_empty());
    gw.control.check_idle(at(26));
    assert_eq!(idle(&mut gw), [0x2001]);
}
