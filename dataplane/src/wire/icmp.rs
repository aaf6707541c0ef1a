//! ICMP echo (RFC 792): the gateway answers pings to its own addresses.

use super::checksum;

/// Where each field of an echo message lies.
pub mod field {
    pub type Field = core::ops::Range<usize>;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    /// Identifier and sequence number.
    pub const ECHO_HEADER_END: usize = 8;
}

pub const TYPE_ECHO_REPLY: u8 = 0;
pub const TYPE_ECHO_REQUEST: u8 = 8;

/// Turns a valid echo request (the whole ICMP message) into its reply in place.
/// Returns false, changing nothing, if `msg` is not a well-formed echo request.
pub fn echo_request_to_reply(msg: &mut [u8]) -> bool {
    if msg.len() < field::ECHO_HEADER_END
        || msg[field::TYPE] != TYPE_ECHO_REQUEST
        || msg[field::CODE] != 0
    {
        return false;
    }
    if checksum::sum(msg) != 0xffff {
        return false;
    }
    let old = u16::from_be_bytes([msg[field::TYPE], msg[field::CODE]]);
    msg[field::TYPE] = TYPE_ECHO_REPLY;
    let sum = &mut msg[field::CHECKSUM];
    let c = checksum::update(u16::from_be_bytes([sum[0], sum[1]]), old, 0);
    sum.copy_from_slice(&c.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_has_valid_checksum() {
        let mut m = [8u8, 0, 0, 0, 0x12, 0x34, 0, 1, b'h', b'i'];
        let c = checksum::checksum(&m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        assert!(echo_request_to_reply(&mut m));
        assert_eq!(m[0], 0);
        assert_eq!(checksum::sum(&m), 0xffff);
        assert!(!echo_request_to_reply(&mut m), "a reply is not a request");
        assert!(!echo_request_to_reply(&mut [8u8, 0, 0]));
    }
}
