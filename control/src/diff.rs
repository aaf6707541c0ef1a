//! A commit applies the difference between the running configuration and the candidate, never
//! the whole file: changing one route touches no SA, adding a tunnel moves no other.

use channel::{Change, Name, ObjectKey};
use std::collections::BTreeMap;

/// The changes that turn `running` into `candidate` (both as `config::changes` makes them):
/// first the deletes of what the candidate no longer has, what refers to others first; then
/// the sets of what is new or different, in the candidate's order (interfaces before the
/// tunnels on them, tunnels before their routes and SAs).
pub fn diff(running: &[Change], candidate: &[Change]) -> Vec<Change> {
    let keyed = |cs: &[Change]| -> BTreeMap<ObjectKey, usize> {
        cs.iter()
            .enumerate()
            .filter_map(|(i, c)| ObjectKey::of_set(c).map(|k| (k, i)))
            .collect()
    };
    let (old, new) = (keyed(running), keyed(candidate));
    // A tunnel whose SAs copied what changes in it (its selectors, ESP in UDP or not, our
    // port) takes no change under them: its outbound SA (keyed by the tunnel, so never
    // deleted by a new one) goes first and is set again after it. IKE's dial-up peer calling
    // from behind a NAT, then without one, is such a change.
    let rebuilt: Vec<Name> = candidate
        .iter()
        .filter_map(|c| match c {
            Change::SetTunnel(t) => match old.get(&ObjectKey::Tunnel(t.name)).map(|&i| &running[i])
            {
                Some(Change::SetTunnel(o)) if copied(o) != copied(t) => Some(t.name),
                _ => None,
            },
            _ => None,
        })
        .filter(|n| old.contains_key(&ObjectKey::OutboundSa(*n)))
        .collect();
    // BTreeMap order is ObjectKey's order: routes, SAs, tunnels, neighbors, interfaces.
    let mut out: Vec<Change> = old
        .keys()
        .filter(|k| {
            !new.contains_key(k) || matches!(k, ObjectKey::OutboundSa(n) if rebuilt.contains(n))
        })
        .map(|k| k.delete())
        .collect();
    for c in candidate {
        let Some(k) = ObjectKey::of_set(c) else {
            continue;
        };
        let again = matches!(k, ObjectKey::OutboundSa(n) if rebuilt.contains(&n));
        if again || old.get(&k).map(|&i| &running[i]) != Some(c) {
            out.push(c.clone());
        }
    }
    out
}

