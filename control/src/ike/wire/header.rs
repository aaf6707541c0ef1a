//! The IKE header (RFC 7296 section 3.1).

use super::reader::Reader;
use super::WireError;

pub const HEADER_LEN: usize = 28;

/// Exchange types (RFC 7296 section 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exchange {
    IkeSaInit,
    IkeAuth,
    CreateChildSa,
    Informational,
    Other(u8),
}

impl Exchange {
    pub fn from_u8(v: u8) -> Exchange {
        match v {
            34 => Exchange::IkeSaInit,
            35 => Exchange::IkeAuth,
            36 => Exchange::CreateChildSa,
            37 => Exchange::Informational,
            o => Exchange::Other(o),
        }
    }
    pub fn to_u8(self) -> u8 {
        match self {
            Exchange::IkeSaInit => 34,
            Exchange::IkeAuth => 35,
            Exchange::CreateChildSa => 36,
            Exchange::Informational => 37,
            Exchange::Other(o) => o,
        }
    }
}

/// The header's flags: Initiator, Version (higher supported), Response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags {
    pub initiator: bool,
    pub version: bool,
    pub response: bool,
}

impl Flags {
    const I: u8 = 0x08;
    const V: u8 = 0x10;
    const R: u8 = 0x20;
    fn from_u8(v: u8) -> Flags {
        Flags {
            initiator: v & Self::I != 0,
            version: v & Self::V != 0,
            response: v & Self::R != 0,
        }
    }
    fn to_u8(self) -> u8 {
        (if self.initiator { Self::I } else { 0 })
            | (if self.version { Self::V } else { 0 })
            | (if self.response { Self::R } else { 0 })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub initiator_spi: u64,
    /// 0 in the first IKE_SA_INIT request.
    pub responder_spi: u64,
    pub exchange: Exchange,
    pub flags: Flags,
    pub message_id: u32,
}

impl Header {
    /// The header, the type of the first payload, and the bytes of the payloads (as many as
    /// the header's length says; a datagram longer than that is refused, RFC 7296 section 3.1
    /// says the length is the whole message).
    pub fn parse(bytes: &[u8]) -> Result<(Header, u8, &[u8]), WireError> {
        let mut r = Reader::new(bytes);
        let initiator_spi = r.u64("initiator SPI")?;
        let responder_spi = r.u64("responder SPI")?;
        let next = r.u8("next payload")?;
        let version = r.u8("version")?;
        if version >> 4 != 2 {
            return Err(WireError::Version(version >> 4));
        }
        let exchange = Exchange::from_u8(r.u8("exchange type")?);
        let flags = Flags::from_u8(r.u8("flags")?);
        let message_id = r.u32("message ID")?;
        let len = r.u32("length")? as usize;
        if len != bytes.len() {
            return Err(WireError::Length {
                what: "message",
                len,
            });
        }
        Ok((
            Header {
                initiator_spi,
                responder_spi,
                exchange,
                flags,
                message_id,
            },
            next,
            r.rest(),
        ))
    }

    /// Writes the header with `first` as the next payload and a length of 0 (`Message::emit`
    /// fills it once the payloads are written).
    pub fn emit(&self, first: u8, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.initiator_spi.to_be_bytes());
        out.extend_from_slice(&self.responder_spi.to_be_bytes());
        out.push(first);
        out.push(0x20);
        out.push(self.exchange.to_u8());
        out.push(self.flags.to_u8());
        out.extend_from_slice(&self.message_id.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
    }
}
