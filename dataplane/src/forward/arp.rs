//! ARP as the main lcore runs it: answer requests for our addresses, learn neighbors from
//! what is addressed to us, and build requests to resolve next hops.

use super::Interface;
use crate::wire::arp::{self, Repr, OP_REPLY, OP_REQUEST};
use crate::wire::ethernet::{self, Mac, BROADCAST};
use std::net::Ipv4Addr;

/// Length of an ARP frame without Ethernet padding.
pub const FRAME_LEN: usize = ethernet::HEADER_LEN + arp::LEN;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    /// The frame was rewritten in place into a reply to send back on the same port.
    pub reply: bool,
    /// A neighbor to install on the workers.
    pub learned: Option<(Ipv4Addr, Mac)>,
}

/// Handles an ARP frame received on `iface`. Only frames for our address from a sender on our
/// subnet teach us anything, so foreign or spoofed ARP cannot fill the neighbor table.
pub fn handle(frame: &mut [u8], iface: &Interface) -> Outcome {
    let Some(body) = frame.get(ethernet::HEADER_LEN..) else {
        return Outcome::default();
    };
    let Ok(a) = Repr::parse(body) else {
        return Outcome::default();
    };
    let on_link =
        ipnet::Ipv4Net::new(iface.addr, iface.prefix_len).is_ok_and(|n| n.contains(&a.sender_ip));
    if a.target_ip != iface.addr
        || !on_link
        || a.sender_ip == iface.addr
        || a.sender_mac.0[0] & 1 != 0
    {
        return Outcome::default();
    }
    let learned = Some((a.sender_ip, a.sender_mac));
    if a.op != OP_REQUEST {
        return Outcome {
            reply: false,
            learned,
        };
    }
    let reply = Repr {
        op: OP_REPLY,
        sender_mac: iface.mac,
        sender_ip: iface.addr,
        target_mac: a.sender_mac,
        target_ip: a.sender_ip,
    };
    if emit_frame(frame, a.sender_mac, iface.mac, &reply) {
        Outcome {
            reply: true,
            learned,
        }
    } else {
        Outcome {
            reply: false,
            learned,
        }
    }
}

/// Writes a broadcast who-has for `target` from `iface` into `out` (at least `FRAME_LEN`).
pub fn request(out: &mut [u8], iface: &Interface, target: Ipv4Addr) -> bool {
    let r = Repr {
        op: OP_REQUEST,
        sender_mac: iface.mac,
        sender_ip: iface.addr,
        target_mac: Mac::default(),
        target_ip: target,
    };
    emit_frame(out, BROADCAST, iface.mac, &r)
}

fn emit_frame(out: &mut [u8], dst: Mac, src: Mac, r: &Repr) -> bool {
    let Some((eth, rest)) = out.split_first_chunk_mut() else {
        return false;
    };
    let Some(body) = rest.first_chunk_mut() else {
        return false;
    };
    ethernet::Repr {
        dst,
        src,
        ethertype: ethernet::ETHERTYPE_ARP,
    }
    .emit(eth);
    r.emit(body);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface() -> Interface {
        Interface {
            port: 0,
            mac: Mac([2, 0, 0, 0, 1, 1]),
            addr: Ipv4Addr::new(10, 1, 0, 1),
            prefix_len: 24,
            mtu: 1500,
            ipv6: None,
        }
    }

    #[test]
    fn answers_requests_for_our_address_and_learns_the_asker() {
        let host = Mac([2, 0, 0, 0, 1, 0x10]);
        let hip = Ipv4Addr::new(10, 1, 0, 10);
        let mut f = [0u8; FRAME_LEN];
        let asker = Interface {
            mac: host,
            addr: hip,
            ..iface()
        };
        assert!(request(&mut f, &asker, Ipv4Addr::new(10, 1, 0, 1)));
        let o = handle(&mut f, &iface());
        assert_eq!(
            o,
            Outcome {
                reply: true,
                learned: Some((hip, host))
            }
        );
        assert_eq!(&f[0..6], &host.0, "unicast back to the asker");
        let r = Repr::parse(&f[14..]).unwrap();
        assert_eq!(
            (r.op, r.sender_mac, r.sender_ip, r.target_ip),
            (OP_REPLY, iface().mac, iface().addr, hip)
        );
    }

    #[test]
    fn ignores_arp_for_other_addresses_and_garbage() {
        let mut f = [0u8; FRAME_LEN];
        let other = Interface {
            addr: Ipv4Addr::new(10, 1, 0, 20),
            mac: Mac([2, 0, 0, 0, 1, 0x20]),
            ..iface()
        };
        assert!(request(&mut f, &other, Ipv4Addr::new(10, 1, 0, 30)));
        assert_eq!(handle(&mut f, &iface()), Outcome::default());
        assert_eq!(handle(&mut [0u8; 20], &iface()), Outcome::default());
        let off_link = Interface {
            addr: Ipv4Addr::new(172, 16, 0, 9),
            ..other
        };
        assert!(request(&mut f, &off_link, iface().addr));
        assert_eq!(
            handle(&mut f, &iface()),
            Outcome::default(),
            "sender not on our subnet"
        );
    }
}
