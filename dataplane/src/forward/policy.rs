//! Policy lookup for policy-based VPNs (Junos `security policies ... then permit tunnel
//! ipsec-vpn`, RFC 4301's SPD): an ordered list of rules over source and destination prefix,
//! protocol and ports; the first rule that matches decides. The lookup is a tuple space
//! search (Srinivasan, Suri, Varghese 1999): rules are grouped by their pair of prefix lengths,
//! each group is one hash table keyed by the masked addresses, so a lookup costs one probe per
//! group, not one test per rule; groups are searched in the order of their first rule, and
//! the search stops once no group left can hold a rule ahead of the match in hand. Policies
//! come in few shapes (/24 to /24, /32 to /16...), so thousands of rules make few groups.
//!
//! IPv4 and IPv6 rules live in two classifiers of the same code (`Family`), one per address
//! family: a packet is looked up among its own family's rules only. Built once per change on
//! the main lcore and shared read-only with the workers (`Policies`).

use super::{fibonacci, TunnelId};
use ipnet::{Ipv4Net, Ipv6Net};
use std::fmt::Debug;
use std::ops::BitAnd;

/// An address family as the classifier sees it: prefixes, and addresses as words to mask.
pub trait Family: Copy + Debug {
    type Net: Copy + Eq + Debug;
    type Word: Copy + Ord + Default + Debug + BitAnd<Output = Self::Word>;
    fn network(n: &Self::Net) -> Self::Word;
    fn prefix_len(n: &Self::Net) -> u8;
    /// The mask of a prefix length.
    fn mask(len: u8) -> Self::Word;
    /// A masked (source, destination) pair folded to 64 bits for the hash tables.
    fn fold(src: Self::Word, dst: Self::Word) -> u64;
}

#[derive(Debug, Clone, Copy)]
pub struct V4;

#[derive(Debug, Clone, Copy)]
pub struct V6;

impl Family for V4 {
    type Net = Ipv4Net;
    type Word = u32;
    fn network(n: &Ipv4Net) -> u32 {
        u32::from(n.network())
    }
    fn prefix_len(n: &Ipv4Net) -> u8 {
        n.prefix_len()
    }
    #[inline(always)]
    fn mask(len: u8) -> u32 {
        u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
    }
    #[inline(always)]
    fn fold(src: u32, dst: u32) -> u64 {
        u64::from(src) << 32 | u64::from(dst)
    }
}

impl Family for V6 {
    type Net = Ipv6Net;
    type Word = u128;
    fn network(n: &Ipv6Net) -> u128 {
        u128::from(n.network())
    }
    fn prefix_len(n: &Ipv6Net) -> u8 {
        n.prefix_len()
    }
    #[inline(always)]
    fn mask(len: u8) -> u128 {
        u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
    }
    #[inline(always)]
    fn fold(src: u128, dst: u128) -> u64 {
        // Every bit of both addresses reaches the 64 the hash multiplies.
        let x = src ^ dst.rotate_left(64).wrapping_mul(3);
        (x as u64) ^ ((x >> 64) as u64)
    }
}

/// What a matching rule does with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Routed as usual (in clear, or into a route-based tunnel).
    Permit,
    /// Dropped, counted.
    Deny,
    /// Into this tunnel (a policy-based VPN's child), whatever the routes say.
    Tunnel(TunnelId),
}

/// One rule. Ports apply to TCP and UDP; `(0, 65535)` is any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule<F: Family = V4> {
    pub src: F::Net,
    pub dst: F::Net,
    /// 0: any protocol.
    pub protocol: u8,
    pub src_ports: (u16, u16),
    pub dst_ports: (u16, u16),
    pub action: Action,
}

pub const ANY_PORT: (u16, u16) = (0, u16::MAX);

/// What a packet is looked up by. `ports`: None for a non-first fragment (whose ports are
/// unknown: RFC 4301's OPAQUE, it matches any rule's ports, so that fragments of a packet
/// a port-specific policy sends into a tunnel follow it there rather than leave in clear) or a
/// protocol without ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key<W = u32> {
    pub src: W,
    pub dst: W,
    pub protocol: u8,
    pub ports: Option<(u16, u16)>,
}

