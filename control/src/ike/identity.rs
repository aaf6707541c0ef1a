//! Identities (RFC 7296 section 3.5) as the appliance compares them: the ID payload's bytes
//! are what AUTH signs, but two encodings of one distinguished name are one peer, so a peer's
//! identity is matched in this normal form. A certificate vouches for an identity when it
//! names it: its subject for a DN, a subjectAltName of the same kind for the others (RFC
//! 4945 section 3.1).

use super::wire::Id;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

/// ID types (RFC 7296 section 3.5).
pub const ID_IPV4_ADDR: u8 = 1;
pub const ID_FQDN: u8 = 2;
pub const ID_RFC822_ADDR: u8 = 3;
pub const ID_IPV6_ADDR: u8 = 5;
pub const ID_DER_ASN1_DN: u8 = 9;

/// A peer's identity in normal form: names compared without regard to case, a DN as its
/// attributes in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    Fqdn(String),
    UserFqdn(String),
    Dn(Dn),
}

/// A distinguished name as (attribute, value) pairs in the order of its RDNs (multi-valued
/// RDNs flattened): the attribute by its short name, the value trimmed. Values compare
/// without regard to case.
#[derive(Debug, Clone)]
pub struct Dn(Vec<(String, String)>);

impl Dn {
    fn normal(&self) -> impl Iterator<Item = (&str, String)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.to_lowercase()))
    }
}

impl PartialEq for Dn {
    fn eq(&self, other: &Dn) -> bool {
        self.0.len() == other.0.len() && self.normal().eq(other.normal())
    }
}

impl Eq for Dn {}

impl std::hash::Hash for Dn {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        for a in self.normal() {
            a.hash(h);
        }
    }
}

/// The attributes DNs are written with, by short name (as strongSwan and OpenSSL write them)
/// and OID; other attributes appear as their dotted OID.
const ATTRIBUTES: &[(&str, &str)] = &[
    ("CN", "2.5.4.3"),
    ("SN", "2.5.4.4"),
    ("serialNumber", "2.5.4.5"),
    ("C", "2.5.4.6"),
    ("L", "2.5.4.7"),
    ("ST", "2.5.4.8"),
    ("street", "2.5.4.9"),
    ("O", "2.5.4.10"),
    ("OU", "2.5.4.11"),
    ("title", "2.5.4.12"),
    ("GN", "2.5.4.42"),
    ("E", "1.2.840.113549.1.9.1"),
    ("DC", "0.9.2342.19200300.100.1.25"),
    ("UID", "0.9.2342.19200300.100.1.1"),
];

/// Other names operators write for the same attributes.
const ALIASES: &[(&str, &str)] = &[
    ("emailAddress", "E"),
    ("commonName", "CN"),
    ("countryName", "C"),
    ("organizationName", "O"),
    ("organizationalUnitName", "OU"),
    ("localityName", "L"),
    ("stateOrProvinceName", "ST"),
    ("S", "ST"),
    ("surname", "SN"),
    ("givenName", "GN"),
];

impl Dn {
    /// A DN as written in the configuration: `C=CH, O=espgw, CN=gw1` (the order of the
    /// certificate's subject, as strongSwan writes it), `\,` for a comma in a value.
    pub fn parse(s: &str) -> Result<Dn, String> {
        let mut out = Vec::new();
        for part in split_unescaped(s) {
            let Some((k, v)) = part.split_once('=') else {
                return Err(format!("{part:?} is not ATTRIBUTE=value"));
            };
            let k = k.trim();
            let v = v.trim().replace("\\,", ",");
            let key = canonical_attribute(k).ok_or_else(|| format!("unknown attribute {k:?}"))?;
            if v.is_empty() {
                return Err(format!("{k} has no value"));
            }
            out.push((key, v));
        }
        if out.is_empty() {
            return Err("an empty DN".into());
        }
        Ok(Dn(out))
    }