/// What a tunnel's SAs copy from it when they are made.
fn copied(t: &channel::TunnelSpec) -> impl PartialEq + '_ {
    (
        (&t.local_selectors, &t.remote_selectors),
        (&t.local_selectors6, &t.remote_selectors6),
        t.udp.map(|u| u.0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use channel::{Name, RouteVia};

    fn route(p: &str, t: &str) -> Change {
        Change::SetRoute {
            prefix: p.parse().unwrap(),
            via: RouteVia::Tunnel(Name::new(t).unwrap()),
        }
    }

    #[test]
    fn only_what_differs_is_sent_deletes_first() {
        let running = vec![route("10.1.0.0/16", "a"), route("10.2.0.0/16", "a")];
        let candidate = vec![route("10.1.0.0/16", "a"), route("10.3.0.0/16", "b")];
        let d = diff(&running, &candidate);
        assert_eq!(
            d,
            vec![
                Change::DeleteRoute {
                    prefix: "10.2.0.0/16".parse().unwrap()
                },
                route("10.3.0.0/16", "b"),
            ]
        );
        assert!(diff(&candidate, &candidate).is_empty());
        // The same prefix to another tunnel: one set, no delete.
        let moved = vec![route("10.1.0.0/16", "b"), route("10.3.0.0/16", "b")];
        assert_eq!(diff(&candidate, &moved), vec![route("10.1.0.0/16", "b")]);
    }

    /// IPv6 routes, neighbors and addresses are objects like IPv4's: a moved route is one
    /// set, a gone neighbor one delete, an interface's new IPv6 address one set.
    #[test]
    fn ipv6_changes_are_applied_as_ipv4_ones() {
        let route6 = |p: &str, via: &str| Change::SetRoute {
            prefix: p.parse().unwrap(),
            via: RouteVia::Gateway(via.parse().unwrap()),
        };
        let neighbor6 = |a: &str| Change::SetNeighbor {
            addr: a.parse().unwrap(),
            mac: [2, 0, 0, 0, 1, 0x10],
        };
        let lan = |v6: &str| {
            Change::SetInterface(channel::InterfaceSpec {
                name: Name::new("lan0").unwrap(),
                port: 0,
                addr: "10.1.0.1".parse().unwrap(),
                prefix_len: 24,
                ipv6: Some(v6.parse().unwrap()),
                mac: None,
                mtu: 1500,
            })
        };
        let running = vec![
            lan("2001:db8:1::1/64"),
            neighbor6("2001:db8:1::10"),
            route6("2001:db8:2::/48", "2001:db8:1::20"),
            route("10.2.0.0/16", "a"),
        ];
        let candidate = vec![
            lan("2001:db8:1::2/64"),
            route6("2001:db8:2::/48", "2001:db8:1::30"),
            route6("::/0", "2001:db8:1::20"),
            route("10.2.0.0/16", "a"),
        ];
        assert_eq!(
            diff(&running, &candidate),
            vec![
                Change::DeleteNeighbor {
                    addr: "2001:db8:1::10".parse().unwrap()
                },
                lan("2001:db8:1::2/64"),
                route6("2001:db8:2::/48", "2001:db8:1::30"),
                route6("::/0", "2001:db8:1::20"),
            ]
        );
    }

    /// A tunnel's selectors change under its outbound SA (a new IKE SA narrowed them): the
    /// SA goes first, the tunnel changes, the SA is set again, so that the dataplane, which
    /// refuses such a change under an SA, takes it.
    #[test]
    fn a_tunnel_changed_under_its_sa_gets_the_sa_again() {
        let tunnel = |sel: &str| {
            let mut t = channel::TunnelSpec {
                name: Name::new("st0.0").unwrap(),
                local: "192.0.2.1".parse().unwrap(),
                remote: "192.0.2.2".parse().unwrap(),
                dynamic: false,
                tcp_mss: None,
                mtu: None,
                udp: None,
                df: channel::DfPolicy::Copy,
                dscp: channel::Dscp::Copy,
                ttl: 64,
                local_selectors: Default::default(),
                remote_selectors: Default::default(),
                local_selectors6: Default::default(),
                remote_selectors6: Default::default(),
            };
            t.remote_selectors.push(sel.parse().unwrap());
            Change::SetTunnel(t)
        };
        let out = Change::SetOutboundSa(channel::OutboundSaSpec {
            sa: channel::SaSpec {
                tunnel: Name::new("st0.0").unwrap(),
                spi: 0x1001,
                keys: channel::KeyMaterial::new(channel::Algorithm::Aes128Gcm, &[7; 20]).unwrap(),
                esn: false,
                soft: Default::default(),
                hard: Default::default(),
            },
            first_seq: 1,
        });
        let running = vec![tunnel("10.2.0.0/16"), out.clone()];
        let candidate = vec![tunnel("10.2.0.0/24"), out.clone()];
        assert_eq!(
            diff(&running, &candidate),
            vec![
                Change::DeleteOutboundSa {
                    tunnel: Name::new("st0.0").unwrap()
                },
                tunnel("10.2.0.0/24"),
                out.clone(),
            ]
        );
        // Anything else about the tunnel (its TTL) changes under the SA.
        let mut ttl = tunnel("10.2.0.0/16");
        if let Change::SetTunnel(t) = &mut ttl {
            t.ttl = 9;
        }
        assert_eq!(diff(&running, &[ttl.clone(), out]), vec![ttl]);
    }
}
