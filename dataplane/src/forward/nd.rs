//! IPv6 neighbor discovery (RFC 4861) as the main lcore runs it, the counterpart of `arp`:
//! answer solicitations for our addresses (global and link-local), learn neighbors from what
//! is addressed to us, and build solicitations to resolve next hops. Every message is
//! validated as section 7.1 says (hop limit 255, checksum, code, lengths, options) first.

use super::Interface;
use crate::wire::ethernet::{self, Mac};
use crate::wire::icmpv6::{self, NdRepr};
use crate::wire::ipv6;
use std::net::Ipv6Addr;

/// Length of an NS or NA frame with its link-layer address option.
pub const FRAME_LEN: usize =
    ethernet::HEADER_LEN + ipv6::HEADER_LEN + icmpv6::field::ND_OPTIONS + 8;

/// What a punted frame was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Seen {
    /// Not a valid NS or NA (RFC 4861 section 7.1): silently discarded, and counted.
    #[default]
    Invalid,
    Solicitation,
    Advertisement,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    pub seen: Seen,
    /// An advertisement was written into `out`, a whole frame of `FRAME_LEN` bytes to send
    /// back on the same port.
    pub reply: bool,
    /// A neighbor to install on the workers.
    pub learned: Option<(Ipv6Addr, Mac)>,
}

/// Handles an NS or NA frame received on `iface`. Only a solicitation for one of our
/// addresses, or an advertisement addressed to us, about a neighbor on the interface's IPv6
/// subnet teaches us anything, so strangers cannot fill the neighbor table.
pub fn handle(frame: &[u8], iface: &Interface, out: &mut [u8; FRAME_LEN]) -> Outcome {
    let invalid = Outcome::default();
    let Some(eth) = frame.first_chunk::<{ ethernet::HEADER_LEN }>() else {
        return invalid;
    };
    let Ok(f) = ethernet::Frame::new_checked(&eth[..]) else {
        return invalid;
    };
    let frame_src = f.src();
    let Ok(p) = ipv6::Packet::new_checked(&frame[ethernet::HEADER_LEN..]) else {
        return invalid;
    };
    let (src, dst) = (p.src(), p.dst());
    // Hop limit 255: the message was sent on this link, not forwarded by a router.
    if p.hop_limit() != icmpv6::ND_HOP_LIMIT || src.is_multicast() {
        return invalid;
    }
    let Ok(upper) = p.upper_layer() else {
        return invalid;
    };
    let msg = match p.payload().get(upper.offset - ipv6::HEADER_LEN..) {
        Some(m) if upper.protocol == ipv6::NEXT_ICMPV6 && !upper.fragment => m,
        _ => return invalid,
    };
    if !icmpv6::verify(&src, &dst, msg) {
        return invalid;
    }
    match NdRepr::parse(msg) {
        Ok(NdRepr::Solicit { target, source_mac }) => {
            solicitation(iface, frame_src, src, dst, target, source_mac, out)
        }
        Ok(NdRepr::Advert {
            flags,
            target,
            target_mac,
        }) => {
            // Solicited advertisements go to one node, never to a group (section 7.1.2).
            if dst.is_multicast() && flags & icmpv6::NA_SOLICITED != 0 {
                return invalid;
            }
            let learned = target_mac
                .filter(|m| m.0[0] & 1 == 0)
                .filter(|_| iface.has_ipv6(&dst) && iface.on_link6(&target))
                .map(|m| (target, m));
            Outcome {
                seen: Seen::Advertisement,
                reply: false,
                learned,
            }
        }
        Err(_) => invalid,
    }
}

fn solicitation(
    iface: &Interface,
    frame_src: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    target: Ipv6Addr,
    source_mac: Option<Mac>,
    out: &mut [u8; FRAME_LEN],
) -> Outcome {
    let dad = src.is_unspecified();
    // Duplicate address detection's probes go to the solicited-node group and carry no
    // source link-layer address (section 7.1.1).
    if dad && (dst != ipv6::solicited_node(&target) || source_mac.is_some()) {
        return Outcome::default();
    }
    let seen = Outcome {
        seen: Seen::Solicitation,
        ..Outcome::default()
    };
    if !iface.has_ipv6(&target) || (dst.is_multicast() && dst != ipv6::solicited_node(&target)) {
        return seen;
    }
    let learned = source_mac
        .filter(|m| m.0[0] & 1 == 0)
        .filter(|_| iface.on_link6(&src))
        .map(|m| (src, m));
    // The answer goes to the asker, or to all nodes for a probe (section 7.2.4), with our
    // MAC, from the address asked about; we are a router.
    let (to, to_mac, flags) = if dad {
        let all = ipv6::ALL_NODES;
        (
            all,
            ipv6::multicast_mac(&all),
            icmpv6::NA_ROUTER | icmpv6::NA_OVERRIDE,
        )
    } else {
        (
            src,
            source_mac.unwrap_or(frame_src),
            icmpv6::NA_ROUTER | icmpv6::NA_SOLICITED | icmpv6::NA_OVERRIDE,
        )
    };
    let na = NdRepr::Advert {
        flags,
        target,
        target_mac: Some(iface.mac),
    };
    Outcome {
        seen: Seen::Solicitation,
        reply: emit_frame(out, to_mac, iface.mac, target, to, &na) == Some(FRAME_LEN),
        learned,
    }
}

/// Writes a solicitation for `target` from `iface` into `out`: to the target's solicited-node
/// group, from our address on its subnet (else our link-local one), with our MAC.
pub fn solicit(out: &mut [u8; FRAME_LEN], iface: &Interface, target: Ipv6Addr) -> bool {
    let group = ipv6::solicited_node(&target);
    let from = match iface.ipv6 {
        Some(n) if iface.on_link6(&target) => n.addr(),
        _ => iface.link_local(),
    };
    let ns = NdRepr::Solicit {
        target,
        source_mac: Some(iface.mac),
    };
    emit_frame(
        out,
        ipv6::multicast_mac(&group),
        iface.mac,
        from,
        group,
        &ns,
    ) == Some(FRAME_LEN)
}

/// Writes a whole NS or NA frame; its length.
fn emit_frame(
    out: &mut [u8; FRAME_LEN],
    dst_mac: Mac,
    src_mac: Mac,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    nd: &NdRepr,
) -> Option<usize> {
    let (eth, rest) = out.split_at_mut(ethernet::HEADER_LEN);
    let (ip, msg) = rest.split_at_mut(ipv6::HEADER_LEN);
    let (Ok(eth), Ok(ip)) = (
        <&mut [u8; ethernet::HEADER_LEN]>::try_from(eth),
        <&mut [u8; ipv6::HEADER_LEN]>::try_from(ip),
    ) else {
        return None;
    };
    ethernet::Repr {
        dst: dst_mac,
        src: src_mac,
        ethertype: ethernet::ETHERTYPE_IPV6,
    }
    .emit(eth);
    ipv6::Repr {
        traffic_class: 0,
        next_header: ipv6::NEXT_ICMPV6,
        hop_limit: icmpv6::ND_HOP_LIMIT,
        src,
        dst,
        payload_len: nd.buffer_len(),
    }
    .emit(ip);
    Some(ethernet::HEADER_LEN + ipv6::HEADER_LEN + nd.emit(&src, &dst, msg)?)
}

#[cfg(test)]
mod tests;
