//! The IKEv2 message format (RFC 7296 section 3): the fixed header, the chain of generic
//! payloads, and each payload the exchanges use, parsed from bytes into plain representations
//! and emitted back. Parsing checks every length against what it is given and never panics;
//! an unknown payload is kept as bytes, unless it is marked critical (RFC 7296 section 2.5).

mod header;
mod payload;
mod reader;
mod sa;
mod ts;

pub use header::{Exchange, Flags, Header, HEADER_LEN};
pub use payload::{emit_chain, parse_chain, payload_type, Id, Notify, Payload};
pub use sa::{Attribute, Proposal, Protocol, Transform, TransformType, KEY_LENGTH};
pub use ts::{TrafficSelector, TS_IPV4_ADDR_RANGE, TS_IPV6_ADDR_RANGE};

/// Why bytes are not an IKEv2 message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("truncated: {0}")]
    Truncated(&'static str),
    #[error("IKE major version {0}, not 2")]
    Version(u8),
    #[error("{what} length {len} does not fit")]
    Length { what: &'static str, len: usize },
    /// RFC 7296 section 2.5: answered with UNSUPPORTED_CRITICAL_PAYLOAD.
    #[error("unsupported critical payload {0}")]
    UnsupportedCritical(u8),
    #[error("malformed {0}")]
    Malformed(&'static str),
}

/// A whole message: the header and its payloads in order (an SK or SKF payload, when there
/// is one, is last and holds the rest encrypted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    pub payloads: Vec<Payload>,
}

impl Message {
    /// Parses a datagram's payload (the non-ESP marker already removed).
    pub fn parse(bytes: &[u8]) -> Result<Message, WireError> {
        let (header, first, body) = Header::parse(bytes)?;
        let payloads = payload::parse_chain(first, body)?;
        Ok(Message { header, payloads })
    }

    /// The message as bytes, lengths and the payload chain filled in.
    pub fn emit(&self) -> Vec<u8> {
        let first = self.payloads.first().map_or(0, Payload::kind);
        let mut out = Vec::with_capacity(512);
        self.header.emit(first, &mut out);
        payload::emit_chain(&self.payloads, &mut out);
        let len = (out.len() as u32).to_be_bytes();
        out[24..28].copy_from_slice(&len);
        out
    }
}

#[cfg(test)]
mod tests;
