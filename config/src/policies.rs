//! The `policies` section: policy-based VPNs (Junos `security policies ... match
//! source-address destination-address application ... then permit tunnel ipsec-vpn V`, or
//! `then deny`/`permit`). An ordered list, the first policy that matches a packet deciding;
//! packets that match none are routed as usual (add a last policy with `"then": "deny"` to
//! drop them). A policy that sends into a VPN makes one child SA of it: IKE negotiates the
//! policy's addresses, protocol and ports as the child's traffic selectors, and the child
//! keys a tunnel the policy makes, named after it, between the VPN's gateway addresses.

use super::file::{PolicyFile, PolicyThenFile};
use super::{err, parse_name, parse_prefix, ConfigError};
use channel::{Name, Prefixes, MAX_SELECTORS};
use std::collections::HashSet;

/// Any port, as a range.
pub const ANY_PORTS: (u16, u16) = (0, u16::MAX);

/// A validated policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: Name,
    /// Empty: any.
    pub source: Prefixes,
    pub destination: Prefixes,
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
        let prefixes = |f: &str, v: &Option<Vec<String>>| -> Result<Prefixes, ConfigError> {
            let v = v.as_deref().unwrap_or_default();
            if v.len() > MAX_SELECTORS {
                return err(field(f), format!("at most {MAX_SELECTORS} prefixes"));
            }
            let mut out = Prefixes::new();
            for (j, s) in v.iter().enumerate() {
                let n = parse_prefix(&format!("{}[{j}]", field(f)), s)?;
                // A /0 is "any", which an empty list says.
                if n.prefix_len() != 0 {
                    out.push(n);
                }
            }
            Ok(out)
        };
        let source = prefixes("source", &p.source)?;
        let destination = prefixes("destination", &p.destination)?;
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
            protocol,
            source_ports,
            destination_ports,
            then,
        });
    }
    Ok(out)
}
