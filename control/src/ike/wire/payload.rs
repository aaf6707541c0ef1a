//! The generic payload header and chain (RFC 7296 section 3.2), and each payload's body.

use super::reader::Reader;
use super::sa::{emit_proposals, parse_proposals, Proposal};
use super::ts::{emit_selectors, parse_selectors, TrafficSelector};
use super::WireError;

/// Payload type numbers (RFC 7296 section 3.2, RFC 7383 for SKF).
pub mod payload_type {
    pub const NONE: u8 = 0;
    pub const SA: u8 = 33;
    pub const KE: u8 = 34;
    pub const IDI: u8 = 35;
    pub const IDR: u8 = 36;
    pub const CERT: u8 = 37;
    pub const CERTREQ: u8 = 38;
    pub const AUTH: u8 = 39;
    pub const NONCE: u8 = 40;
    pub const NOTIFY: u8 = 41;
    pub const DELETE: u8 = 42;
    pub const VENDOR_ID: u8 = 43;
    pub const TSI: u8 = 44;
    pub const TSR: u8 = 45;
    pub const SK: u8 = 46;
    pub const CP: u8 = 47;
    pub const EAP: u8 = 48;
    pub const SKF: u8 = 53;
}

/// An identification (RFC 7296 section 3.5): its type (1 IPv4 address, 2 FQDN, 3 user FQDN,
/// 5 IPv6 address, 9 DER DN, 11 key ID) and data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Id {
    pub kind: u8,
    pub data: Vec<u8>,
}

/// A notification (RFC 7296 section 3.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    /// 0 when it is about the IKE SA, else the protocol of `spi`.
    pub protocol: u8,
    pub kind: u16,
    pub spi: Vec<u8>,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Sa(Vec<Proposal>),
    Ke {
        group: u16,
        data: Vec<u8>,
    },
    IdI(Id),
    IdR(Id),
    Auth {
        method: u8,
        data: Vec<u8>,
    },
    Nonce(Vec<u8>),
    Notify(Notify),
    Delete {
        protocol: u8,
        spi_size: u8,
        spis: Vec<Vec<u8>>,
    },
    VendorId(Vec<u8>),
    TsI(Vec<TrafficSelector>),
    TsR(Vec<TrafficSelector>),
    /// A certificate (RFC 7296 section 3.6): its encoding (4: X.509 signature, DER) and data.
    Cert {
        encoding: u8,
        data: Vec<u8>,
    },
    /// A certificate request (section 3.7): for X.509, the SHA-1 hashes of the public keys
    /// (SubjectPublicKeyInfo) of the CAs the sender trusts, concatenated.
    CertReq {
        encoding: u8,
        data: Vec<u8>,
    },
    /// Encrypted and authenticated (RFC 7296 section 3.14): `first` is the type of the first
    /// payload inside, `body` the IV, ciphertext and ICV.
    Sk {
        first: u8,
        body: Vec<u8>,
    },
    /// An encrypted fragment (RFC 7383 section 2.5): `first` is set in fragment 1 only.
    Skf {
        first: u8,
        number: u16,
        total: u16,
        body: Vec<u8>,
    },
    /// Any other payload (CP, EAP, unknown non-critical ones), kept as bytes.
    Other {
        kind: u8,
        critical: bool,
        body: Vec<u8>,
    },
}

impl Payload {
    /// Its payload type number.
    pub fn kind(&self) -> u8 {
        use payload_type as T;
        match self {
            Payload::Sa(_) => T::SA,
            Payload::Ke { .. } => T::KE,
            Payload::IdI(_) => T::IDI,
            Payload::IdR(_) => T::IDR,
            Payload::Auth { .. } => T::AUTH,
            Payload::Nonce(_) => T::NONCE,
            Payload::Notify(_) => T::NOTIFY,
            Payload::Delete { .. } => T::DELETE,
            Payload::VendorId(_) => T::VENDOR_ID,
            Payload::TsI(_) => T::TSI,
            Payload::TsR(_) => T::TSR,
            Payload::Cert { .. } => T::CERT,
            Payload::CertReq { .. } => T::CERTREQ,
            Payload::Sk { .. } => T::SK,
            Payload::Skf { .. } => T::SKF,
            Payload::Other { kind, .. } => *kind,
        }
    }
}

const CRITICAL: u8 = 0x80;

/// Parses the payloads that follow the header, `first` being the first one's type.
pub fn parse_chain(first: u8, body: &[u8]) -> Result<Vec<Payload>, WireError> {
    let mut r = Reader::new(body);
    let mut next = first;
    let mut out = Vec::new();
    while next != payload_type::NONE {
        let kind = next;
        next = r.u8("next payload")?;
        let critical = r.u8("payload flags")? & CRITICAL != 0;
        let len = usize::from(r.u16("payload length")?);
        let inner_len = len.checked_sub(4).ok_or(WireError::Length {
            what: "payload",
            len,
        })?;
        let inner = r.take(inner_len, "payload")?;
        let p = parse_one(kind, critical, next, inner)?;
        let encrypted = matches!(p, Payload::Sk { .. } | Payload::Skf { .. });
        out.push(p);
        if encrypted {
            // The next-payload field of SK names what is inside: SK ends the chain.
            next = payload_type::NONE;
        }
    }
    if !r.is_empty() {
        return Err(WireError::Malformed("bytes after the last payload"));
    }
    Ok(out)
}

