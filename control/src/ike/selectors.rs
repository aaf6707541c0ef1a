//! Traffic selectors as policy (RFC 7296 section 2.9): the responder narrows what the
//! initiator proposes to what its own policy allows, and the initiator accepts any answer
//! that lies within its proposal. The dataplane's selectors are prefixes, so selectors are
//! made from prefixes and an answer becomes prefixes again. IPv4 and IPv6 ranges
//! (TS_IPV4_ADDR_RANGE, TS_IPV6_ADDR_RANGE) are handled alike; a range meets only ranges of
//! its own family.

use super::wire::{TrafficSelector, TS_IPV4_ADDR_RANGE, TS_IPV6_ADDR_RANGE};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{Ipv4Addr, Ipv6Addr};

/// The selector for all of `net`, any protocol and port.
pub fn of_prefix(net: impl Into<IpNet>) -> TrafficSelector {
    selector(net, 0, (0, 65535))
}

/// The selector of `net`, `protocol` (0: any) and the port range `ports`.
pub fn selector(net: impl Into<IpNet>, protocol: u8, ports: (u16, u16)) -> TrafficSelector {
    let (kind, start, end) = match net.into() {
        IpNet::V4(n) => (
            TS_IPV4_ADDR_RANGE,
            n.network().octets().to_vec(),
            n.broadcast().octets().to_vec(),
        ),
        IpNet::V6(n) => (
            TS_IPV6_ADDR_RANGE,
            n.network().octets().to_vec(),
            n.broadcast().octets().to_vec(),
        ),
    };
    TrafficSelector {
        kind,
        protocol,
        start_port: ports.0,
        end_port: ports.1,
        start,
        end,
    }
}

/// A selector's family and address range (IPv4 addresses widened to 128 bits).
fn range(t: &TrafficSelector) -> Option<(u8, u128, u128)> {
    let (a, b) = match t.kind {
        TS_IPV4_ADDR_RANGE => {
            let a: [u8; 4] = t.start.as_slice().try_into().ok()?;
            let b: [u8; 4] = t.end.as_slice().try_into().ok()?;
            (
                u128::from(u32::from_be_bytes(a)),
                u128::from(u32::from_be_bytes(b)),
            )
        }
        TS_IPV6_ADDR_RANGE => {
            let a: [u8; 16] = t.start.as_slice().try_into().ok()?;
            let b: [u8; 16] = t.end.as_slice().try_into().ok()?;
            (u128::from_be_bytes(a), u128::from_be_bytes(b))
        }
        _ => return None,
    };
    (a <= b).then_some((t.kind, a, b))
}

/// An address of family `kind` as the selector's bytes.
fn bytes(kind: u8, a: u128) -> Vec<u8> {
    if kind == TS_IPV4_ADDR_RANGE {
        (a as u32).to_be_bytes().to_vec()
    } else {
        a.to_be_bytes().to_vec()
    }
}

/// What the responder accepts of `proposed` under `allowed`: each proposed selector cut to each
/// allowed one of its family it meets (addresses, ports, protocol).
pub fn narrow(proposed: &[TrafficSelector], allowed: &[TrafficSelector]) -> Vec<TrafficSelector> {
    let mut out = Vec::new();
    for p in proposed {
        let Some((pk, pa, pb)) = range(p) else {
            continue;
        };
        for a in allowed {
            let Some((ak, aa, ab)) = range(a) else {
                continue;
            };
            if pk != ak {
                continue;
            }
            let (lo, hi) = (pa.max(aa), pb.min(ab));
            let (plo, phi) = (p.start_port.max(a.start_port), p.end_port.min(a.end_port));
            let protocol = match (p.protocol, a.protocol) {
                (0, x) | (x, 0) => x,
                (x, y) if x == y => x,
                _ => continue,
            };
            if lo > hi || plo > phi {
                continue;
            }
            let t = TrafficSelector {
                kind: pk,
                protocol,
                start_port: plo,
                end_port: phi,
                start: bytes(pk, lo),
                end: bytes(pk, hi),
            };
            if !out.contains(&t) {
                out.push(t);
            }
        }
    }
    out
}

/// Whether every selector of `answer` lies within one of `proposed`.
pub fn within(answer: &[TrafficSelector], proposed: &[TrafficSelector]) -> bool {
    !answer.is_empty()
        && answer
            .iter()
            .all(|t| narrow(std::slice::from_ref(t), proposed).contains(t))
}

/// The IPv4 prefixes a selector list covers (each range split into the fewest prefixes);
/// ports and protocols are not the dataplane's business and are dropped.
pub fn prefixes(ts: &[TrafficSelector]) -> Vec<Ipv4Net> {
    let mut out = Vec::new();
    for t in ts {
        if let Some((TS_IPV4_ADDR_RANGE, a, b)) = range(t) {
            out.extend(ipnet::Ipv4Subnets::new(
                Ipv4Addr::from(a as u32),
                Ipv4Addr::from(b as u32),
                0,
            ));
        }
    }
    out
}

