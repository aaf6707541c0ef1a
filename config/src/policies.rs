//! The `policies` section: policy-based VPNs (Junos `security policies ... match
//! source-address destination-address application ... then permit tunnel ipsec-vpn V`, or
//! `then deny`/`permit`). An ordered list, the first policy that matches a packet deciding;
//! packets that match none are routed as usual (add a last policy with `"then": "deny"` to
//! drop them). A policy that sends into a VPN makes one child SA of it: IKE negotiates the
//! policy's addresses, protocol and ports as the child's traffic selectors, and the child
//! keys a tunnel the policy makes, named after it, between the VPN's gateway addresses.

use super::file::{PolicyFile, PolicyThenFile};
use super::{err, parse_name, parse_prefix, parse_prefix6, ConfigError};
use channel::{Name, Prefixes, Prefixes6, MAX_SELECTORS};
use std::collections::HashSet;

/// Any port, as a range.
pub const ANY_PORTS: (u16, u16) = (0, u16::MAX);

/// A validated policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: Name,
    /// IPv4 and IPv6 prefixes; a side with none of either: any (`channel::policy_families`
    /// says which packets the policy applies to).
    pub source: Prefixes,
    pub destination: Prefixes,
    pub source6: Prefixes6,
    pub destination6: Prefixes6,
    /// 0: any.
    pub protocol: u8,
    pub source_ports: (u16, u16),
    pub destination_ports: (u16, u16),
    pub then: PolicyThen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyThen {
    Permit,
    Deny,
    /// Into this VPN (`ike.vpns[].name`), through the tunnel named after the policy.
    IpsecVpn(Name),
}

pub(super) fn policies(
    list: &[PolicyFile],
    taken: &HashSet<Name>,
) -> Result<Vec<Policy>, ConfigError> {
    let mut names = HashSet::with_capacity(list.len());
    let mut out = Vec::with_capacity(list.len());
    for (i, p) in list.iter().enumerate() {
        let field = |x: &str| format!("policies[{i}].{x}");
        let name = parse_name(&field("name"), &p.name)?;
        if !names.insert(name) || taken.contains(&name) {
            return err(
                field("name"),
                format!(
                    "{:?} is already the name of a policy, tunnel or interface (a policy into a \
                     VPN makes a tunnel of its name)",
                    p.name
                ),
            );
        }
        // At most MAX_SELECTORS of each family; "0.0.0.0/0" and "::/0" stand for the whole
        // family.
        let prefixes =
            |f: &str, v: &Option<Vec<String>>| -> Result<(Prefixes, Prefixes6), ConfigError> {
                let (mut out, mut out6) = (Prefixes::new(), Prefixes6::new());
                for (j, s) in v.as_deref().unwrap_or_default().iter().enumerate() {
                    let at = format!("{}[{j}]", field(f));
                    let full = if s.contains(':') {
                        out6.try_push(parse_prefix6(&at, s)?).is_err()
                    } else {
                        out.try_push(parse_prefix(&at, s)?).is_err()
                    };
                    if full {
                        return err(
                            field(f),
                            format!("at most {MAX_SELECTORS} prefixes of a family"),
                        );
                    }
                }
                Ok((out, out6))
            };
        let (source, source6) = prefixes("source", &p.source)?;
        let (destination, destination6) = prefixes("destination", &p.destination)?;
        if channel::policy_families(&source, &source6, &destination, &destination6)
            == (false, false)
        {
            return err(
                field("destination"),
                "source and destination name prefixes of different families: the policy would match nothing",
            );
        }
        let protocol = match p.protocol.as_deref() {
            None | Some("any") => 0,
            Some("tcp") => 6,
            Some("udp") => 17,
            Some("icmp") => 1,
            Some(x) => match x.parse::<u8>() {
                Ok(n) => n,
                Err(_) => {
                    return err(
                        field("protocol"),
                        format!("{x:?} is not \"any\", \"tcp\", \"udp\", \"icmp\" or 0..255"),
                    )
                }
            },
        };
        let ports = |f: &str, v: &Option<String>| -> Result<(u16, u16), ConfigError> {
            let Some(s) = v else {
                return Ok(ANY_PORTS);
            };
            if protocol != 6 && protocol != 17 {
                return err(field(f), "ports need protocol \"tcp\" or \"udp\"");
            }
            let (a, b) = s.split_once('-').unwrap_or((s, s));
            match (a.trim().parse::<u16>(), b.trim().parse::<u16>()) {
                (Ok(a), Ok(b)) if a <= b => Ok((a, b)),
                _ => err(field(f), format!("{s:?} is not a port or a range N-M")),
            }
        };
        let source_ports = ports("source_ports", &p.source_ports)?;
        let destination_ports = ports("destination_ports", &p.destination_ports)?;
        let then = match &p.then {
            PolicyThenFile::Word(w) if w == "permit" => PolicyThen::Permit,
            PolicyThenFile::Word(w) if w == "deny" => PolicyThen::Deny,
            PolicyThenFile::Word(w) => {
                return err(
                    field("then"),
                    format!("{w:?} is not \"permit\", \"deny\" or {{\"ipsec_vpn\": NAME}}"),
                )
            }
            PolicyThenFile::Vpn { ipsec_vpn } => {
                PolicyThen::IpsecVpn(parse_name(&field("then.ipsec_vpn"), ipsec_vpn)?)
            }
        };
        out.push(Policy {
            name,
            source,
            destination,
            source6,
            destination6,
            protocol,
            source_ports,
            destination_ports,
            then,
        });
    }
    Ok(out)
}
