//! Traffic selectors (RFC 7296 section 3.13).

use super::reader::Reader;
use super::WireError;

pub const TS_IPV4_ADDR_RANGE: u8 = 7;
pub const TS_IPV6_ADDR_RANGE: u8 = 8;

/// One selector: an address range, a port range and an IP protocol (0: any).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrafficSelector {
    pub kind: u8,
    pub protocol: u8,
    pub start_port: u16,
    pub end_port: u16,
    /// 4 bytes each for IPv4, 16 for IPv6.
    pub start: Vec<u8>,
    pub end: Vec<u8>,
}

pub fn parse_selectors(body: &[u8]) -> Result<Vec<TrafficSelector>, WireError> {
    let mut r = Reader::new(body);
    let n = r.u8("number of TSs")?;
    r.take(3, "TS reserved")?;
    let mut out = Vec::with_capacity(usize::from(n));
    for _ in 0..n {
        let kind = r.u8("TS type")?;
        let protocol = r.u8("TS protocol")?;
        let len = usize::from(r.u16("selector length")?);
        let addr = match kind {
            TS_IPV4_ADDR_RANGE => 4,
            TS_IPV6_ADDR_RANGE => 16,
            _ => return Err(WireError::Malformed("TS type")),
        };
        if len != 8 + 2 * addr {
            return Err(WireError::Length {
                what: "traffic selector",
                len,
            });
        }
        let start_port = r.u16("start port")?;
        let end_port = r.u16("end port")?;
        let start = r.take(addr, "start address")?.to_vec();
        let end = r.take(addr, "end address")?.to_vec();
        out.push(TrafficSelector {
            kind,
            protocol,
            start_port,
            end_port,
            start,
            end,
        });
    }
    if !r.is_empty() {
        return Err(WireError::Malformed("bytes after the selectors"));
    }
    Ok(out)
}

pub fn emit_selectors(ts: &[TrafficSelector], out: &mut Vec<u8>) {
    out.push(ts.len() as u8);
    out.extend_from_slice(&[0, 0, 0]);
    for t in ts {
        out.push(t.kind);
        out.push(t.protocol);
        out.extend_from_slice(&((8 + t.start.len() + t.end.len()) as u16).to_be_bytes());
        out.extend_from_slice(&t.start_port.to_be_bytes());
        out.extend_from_slice(&t.end_port.to_be_bytes());
        out.extend_from_slice(&t.start);
        out.extend_from_slice(&t.end);
    }
}