    /// A DER-encoded Name (an ID_DER_ASN1_DN payload's data, a certificate's subject).
    pub fn from_der(der: &[u8]) -> Option<Dn> {
        let (rest, name) = X509Name::from_der(der).ok()?;
        rest.is_empty().then(|| Dn::of(&name))
    }

    fn of(name: &X509Name<'_>) -> Dn {
        Dn(name
            .iter_attributes()
            .map(|a| {
                let oid = a.attr_type().to_id_string();
                let key = ATTRIBUTES
                    .iter()
                    .find(|(_, o)| *o == oid)
                    .map_or(oid.clone(), |(k, _)| (*k).to_string());
                let value = match a.as_str() {
                    Ok(v) => v.trim().to_string(),
                    Err(_) => format!("#{}", hex::encode(a.attr_value().data)),
                };
                (key, value)
            })
            .collect())
    }
}

impl fmt::Display for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{k}={}", v.replace(',', "\\,"))?;
        }
        Ok(())
    }
}

/// The attribute's short name, from a short name, an alias or a dotted OID.
fn canonical_attribute(k: &str) -> Option<String> {
    let k = ALIASES
        .iter()
        .find(|(a, _)| a.eq_ignore_ascii_case(k))
        .map_or(k, |(_, c)| *c);
    if let Some((name, _)) = ATTRIBUTES.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)) {
        return Some((*name).to_string());
    }
    if let Some((name, _)) = ATTRIBUTES.iter().find(|(_, o)| *o == k) {
        return Some((*name).to_string());
    }
    let dotted = !k.is_empty()
        && k.split('.')
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    dotted.then(|| k.to_string())
}

