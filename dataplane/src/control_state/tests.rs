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

/// Four workers in two anchor groups of two, and no tunnel yet.
fn empty(max_tunnels: u32) -> Gateway {
    let cfg = serde_json::json!({
        "dataplane": {"workers": [1, 2, 3, 4], "anchor_groups": [[1, 2], [3, 4]],
                      "max_tunnels": max_tunnels, "max_sas": 64, "route_tables": 64},
        "interfaces": [{"name": "wan0", "port": 1, "address": "192.0.2.1/24"}],
    });
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