/// The IPv6 prefixes a selector list covers, as `prefixes` does for IPv4.
pub fn prefixes6(ts: &[TrafficSelector]) -> Vec<Ipv6Net> {
    let mut out = Vec::new();
    for t in ts {
        if let Some((TS_IPV6_ADDR_RANGE, a, b)) = range(t) {
            out.extend(ipnet::Ipv6Subnets::new(
                Ipv6Addr::from(a),
                Ipv6Addr::from(b),
                0,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> TrafficSelector {
        of_prefix(s.parse::<ipnet::IpNet>().unwrap())
    }

    #[test]
    fn the_responder_narrows_to_its_policy() {
        // The initiator asks for everything; policy allows two nets.
        let allowed = [p("10.2.0.0/16"), p("10.3.1.0/24")];
        let n = narrow(&[p("0.0.0.0/0")], &allowed);
        assert_eq!(n, allowed.to_vec());
        // A host inside: the host.
        assert_eq!(
            narrow(&[p("10.2.3.4/32")], &allowed),
            vec![p("10.2.3.4/32")]
        );
        // Outside: nothing.
        assert!(narrow(&[p("192.168.0.0/16")], &allowed).is_empty());
        // Ports narrow too; different protocols do not meet.
        let mut tcp80 = p("10.2.0.0/24");
        (tcp80.protocol, tcp80.start_port, tcp80.end_port) = (6, 80, 80);
        assert_eq!(
            narrow(&[p("10.2.0.0/16")], &[tcp80.clone()]),
            vec![tcp80.clone()]
        );
        let mut udp = p("10.2.0.0/24");
        udp.protocol = 17;
        assert!(narrow(&[udp], &[tcp80]).is_empty());
    }

    #[test]
    fn an_answer_must_lie_within_the_proposal() {
        let proposed = [p("10.1.0.0/16")];
        assert!(within(&[p("10.1.2.0/24")], &proposed));
        assert!(within(&proposed, &proposed));
        assert!(!within(&[p("10.0.0.0/8")], &proposed));
        assert!(!within(&[], &proposed));
    }

    #[test]
    fn ipv6_selectors_narrow_and_become_prefixes_and_never_meet_ipv4() {
        let p6 = |s: &str| of_prefix(s.parse::<Ipv6Net>().unwrap());
        let allowed = [p6("2001:db8:2::/48"), p("10.2.0.0/16")];
        // An IPv6 proposal for everything: narrowed to the IPv6 policy only.
        assert_eq!(narrow(&[p6("::/0")], &allowed), vec![p6("2001:db8:2::/48")]);
        assert_eq!(
            narrow(&[p6("2001:db8:2:5::/64")], &allowed),
            vec![p6("2001:db8:2:5::/64")]
        );
        assert!(narrow(&[p6("2001:db8:3::/48")], &allowed).is_empty());
        // Both families in one proposal: each narrowed in its own.
        assert_eq!(
            narrow(&[p("0.0.0.0/0"), p6("::/0")], &allowed),
            vec![p("10.2.0.0/16"), p6("2001:db8:2::/48")]
        );
        assert!(within(&[p6("2001:db8:2:1::/64")], &[p6("2001:db8:2::/48")]));
        assert!(!within(&[p6("2001:db8:2::/48")], &[p("10.0.0.0/8")]));
        let mut t = p6("2001:db8::/64");
        t.end = "2001:db8:0:1:ffff:ffff:ffff:ffff"
            .parse::<Ipv6Addr>()
            .unwrap()
            .octets()
            .to_vec();
        assert_eq!(
            prefixes6(&[t.clone()]),
            vec!["2001:db8::/63".parse::<Ipv6Net>().unwrap()]
        );
        assert!(prefixes(&[t]).is_empty());
        // A mangled selector (wrong address length) meets nothing.
        let mut bad = p6("2001:db8::/64");
        bad.end.pop();
        assert!(narrow(&[bad], &allowed).is_empty());
    }

    #[test]
    fn ranges_become_prefixes() {
        let mut t = p("10.0.0.0/24");
        t.end = vec![10, 0, 1, 255];
        assert_eq!(
            prefixes(&[t]),
            vec!["10.0.0.0/23".parse::<Ipv4Net>().unwrap()]
        );
        let mut odd = p("10.0.0.1/32");
        odd.end = vec![10, 0, 0, 2];
        assert_eq!(prefixes(&[odd]).len(), 2);
    }
}