fn parse_one(kind: u8, critical: bool, next: u8, body: &[u8]) -> Result<Payload, WireError> {
    use payload_type as T;
    let mut r = Reader::new(body);
    let with_reserved3 = |r: &mut Reader<'_>, what| -> Result<u8, WireError> {
        let v = r.u8(what)?;
        r.take(3, "reserved")?;
        Ok(v)
    };
    Ok(match kind {
        T::SA => Payload::Sa(parse_proposals(body)?),
        T::KE => {
            let group = r.u16("DH group")?;
            r.take(2, "KE reserved")?;
            Payload::Ke {
                group,
                data: r.rest().to_vec(),
            }
        }
        T::IDI | T::IDR => {
            let id = Id {
                kind: with_reserved3(&mut r, "ID type")?,
                data: r.rest().to_vec(),
            };
            if kind == T::IDI {
                Payload::IdI(id)
            } else {
                Payload::IdR(id)
            }
        }
        T::AUTH => Payload::Auth {
            method: with_reserved3(&mut r, "auth method")?,
            data: r.rest().to_vec(),
        },
        T::NONCE => Payload::Nonce(body.to_vec()),
        T::NOTIFY => {
            let protocol = r.u8("notify protocol")?;
            let spi_size = usize::from(r.u8("notify SPI size")?);
            let kind = r.u16("notify type")?;
            let spi = r.take(spi_size, "notify SPI")?.to_vec();
            Payload::Notify(Notify {
                protocol,
                kind,
                spi,
                data: r.rest().to_vec(),
            })
        }
        T::DELETE => {
            let protocol = r.u8("delete protocol")?;
            let spi_size = r.u8("delete SPI size")?;
            let n = r.u16("number of SPIs")?;
            let mut spis = Vec::new();
            for _ in 0..n {
                spis.push(r.take(usize::from(spi_size), "deleted SPI")?.to_vec());
            }
            if !r.is_empty() {
                return Err(WireError::Malformed("bytes after the deleted SPIs"));
            }
            Payload::Delete {
                protocol,
                spi_size,
                spis,
            }
        }
        T::VENDOR_ID => Payload::VendorId(body.to_vec()),
        T::TSI => Payload::TsI(parse_selectors(body)?),
        T::TSR => Payload::TsR(parse_selectors(body)?),
        T::SK => Payload::Sk {
            first: next,
            body: body.to_vec(),
        },
        T::SKF => {
            let number = r.u16("fragment number")?;
            let total = r.u16("total fragments")?;
            if number == 0 || number > total {
                return Err(WireError::Malformed("fragment number"));
            }
            Payload::Skf {
                first: next,
                number,
                total,
                body: r.rest().to_vec(),
            }
        }
        T::CERT => Payload::Cert {
            encoding: r.u8("certificate encoding")?,
            data: r.rest().to_vec(),
        },
        T::CERTREQ => Payload::CertReq {
            encoding: r.u8("certificate encoding")?,
            data: r.rest().to_vec(),
        },
        T::CP | T::EAP => Payload::Other {
            kind,
            critical,
            body: body.to_vec(),
        },
        other if critical => return Err(WireError::UnsupportedCritical(other)),
        other => Payload::Other {
            kind: other,
            critical,
            body: body.to_vec(),
        },
    })
}

/// Writes the payloads, each with its generic header, chained in order.
pub fn emit_chain(ps: &[Payload], out: &mut Vec<u8>) {
    for (i, p) in ps.iter().enumerate() {
        let next = match p {
            Payload::Sk { first, .. } | Payload::Skf { first, .. } => *first,
            _ => ps.get(i + 1).map_or(payload_type::NONE, Payload::kind),
        };
        let start = out.len();
        out.push(next);
        out.push(match p {
            Payload::Other { critical: true, .. } => CRITICAL,
            _ => 0,
        });
        out.extend_from_slice(&[0, 0]);
        emit_body(p, out);
        let len = (out.len() - start).min(usize::from(u16::MAX)) as u16;
        out[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
    }
}

fn emit_body(p: &Payload, out: &mut Vec<u8>) {
    let reserved3 = |out: &mut Vec<u8>, v: u8| out.extend_from_slice(&[v, 0, 0, 0]);
    match p {
        Payload::Sa(ps) => emit_proposals(ps, out),
        Payload::Ke { group, data } => {
            out.extend_from_slice(&group.to_be_bytes());
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(data);
        }
        Payload::IdI(id) | Payload::IdR(id) => {
            reserved3(out, id.kind);
            out.extend_from_slice(&id.data);
        }
        Payload::Auth { method, data } => {
            reserved3(out, *method);
            out.extend_from_slice(data);
        }
        Payload::Nonce(n) | Payload::VendorId(n) => out.extend_from_slice(n),
        Payload::Notify(n) => {
            out.push(n.protocol);
            out.push(n.spi.len() as u8);
            out.extend_from_slice(&n.kind.to_be_bytes());
            out.extend_from_slice(&n.spi);
            out.extend_from_slice(&n.data);
        }
        Payload::Delete {
            protocol,
            spi_size,
            spis,
        } => {
            out.push(*protocol);
            out.push(*spi_size);
            out.extend_from_slice(&(spis.len() as u16).to_be_bytes());
            for s in spis {
                out.extend_from_slice(s);
            }
        }
        Payload::TsI(ts) | Payload::TsR(ts) => emit_selectors(ts, out),
        Payload::Cert { encoding, data } | Payload::CertReq { encoding, data } => {
            out.push(*encoding);
            out.extend_from_slice(data);
        }
        Payload::Sk { body, .. } | Payload::Other { body, .. } => out.extend_from_slice(body),
        Payload::Skf {
            number,
            total,
            body,
            ..
        } => {
            out.extend_from_slice(&number.to_be_bytes());
            out.extend_from_slice(&total.to_be_bytes());
            out.extend_from_slice(body);
        }
    }
}