impl<F: Family> Rule<F> {
    /// Whether the rule's protocol and ports take the packet (its addresses already matched).
    #[inline(always)]
    fn takes(&self, k: &Key<F::Word>) -> bool {
        if self.protocol != 0 && self.protocol != k.protocol {
            return false;
        }
        if self.src_ports == ANY_PORT && self.dst_ports == ANY_PORT {
            return true;
        }
        let within = |p: u16, (lo, hi): (u16, u16)| lo <= p && p <= hi;
        k.ports
            .is_none_or(|(s, d)| within(s, self.src_ports) && within(d, self.dst_ports))
    }

    /// Whether the rule matches the packet (the reference the tuple search must agree with).
    pub fn matches(&self, k: &Key<F::Word>) -> bool {
        let inside = |net: &F::Net, a: F::Word| F::network(net) == a & F::mask(F::prefix_len(net));
        inside(&self.src, k.src) && inside(&self.dst, k.dst) && self.takes(k)
    }
}

/// One slot of a group's open-addressed table: the masked (source, destination) and the
/// rules with them, in order (`members[first..first + len]`).
#[derive(Debug, Clone, Copy, Default)]
struct Slot<W> {
    used: bool,
    key: (W, W),
    first: u32,
    len: u32,
}

/// The rules of one (source length, destination length).
#[derive(Debug)]
struct Group<W> {
    src_mask: W,
    dst_mask: W,
    /// Its first rule: no rule in it comes before this one.
    best: u32,
    bits: u32,
    slots: Box<[Slot<W>]>,
}

/// The rules of one family, ready for lookups.
#[derive(Debug)]
pub struct Classifier<F: Family = V4> {
    rules: Vec<Rule<F>>,
    groups: Vec<Group<F::Word>>,
    members: Vec<u32>,
}

impl<F: Family> Default for Classifier<F> {
    fn default() -> Self {
        Classifier {
            rules: Vec::new(),
            groups: Vec::new(),
            members: Vec::new(),
        }
    }
}

/// Both families' classifiers, as the workers get them.
#[derive(Debug, Default)]
pub struct Policies {
    pub v4: Classifier<V4>,
    pub v6: Classifier<V6>,
}

impl<F: Family> Classifier<F> {
    /// The classifier of `rules`, the first ahead of the others.
    pub fn new(rules: Vec<Rule<F>>) -> Classifier<F> {
        use std::collections::BTreeMap;
        // (lengths) -> (masked addresses) -> rules, in order.
        type Shape<W> = BTreeMap<(W, W), Vec<u32>>;
        let mut shapes: BTreeMap<(u8, u8), Shape<F::Word>> = BTreeMap::new();
        for (i, r) in rules.iter().enumerate() {
            shapes
                .entry((F::prefix_len(&r.src), F::prefix_len(&r.dst)))
                .or_default()
                .entry((F::network(&r.src), F::network(&r.dst)))
                .or_default()
                .push(i as u32);
        }
        let mut groups = Vec::with_capacity(shapes.len());
        let mut members = Vec::with_capacity(rules.len());
        for ((sl, dl), keys) in shapes {
            // Half full at most: probes stay short.
            let bits = (keys.len() * 2).next_power_of_two().trailing_zeros().max(1);
            let mut slots = vec![
                Slot {
                    used: false,
                    key: (F::Word::default(), F::Word::default()),
                    first: 0,
                    len: 0,
                };
                1 << bits
            ]
            .into_boxed_slice();
            let mut best = u32::MAX;
            for (key, list) in keys {
                best = best.min(list[0]);
                let mut at = fibonacci(F::fold(key.0, key.1), bits);
                while slots[at].used {
                    at = (at + 1) & ((1 << bits) - 1);
                }
                slots[at] = Slot {
                    used: true,
                    key,
                    first: members.len() as u32,
                    len: list.len() as u32,
                };
                members.extend(list);
            }
            groups.push(Group {
                src_mask: F::mask(sl),
                dst_mask: F::mask(dl),
                best,
                bits,
                slots,
            });
        }
        groups.sort_by_key(|g| g.best);
        Classifier {
            rules,
            groups,
            members,
        }
    }