/// `s` cut at commas not escaped by a backslash.
fn split_unescaped(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut prev) = (0, '\0');
    for (i, c) in s.char_indices() {
        if c == ',' && prev != '\\' {
            out.push(&s[start..i]);
            start = i + 1;
        }
        prev = c;
    }
    out.push(&s[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

impl Identity {
    /// The identity an ID payload names; `None`: a type espgw does not match (key IDs,
    /// address ranges) or a DN that does not parse.
    pub fn from_wire(id: &Id) -> Option<Identity> {
        match id.kind {
            ID_IPV4_ADDR => {
                let a: [u8; 4] = id.data.as_slice().try_into().ok()?;
                Some(Identity::Ipv4(Ipv4Addr::from(a)))
            }
            ID_IPV6_ADDR => {
                let a: [u8; 16] = id.data.as_slice().try_into().ok()?;
                Some(Identity::Ipv6(Ipv6Addr::from(a)))
            }
            ID_FQDN => Some(Identity::Fqdn(
                std::str::from_utf8(&id.data).ok()?.to_lowercase(),
            )),
            ID_RFC822_ADDR => Some(Identity::UserFqdn(
                std::str::from_utf8(&id.data).ok()?.to_lowercase(),
            )),
            ID_DER_ASN1_DN => Dn::from_der(&id.data).map(Identity::Dn),
            _ => None,
        }
    }

    /// The ID payload for this identity; `None` for a DN, which is sent as a certificate's
    /// own subject (`subject_id`), never re-encoded.
    pub fn to_wire(&self) -> Option<Id> {
        let (kind, data) = match self {
            Identity::Ipv4(a) => (ID_IPV4_ADDR, a.octets().to_vec()),
            Identity::Ipv6(a) => (ID_IPV6_ADDR, a.octets().to_vec()),
            Identity::Fqdn(s) => (ID_FQDN, s.as_bytes().to_vec()),
            Identity::UserFqdn(s) => (ID_RFC822_ADDR, s.as_bytes().to_vec()),
            Identity::Dn(_) => return None,
        };
        Some(Id { kind, data })
    }

    /// Whether the certificate (DER) vouches for this identity.
    pub fn certified_by(&self, cert_der: &[u8]) -> bool {
        let Ok((_, cert)) = X509Certificate::from_der(cert_der) else {
            return false;
        };
        if let Identity::Dn(dn) = self {
            return Dn::of(cert.subject()) == *dn;
        }
        let Ok(Some(san)) = cert.subject_alternative_name() else {
            return false;
        };
        san.value.general_names.iter().any(|g| match (self, g) {
            (Identity::Fqdn(s), GeneralName::DNSName(n)) => n.eq_ignore_ascii_case(s),
            (Identity::UserFqdn(s), GeneralName::RFC822Name(n)) => n.eq_ignore_ascii_case(s),
            (Identity::Ipv4(a), GeneralName::IPAddress(b)) => *b == a.octets(),
            (Identity::Ipv6(a), GeneralName::IPAddress(b)) => *b == a.octets(),
            _ => false,
        })
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Ipv4(a) => a.fmt(f),
            Identity::Ipv6(a) => a.fmt(f),
            Identity::Fqdn(s) | Identity::UserFqdn(s) => f.write_str(s),
            Identity::Dn(d) => d.fmt(f),
        }
    }
}

/// The ID payload naming a certificate's subject (ID_DER_ASN1_DN, the subject's own bytes).
pub fn subject_id(cert_der: &[u8]) -> Option<Id> {
    let (_, cert) = X509Certificate::from_der(cert_der).ok()?;
    Some(Id {
        kind: ID_DER_ASN1_DN,
        data: cert.subject().as_raw().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_compare_by_attribute_whatever_the_spelling() {
        let a = Dn::parse("C=CH, O=espgw, CN=gw1.example").unwrap();
        let b = Dn::parse("countryName=ch,o=ESPGW ,  commonName = GW1.example").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "C=CH, O=espgw, CN=gw1.example");
        assert_ne!(
            a,
            Dn::parse("O=espgw, C=CH, CN=gw1.example").unwrap(),
            "order counts"
        );
        assert_ne!(a, Dn::parse("C=CH, O=espgw").unwrap());
        let comma = Dn::parse(r"O=Acme\, Inc., CN=x").unwrap();
        assert_eq!(comma.0[0].1, "Acme, Inc.");
        assert_eq!(
            Dn::parse("2.5.4.3=gw1").unwrap(),
            Dn::parse("CN=gw1").unwrap()
        );
        for bad in ["", "CN", "XX=1", "CN=", " , "] {
            assert!(Dn::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn wire_identities_in_normal_form() {
        let id = |kind, data: &[u8]| Id {
            kind,
            data: data.to_vec(),
        };
        assert_eq!(
            Identity::from_wire(&id(1, &[10, 0, 0, 1])),
            Some(Identity::Ipv4(Ipv4Addr::new(10, 0, 0, 1)))
        );
        assert_eq!(Identity::from_wire(&id(1, &[10, 0, 0])), None);
        // ID_IPV6_ADDR: sixteen bytes, no fewer.
        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            Identity::from_wire(&id(5, &v6.octets())),
            Some(Identity::Ipv6(v6))
        );
        assert_eq!(Identity::Ipv6(v6).to_wire().unwrap(), id(5, &v6.octets()));
        assert_eq!(Identity::from_wire(&id(5, &[0x20, 1, 0xd, 0xb8])), None);
        assert_eq!(
            Identity::from_wire(&id(2, b"GW1.Example")),
            Some(Identity::Fqdn("gw1.example".into()))
        );
        assert_eq!(Identity::from_wire(&id(2, &[0xff, 0xfe])), None);
        assert_eq!(Identity::from_wire(&id(11, b"key")), None);
        assert_eq!(Identity::from_wire(&id(9, &[0x30, 0x03, 0x31])), None);
        let fqdn = Identity::Fqdn("gw1.example".into());
        assert_eq!(Identity::from_wire(&fqdn.to_wire().unwrap()), Some(fqdn));
    }
}
