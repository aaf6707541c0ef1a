//! IKE over IPv6 between two IKE managers in memory (`common/managers.rs`): the IKE SA
//! between IPv6 addresses, ID_IPV6_ADDR identities, a dial-up IPv6 peer, and a NAT66 that
//! floats IKE to 4500 and puts ESP in UDP.

#[path = "common/managers.rs"]
mod managers;
use control::ike_manager::{IkeManager, Out};
use managers::*;
use std::time::{Duration, Instant};

/// `config_with` moved onto IPv6: the WAN, the tunnels and the gateway between A6 and B6
/// (IKE over IPv6), the selectors still IPv4.
fn config6(initiator: bool, edit: impl Fn(&mut serde_json::Value)) -> config::Config {
    config_with(initiator, 1, |v| {
        let (me, peer) = if initiator { (A6, B6) } else { (B6, A6) };
        v["interfaces"][0]["address6"] = format!("{me}/64").into();
        v["tunnels"][0]["local"] = me.into();
        v["tunnels"][0]["remote"] = peer.into();
        let g = &mut v["ike"]["gateways"][0];
        g["local_address"] = me.into();
        g["remote_address"] = peer.into();
        // The identities by default: the addresses (ID_IPV6_ADDR).
        g.as_object_mut().unwrap().remove("local_id");
        g.as_object_mut().unwrap().remove("remote_id");
        edit(v);
    })
}

const A6: &str = "2001:db8:ffff::1";
const B6: &str = "2001:db8:ffff::2";

/// IKE over IPv6: the SA runs between the IPv6 addresses on port 500 (no NAT, so no float to
/// 4500), the identities are ID_IPV6_ADDR, and the tunnel is keyed without UDP; a dial-up
/// IPv6 peer is found by the family's unspecified address and its tunnel gets its address.
#[test]
fn ike_over_ipv6_keys_an_ipv6_tunnel() {
    let now = Instant::now();
    let dial_up = |v: &mut serde_json::Value| {
        v["ike"]["gateways"][0]["remote_address"] = "%any".into();
        v["ike"]["gateways"][0]["remote_id"] = A6.into();
        v["tunnels"][0]["remote"] = "%any".into();
    };
    for b_cfg in [config6(false, |_| {}), config6(false, dial_up)] {
        let mut p = Pair {
            a: IkeManager::default(),
            b: IkeManager::default(),
            now,
        };
        p.b.configure(&b_cfg, now);
        p.a.configure(&config6(true, |_| {}), now);
        p.run(300);
        assert_eq!(up(&p.a, p.now).len(), 1);
        assert_eq!(up(&p.b, p.now), up(&p.a, p.now));
        let v = &p.a.view(p.now)[0];
        assert_eq!(
            (v.local.as_str(), v.remote.as_str()),
            ("[2001:db8:ffff::1]:500", "[2001:db8:ffff::2]:500")
        );
        assert_eq!(
            (v.local_identity.as_str(), v.remote_identity.as_str()),
            ("2001:db8:ffff::1", "2001:db8:ffff::2")
        );
        let mut changes = config::changes(&b_cfg);
        p.b.overlay(&mut changes);
        let t = changes
            .iter()
            .find_map(|c| match c {
                channel::Change::SetTunnel(t) => Some(t.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(t.remote, A6.parse::<std::net::IpAddr>().unwrap());
        assert_eq!(t.udp, None, "raw ESP over IPv6");
        let keyed = changes
            .iter()
            .filter(|c| {
                matches!(
                    c,
                    channel::Change::SetInboundSa(_) | channel::Change::SetOutboundSa(_)
                )
            })
            .count();
        assert_eq!(keyed, 2, "an inbound and an outbound SA");
    }
}

/// A NAT between IPv6 peers (the responder sees another source port than the initiator's
/// own, so the NAT detection hashes differ, RFC 7296 section 2.23): IKE floats to 4500 and
/// the tunnel's ESP goes in UDP, over IPv6 as over IPv4.
#[test]
fn a_nat_between_ipv6_peers_puts_esp_in_udp() {
    let mut p = Pair {
        a: IkeManager::default(),
        b: IkeManager::default(),
        now: Instant::now(),
    };
    let b_cfg = config6(false, |_| {});
    p.b.configure(&b_cfg, p.now);
    p.a.configure(&config6(true, |_| {}), p.now);
    for _ in 0..30 {
        p.now += Duration::from_millis(100);
        p.a.tick(p.now);
        p.b.tick(p.now);
        for o in p.a.take_out() {
            if let Out::Send(g) = o {
                // Rewritten on the way, as a NAT66 would: another source port (the one it
                // keeps for 4500 too).
                let mut from = g.path.local;
                from.set_port(from.port() + 40000);
                p.b.datagram(p.now, g.path.remote, from, &g.bytes);
            }
        }
        for o in p.b.take_out() {
            if let Out::Send(mut g) = o {
                g.path.remote.set_port(g.path.remote.port() - 40000);
                deliver(vec![Out::Send(g)], &mut p.a, p.now);
            }
        }
    }
    assert_eq!(up(&p.b, p.now).len(), 1);
    assert_eq!(up(&p.b, p.now), up(&p.a, p.now));
    let v = &p.b.view(p.now)[0];
    assert!(v.nat_t, "{v:?}");
    assert_eq!(
        v.remote, "[2001:db8:ffff::1]:44500",
        "floated, as the NAT maps it"
    );
    let mut changes = config::changes(&b_cfg);
    p.b.overlay(&mut changes);
    let udp = changes.iter().find_map(|c| match c {
        channel::Change::SetTunnel(t) => Some(t.udp),
        _ => None,
    });
    assert_eq!(udp, Some(Some((4500, 44500))));
}