    pub fn rules(&self) -> &[Rule<F>] {
        &self.rules
    }

    /// Groups searched at most per lookup.
    pub fn groups(&self) -> usize {
        self.groups.len()
    }

    /// The first rule that matches `k`, and its action.
    #[inline]
    pub fn classify(&self, k: &Key<F::Word>) -> Option<(u32, Action)> {
        let mut best = u32::MAX;
        for g in &self.groups {
            if g.best >= best {
                break;
            }
            let key = (k.src & g.src_mask, k.dst & g.dst_mask);
            let wrap = (1usize << g.bits) - 1;
            let mut at = fibonacci(F::fold(key.0, key.1), g.bits);
            while let Some(s) = g.slots.get(at).filter(|s| s.used) {
                if s.key == key {
                    let (a, n) = (s.first as usize, s.len as usize);
                    for &r in self.members.get(a..a + n).unwrap_or_default() {
                        if r >= best {
                            break;
                        }
                        if self.rules.get(r as usize).is_some_and(|rule| rule.takes(k)) {
                            best = r;
                            break;
                        }
                    }
                    break;
                }
                at = (at + 1) & wrap;
            }
        }
        let rule = self.rules.get(best as usize)?;
        Some((best, rule.action))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rule(src: &str, dst: &str, protocol: u8, dports: (u16, u16), action: Action) -> Rule {
        Rule {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            protocol,
            src_ports: ANY_PORT,
            dst_ports: dports,
            action,
        }
    }

    fn key(src: &str, dst: &str, protocol: u8, ports: Option<(u16, u16)>) -> Key {
        Key {
            src: u32::from(src.parse::<std::net::Ipv4Addr>().unwrap()),
            dst: u32::from(dst.parse::<std::net::Ipv4Addr>().unwrap()),
            protocol,
            ports,
        }
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let c = Classifier::new(vec![
            rule(
                "10.1.0.0/24",
                "10.2.0.0/24",
                6,
                (443, 443),
                Action::Tunnel(7),
            ),
            rule("10.1.0.0/24", "10.2.0.0/24", 0, ANY_PORT, Action::Tunnel(1)),
            rule("10.1.0.0/16", "10.3.0.0/16", 0, ANY_PORT, Action::Tunnel(2)),
            rule("10.1.0.66/32", "0.0.0.0/0", 0, ANY_PORT, Action::Deny),
            rule("0.0.0.0/0", "0.0.0.0/0", 17, (53, 53), Action::Permit),
        ]);
        let tcp = |s, d, p| key(s, d, 6, Some((40000, p)));
        assert_eq!(
            c.classify(&tcp("10.1.0.5", "10.2.0.9", 443)),
            Some((0, Action::Tunnel(7)))
        );
        assert_eq!(
            c.classify(&tcp("10.1.0.5", "10.2.0.9", 80)),
            Some((1, Action::Tunnel(1)))
        );
        // A non-first fragment has no ports: opaque, it follows the port rule (its packet's
        // first fragment went there).
        assert_eq!(
            c.classify(&key("10.1.0.5", "10.2.0.9", 6, None)),
            Some((0, Action::Tunnel(7)))
        );
        assert_eq!(
            c.classify(&tcp("10.1.9.5", "10.3.4.4", 22)),
            Some((2, Action::Tunnel(2)))
        );
        // Rule 2 comes before the deny for 10.1.0.66 -> 10.3/16.
        assert_eq!(
            c.classify(&tcp("10.1.0.66", "10.3.0.1", 22)),
            Some((2, Action::Tunnel(2)))
        );
        assert_eq!(
            c.classify(&tcp("10.1.0.66", "10.9.0.1", 22)),
            Some((3, Action::Deny))
        );
        assert_eq!(
            c.classify(&key("192.168.1.1", "8.8.8.8", 17, Some((5000, 53)))),
            Some((4, Action::Permit))
        );
        assert_eq!(c.classify(&tcp("192.168.1.1", "8.8.8.8", 53)), None);
        assert_eq!(c.groups(), 4);
        assert_eq!(
            Classifier::<V4>::new(Vec::new()).classify(&tcp("1.1.1.1", "2.2.2.2", 1)),
            None
        );
    }

    fn arb_rule() -> impl Strategy<Value = Rule> {
        let net = (
            any::<u32>(),
            prop_oneof![Just(0u8), Just(8), Just(16), 20u8..=32],
        )
            .prop_map(|(a, l)| Ipv4Net::new(a.into(), l).unwrap().trunc());
        let ports = prop_oneof![
            Just(ANY_PORT),
            (0u16..100, 0u16..100).prop_map(|(a, b)| (a.min(b), a.max(b)))
        ];
        (
            net.clone(),
            net,
            prop_oneof![Just(0u8), Just(6), Just(17)],
            ports.clone(),
            ports,
            0u32..4,
        )
            .prop_map(|(src, dst, protocol, src_ports, dst_ports, t)| Rule {
                src,
                dst,
                protocol,
                src_ports,
                dst_ports,
                action: Action::Tunnel(t),
            })
    }

    proptest! {
        /// The tuple search finds what a scan of the list in order finds, for packets near the
        /// rules' prefixes and anywhere.
        #[test]
        fn tuple_search_agrees_with_a_scan_of_the_list(
            rules in proptest::collection::vec(arb_rule(), 0..60),
            probes in proptest::collection::vec((any::<u32>(), any::<u32>(), 0usize..60, prop_oneof![Just(6u8), Just(17), Just(1)], 0u16..100, 0u16..100, any::<bool>()), 1..60),
        ) {
            let c = Classifier::new(rules.clone());
            for (s, d, near, protocol, sp, dp, frag) in probes {
                // Half the probes inside a rule's prefixes, with random host bits.
                let (src, dst) = match rules.get(near) {
                    Some(r) => (
                        u32::from(r.src.network()) | (s & !V4::mask(r.src.prefix_len())),
                        u32::from(r.dst.network()) | (d & !V4::mask(r.dst.prefix_len())),
                    ),
                    None => (s, d),
                };
                let k = Key { src, dst, protocol, ports: (!frag && protocol != 1).then_some((sp, dp)) };
                let scan = rules.iter().position(|r| r.matches(&k)).map(|i| (i as u32, rules[i].action));
                prop_assert_eq!(c.classify(&k), scan);
            }
        }
    }

    fn arb_rule6() -> impl Strategy<Value = Rule<V6>> {
        let net = (
            any::<u128>(),
            prop_oneof![Just(0u8), Just(32), Just(48), Just(64), 96u8..=128],
        )
            .prop_map(|(a, l)| Ipv6Net::new(a.into(), l).unwrap().trunc());
        (
            net.clone(),
            net,
            prop_oneof![Just(0u8), Just(6), Just(58)],
            0u32..4,
        )
            .prop_map(|(src, dst, protocol, t)| Rule {
                src,
                dst,
                protocol,
                src_ports: ANY_PORT,
                dst_ports: if protocol == 6 { (443, 443) } else { ANY_PORT },
                action: Action::Tunnel(t),
            })
    }

    proptest! {
        /// The same for IPv6 rules (128-bit words, prefixes of any length).
        #[test]
        fn ipv6_tuple_search_agrees_with_a_scan_of_the_list(
            rules in proptest::collection::vec(arb_rule6(), 0..40),
            probes in proptest::collection::vec((any::<u128>(), any::<u128>(), 0usize..40, prop_oneof![Just(6u8), Just(17), Just(58)], 440u16..446), 1..40),
        ) {
            let c = Classifier::new(rules.clone());
            for (s, d, near, protocol, dp) in probes {
                let (src, dst) = match rules.get(near) {
                    Some(r) => (
                        u128::from(r.src.network()) | (s & !V6::mask(r.src.prefix_len())),
                        u128::from(r.dst.network()) | (d & !V6::mask(r.dst.prefix_len())),
                    ),
                    None => (s, d),
                };
                let k = Key { src, dst, protocol, ports: (protocol != 58).then_some((1000, dp)) };
                let scan = rules.iter().position(|r| r.matches(&k)).map(|i| (i as u32, rules[i].action));
                prop_assert_eq!(c.classify(&k), scan);
            }
        }
    }
}
