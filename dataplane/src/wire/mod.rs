//! Zero-copy, checked views over packet headers, and plain `Repr`s to build them.
//!
//! Modelled on smoltcp's `wire`: `X::new_checked(buf)` validates lengths once, after which
//! the accessors cannot go out of bounds; nothing here panics on any input.

pub mod arp;
pub mod checksum;
pub mod esp;
pub mod ethernet;
pub mod icmp;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;

/// Why a header could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("truncated")]
    Truncated,
    #[error("malformed header")]
    Malformed,
    #[error("bad checksum")]
    Checksum,
}

pub type Result<T> = core::result::Result<T, WireError>;

#[inline(always)]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline(always)]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Every view accepts any bytes without panicking, and once a view is built, every
        /// accessor is in bounds.
        #[test]
        fn parsers_never_panic(b in prop::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(f) = ethernet::Frame::new_checked(&b[..]) {
                let _ = (f.dst(), f.src(), f.ethertype(), f.payload().len());
            }
            let _ = arp::Repr::parse(&b);
            if let Ok(p) = ipv4::Packet::new_checked(&b[..]) {
                let _ = (p.header_len(), p.tos(), p.ident(), p.dont_frag(), p.is_fragment(), p.ttl());
                let _ = (p.protocol(), p.checksum_field(), p.src(), p.dst(), p.verify_checksum());
                prop_assert!(p.payload().len() + p.header_len() == p.total_len());
            }
            if let Ok(d) = udp::Datagram::new_checked(&b[..]) {
                let _ = (d.src_port(), d.dst_port(), d.is_empty());
                prop_assert_eq!(d.payload().len() + udp::HEADER_LEN, d.len());
            }
            if let Ok(e) = esp::Packet::new_checked(&b[..]) {
                let _ = (e.spi(), e.seq(), e.iv());
            }
            let mut c = b.clone();
            let _ = icmp::echo_request_to_reply(&mut c);
            let iface = crate::forward::Interface {
                port: 0,
                mac: ethernet::Mac([2, 0, 0, 0, 0, 1]),
                addr: std::net::Ipv4Addr::new(10, 0, 0, 1),
                prefix_len: 24,
                mtu: 1500,
                ipv6: "2001:db8::1/64".parse().ok(),
            };
            let _ = crate::forward::arp::handle(&mut c, &iface);
            if let Ok(p) = ipv6::Packet::new_checked(&b[..]) {
                let _ = (p.traffic_class(), p.flow_label(), p.next_header(), p.hop_limit());
                let _ = (p.src(), p.dst(), p.payload().len());
                if let Ok(u) = p.upper_layer() {
                    prop_assert!(u.offset <= p.total_len());
                }
                let mut out = [0u8; ipv6::MIN_MTU];
                let te = icmpv6::ErrorKind::TimeExceeded { code: 0 };
                if let Some(n) = icmpv6::error(te, &b, p.src(), &mut out) {
                    prop_assert!(n <= ipv6::MIN_MTU);
                }
            }
            let _ = icmpv6::NdRepr::parse(&b);
            let a = std::net::Ipv6Addr::LOCALHOST;
            let _ = icmpv6::verify(&a, &a, &b);
            let _ = icmpv6::echo_request_to_reply(&a, &a, &mut b.clone());
            let _ = crate::forward::nd::handle(&b, &iface, &mut [0; crate::forward::nd::FRAME_LEN]);
        }
    }
}
