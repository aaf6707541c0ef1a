//! The SA payload's proposals and transforms (RFC 7296 section 3.3).

use super::reader::Reader;
use super::WireError;

/// The protocol a proposal is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Ike,
    Ah,
    Esp,
    Other(u8),
}

impl Protocol {
    pub fn from_u8(v: u8) -> Protocol {
        match v {
            1 => Protocol::Ike,
            2 => Protocol::Ah,
            3 => Protocol::Esp,
            o => Protocol::Other(o),
        }
    }
    pub fn to_u8(self) -> u8 {
        match self {
            Protocol::Ike => 1,
            Protocol::Ah => 2,
            Protocol::Esp => 3,
            Protocol::Other(o) => o,
        }
    }
}

/// Transform types (RFC 7296 section 3.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransformType {
    Encryption,
    Prf,
    Integrity,
    DhGroup,
    Esn,
    Other(u8),
}

impl TransformType {
    pub fn from_u8(v: u8) -> TransformType {
        match v {
            1 => TransformType::Encryption,
            2 => TransformType::Prf,
            3 => TransformType::Integrity,
            4 => TransformType::DhGroup,
            5 => TransformType::Esn,
            o => TransformType::Other(o),
        }
    }
    pub fn to_u8(self) -> u8 {
        match self {
            TransformType::Encryption => 1,
            TransformType::Prf => 2,
            TransformType::Integrity => 3,
            TransformType::DhGroup => 4,
            TransformType::Esn => 5,
            TransformType::Other(o) => o,
        }
    }
}

/// A transform attribute (RFC 7296 section 3.3.5): in practice only the key length (type 14,
/// TV), but TLV attributes are kept too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    /// Type/value, 16 bits (the AF bit set).
    Tv {
        kind: u16,
        value: u16,
    },
    Tlv {
        kind: u16,
        value: Vec<u8>,
    },
}

/// Attribute type of the key length, in bits.
pub const KEY_LENGTH: u16 = 14;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    pub kind: TransformType,
    pub id: u16,
    pub attributes: Vec<Attribute>,
}

impl Transform {
    /// The key length attribute, in bits, if there is one.
    pub fn key_length(&self) -> Option<u16> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Tv {
                kind: KEY_LENGTH,
                value,
            } => Some(*value),
            _ => None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// 1 for the first proposal, then each one more.
    pub number: u8,
    pub protocol: Protocol,
    /// Empty for IKE in IKE_SA_INIT; the sender's 4-byte SPI for ESP.
    pub spi: Vec<u8>,
    pub transforms: Vec<Transform>,
}

const MORE_PROPOSALS: u8 = 2;
const MORE_TRANSFORMS: u8 = 3;

pub fn parse_proposals(body: &[u8]) -> Result<Vec<Proposal>, WireError> {
    let mut r = Reader::new(body);
    let mut out = Vec::new();
    loop {
        let last = r.u8("proposal last substruc")?;
        r.u8("proposal reserved")?;
        let len = usize::from(r.u16("proposal length")?);
        let inner = r.take(
            len.checked_sub(4).ok_or(WireError::Length {
                what: "proposal",
                len,
            })?,
            "proposal",
        )?;
        out.push(parse_proposal(inner)?);
        match last {
            0 if r.is_empty() => return Ok(out),
            MORE_PROPOSALS if !r.is_empty() => {}
            _ => return Err(WireError::Malformed("proposal chain")),
        }
    }
}

fn parse_proposal(body: &[u8]) -> Result<Proposal, WireError> {
    let mut r = Reader::new(body);
    let number = r.u8("proposal number")?;
    let protocol = Protocol::from_u8(r.u8("protocol ID")?);
    let spi_size = usize::from(r.u8("SPI size")?);
    let count = r.u8("number of transforms")?;
    let spi = r.take(spi_size, "proposal SPI")?.to_vec();
    let mut transforms = Vec::with_capacity(usize::from(count));
    for i in 0..count {
        let last = r.u8("transform last substruc")?;
        r.u8("transform reserved")?;
        let len = usize::from(r.u16("transform length")?);
        let inner = r.take(
            len.checked_sub(4).ok_or(WireError::Length {
                what: "transform",
                len,
            })?,
            "transform",
        )?;
        transforms.push(parse_transform(inner)?);
        let want = if i + 1 == count { 0 } else { MORE_TRANSFORMS };
        if last != want {
            return Err(WireError::Malformed("transform chain"));
        }
    }
    if !r.is_empty() {
        return Err(WireError::Malformed("bytes after the transforms"));
    }
    Ok(Proposal {
        number,
        protocol,
        spi,
        transforms,
    })
}

fn parse_transform(body: &[u8]) -> Result<Transform, WireError> {
    let mut r = Reader::new(body);
    let kind = TransformType::from_u8(r.u8("transform type")?);
    r.u8("transform reserved")?;
    let id = r.u16("transform ID")?;
    let mut attributes = Vec::new();
    while !r.is_empty() {
        let t = r.u16("attribute type")?;
        if t & 0x8000 != 0 {
            attributes.push(Attribute::Tv {
                kind: t & 0x7fff,
                value: r.u16("attribute value")?,
            });
        } else {
            let len = usize::from(r.u16("attribute length")?);
            attributes.push(Attribute::Tlv {
                kind: t,
                value: r.take(len, "attribute value")?.to_vec(),
            });
        }
    }
    Ok(Transform {
        kind,
        id,
        attributes,
    })
}

fn put_u16(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&(v.min(usize::from(u16::MAX)) as u16).to_be_bytes());
}

pub fn emit_proposals(ps: &[Proposal], out: &mut Vec<u8>) {
    for (i, p) in ps.iter().enumerate() {
        let start = out.len();
        out.push(if i + 1 == ps.len() { 0 } else { MORE_PROPOSALS });
        out.push(0);
        out.extend_from_slice(&[0, 0]);
        out.push(p.number);
        out.push(p.protocol.to_u8());
        out.push(p.spi.len() as u8);
        out.push(p.transforms.len() as u8);
        out.extend_from_slice(&p.spi);
        for (j, t) in p.transforms.iter().enumerate() {
            let ts = out.len();
            out.push(if j + 1 == p.transforms.len() {
                0
            } else {
                MORE_TRANSFORMS
            });
            out.push(0);
            out.extend_from_slice(&[0, 0]);
            out.push(t.kind.to_u8());
            out.push(0);
            out.extend_from_slice(&t.id.to_be_bytes());
            for a in &t.attributes {
                match a {
                    Attribute::Tv { kind, value } => {
                        out.extend_from_slice(&(kind | 0x8000).to_be_bytes());
                        out.extend_from_slice(&value.to_be_bytes());
                    }
                    Attribute::Tlv { kind, value } => {
                        out.extend_from_slice(&(kind & 0x7fff).to_be_bytes());
                        put_u16(out, value.len());
                        out.extend_from_slice(value);
                    }
                }
            }
            let tl = out.len() - ts;
            out[ts + 2..ts + 4].copy_from_slice(&(tl as u16).to_be_bytes());
        }
        let pl = out.len() - start;
        out[start + 2..start + 4].copy_from_slice(&(pl as u16).to_be_bytes());
    }
}
