//! Where a packet handed to another worker resumes there. The packet path stops at the first
//! step that needs an SA it does not own (or a TX queue it does not have), so the owner
//! continues from exactly that step; the step travels with the packet as a 32-bit tag in its
//! buffer (`mbuf.hash.usr`).

use super::TunnelId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// The buffer holds the outer IPv4 packet of ESP, or ESP in UDP, for us.
    EspInput,
    /// The buffer holds an inner IPv4 packet already routed (TTL decremented) into this tunnel.
    TunnelOutput(TunnelId),
    /// The buffer holds a frame to send on this port, from a worker with no TX queue there.
    Transmit(u16),
}

/// A `Resume` as the 32-bit tag it travels as. Verdicts carry it in this form, which keeps a
/// `Verdict` to 8 bytes: returned in a register, not through memory, at every step of the
/// pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResumeTag(pub u32);

impl From<Resume> for ResumeTag {
    #[inline]
    fn from(r: Resume) -> ResumeTag {
        ResumeTag(r.tag())
    }
}

/// Low bits of a resume tag that carry its argument; the top two say which step.
const ARG: u32 = (1 << 30) - 1;
/// Tunnel ids must fit a tag's argument (`config` and `ControlState` keep them far below).
pub const MAX_TUNNEL_ID: TunnelId = ARG;
const _: () = assert!(config::MAX_TUNNEL_ID == MAX_TUNNEL_ID);

impl Resume {
    /// As a 32-bit tag. A zero tag is none (a fresh mbuf has 0 there).
    pub fn tag(self) -> u32 {
        match self {
            Resume::EspInput => 1 << 30,
            Resume::TunnelOutput(t) => (2 << 30) | (t & ARG),
            Resume::Transmit(p) => (3 << 30) | u32::from(p),
        }
    }

    pub fn from_tag(tag: u32) -> Option<Resume> {
        let v = tag & ARG;
        match tag >> 30 {
            1 if v == 0 => Some(Resume::EspInput),
            2 => Some(Resume::TunnelOutput(v)),
            3 => u16::try_from(v).ok().map(Resume::Transmit),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_tags_round_trip() {
        for r in [
            Resume::EspInput,
            Resume::TunnelOutput(0),
            Resume::TunnelOutput(65535),
            Resume::TunnelOutput(MAX_TUNNEL_ID),
            Resume::Transmit(7),
            Resume::Transmit(u16::MAX),
        ] {
            assert_eq!(Resume::from_tag(r.tag()), Some(r));
        }
        assert_eq!(
            Resume::from_tag(0),
            None,
            "an RSS hash left in the mbuf is not a tag"
        );
        assert_eq!(Resume::from_tag(9 << 16), None);
    }
}
