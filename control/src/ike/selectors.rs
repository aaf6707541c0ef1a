//! Traffic selectors as policy (RFC 7296 section 2.9): the responder narrows what the
//! initiator proposes to what its own policy allows, and the initiator accepts any answer
//! that lies within its proposal. The dataplane's selectors are prefixes, so selectors are
//! made from prefixes and an answer becomes prefixes again.

use super::wire::{TrafficSelector, TS_IPV4_ADDR_RANGE};
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

/// The selector for all of `net`, any protocol and port.
pub fn of_prefix(net: Ipv4Net) -> TrafficSelector {
    selector(net, 0, (0, 65535))
}

/// The selector of `net`, `protocol` (0: any) and the port range `ports`.
pub fn selector(net: Ipv4Net, protocol: u8, ports: (u16, u16)) -> TrafficSelector {
    TrafficSelector {
        kind: TS_IPV4_ADDR_RANGE,
        protocol,
        start_port: ports.0,
        end_port: ports.1,
        start: net.network().octets().to_vec(),
        end: net.broadcast().octets().to_vec(),
    }
}

/// An IPv4 selector's address range.
fn range(t: &TrafficSelector) -> Option<(u32, u32)> {
    if t.kind != TS_IPV4_ADDR_RANGE {
        return None;
    }
    let a: [u8; 4] = t.start.as_slice().try_into().ok()?;
    let b: [u8; 4] = t.end.as_slice().try_into().ok()?;
    let (a, b) = (u32::from_be_bytes(a), u32::from_be_bytes(b));
    (a <= b).then_some((a, b))
}

/// Each selector of `proposed` cut down to what one of `allowed` covers (addresses, ports and
/// protocol); empty: nothing in common (TS_UNACCEPTABLE).
pub fn narrow(proposed: &[TrafficSelector], allowed: &[TrafficSelector]) -> Vec<TrafficSelector> {
    let mut out = Vec::new();
    for p in proposed {
        let Some((pa, pb)) = range(p) else { continue };
        for a in allowed {
            let Some((aa, ab)) = range(a) else { continue };
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
                kind: TS_IPV4_ADDR_RANGE,
                protocol,
                start_port: plo,
                end_port: phi,
                start: lo.to_be_bytes().to_vec(),
                end: hi.to_be_bytes().to_vec(),
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

/// The prefixes a selector list covers (each range split into the fewest prefixes); ports and
/// protocols are not the dataplane's business and are dropped.
pub fn prefixes(ts: &[TrafficSelector]) -> Vec<Ipv4Net> {
    let mut out = Vec::new();
    for t in ts {
        let Some((a, b)) = range(t) else { continue };
        out.extend(ipnet::Ipv4Subnets::new(
            Ipv4Addr::from(a),
            Ipv4Addr::from(b),
            0,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> TrafficSelector {
        of_prefix(s.parse().unwrap())
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
