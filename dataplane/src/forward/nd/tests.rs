use super::*;

const GW_MAC: Mac = Mac([2, 0, 0, 0, 1, 1]);
const HOST_MAC: Mac = Mac([2, 0, 0, 0, 1, 0x10]);

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn gw() -> Interface {
    Interface {
        port: 0,
        mac: GW_MAC,
        addr: "10.1.0.1".parse().unwrap(),
        prefix_len: 24,
        mtu: 1500,
        ipv6: "2001:db8:1::1/64".parse().ok(),
    }
}

/// Host 2001:db8:1::10 on the gateway's LAN, as an interface of its own to build frames.
fn host() -> Interface {
    Interface {
        mac: HOST_MAC,
        ipv6: "2001:db8:1::10/64".parse().ok(),
        ..gw()
    }
}

/// The host's NS for `target`, as `solicit` builds it (from its global address).
fn ns_for(target: Ipv6Addr) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    assert!(solicit(&mut f, &host(), target));
    f
}

/// An NA frame for `target` from the host to `dst`.
fn na(target: Ipv6Addr, dst: Ipv6Addr, flags: u8) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    let r = NdRepr::Advert {
        flags,
        target,
        target_mac: Some(HOST_MAC),
    };
    assert_eq!(
        emit_frame(&mut f, GW_MAC, HOST_MAC, target, dst, &r),
        Some(FRAME_LEN)
    );
    f
}

#[test]
fn a_solicitation_builds_the_exact_frame() {
    let f = ns_for(a("2001:db8:1::1"));
    // Ethernet: the solicited-node group's MAC, ours, IPv6.
    assert_eq!(
        &f[..14],
        &[0x33, 0x33, 0xff, 0, 0, 1, 2, 0, 0, 0, 1, 0x10, 0x86, 0xdd]
    );
    // IPv6: payload 32, ICMPv6, hop limit 255, from our global address to ff02::1:ff00:1.
    assert_eq!(&f[14..22], &[0x60, 0, 0, 0, 0, 32, 58, 255]);
    assert_eq!(&f[22..38], &a("2001:db8:1::10").octets());
    assert_eq!(&f[38..54], &a("ff02::1:ff00:1").octets());
    // The checksum computed independently (Python, RFC 8200 pseudo-header): 0x1b09.
    assert_eq!(&f[54..58], &[135, 0, 0x1b, 0x09]);
    assert_eq!(&f[62..78], &a("2001:db8:1::1").octets());
    assert_eq!(&f[78..86], &[1, 1, 2, 0, 0, 0, 1, 0x10]);
    // Off the global subnet: from the link-local address.
    let g = ns_for(a("2001:db8:9::1"));
    assert_eq!(&g[22..38], &host().link_local().octets());
}

#[test]
fn answers_a_solicitation_for_our_address_and_learns_the_asker() {
    let mut out = [0u8; FRAME_LEN];
    let o = handle(&ns_for(a("2001:db8:1::1")), &gw(), &mut out);
    assert_eq!(
        o,
        Outcome {
            seen: Seen::Solicitation,
            reply: true,
            learned: Some((a("2001:db8:1::10"), HOST_MAC)),
        }
    );
    assert_eq!(
        &out[..14],
        &[2, 0, 0, 0, 1, 0x10, 2, 0, 0, 0, 1, 1, 0x86, 0xdd]
    );
    let p = ipv6::Packet::new_checked(&out[14..]).unwrap();
    assert_eq!(
        (p.src(), p.dst(), p.hop_limit(), p.next_header()),
        (a("2001:db8:1::1"), a("2001:db8:1::10"), 255, 58)
    );
    assert!(icmpv6::verify(&p.src(), &p.dst(), p.payload()));
    assert_eq!(
        NdRepr::parse(p.payload()),
        Ok(NdRepr::Advert {
            flags: icmpv6::NA_ROUTER | icmpv6::NA_SOLICITED | icmpv6::NA_OVERRIDE,
            target: a("2001:db8:1::1"),
            target_mac: Some(GW_MAC),
        })
    );
}

#[test]
fn answers_for_our_link_local_address() {
    let mut out = [0u8; FRAME_LEN];
    let ll = gw().link_local();
    assert_eq!(ll, a("fe80::ff:fe00:101"));
    let o = handle(&ns_for(ll), &gw(), &mut out);
    assert!(o.reply, "{o:?}");
    let p = ipv6::Packet::new_checked(&out[14..]).unwrap();
    assert_eq!(p.src(), ll, "from the address asked about");
}

#[test]
fn invalid_messages_are_discarded() {
    let mut out = [0u8; FRAME_LEN];
    let ours = a("2001:db8:1::1");
    type Edit = fn(&mut [u8; FRAME_LEN]);
    let edits: [(&str, Edit); 5] = [
        ("hop limit 64", |f| f[21] = 64),
        ("checksum", |f| f[57] ^= 1),
        ("code 1", |f| f[55] = 1),
        ("zero-length option", |f| f[79] = 0),
        ("not ICMPv6", |f| f[20] = 17),
    ];
    for (why, edit) in edits {
        let mut f = ns_for(ours);
        edit(&mut f);
        assert_eq!(handle(&f, &gw(), &mut out), Outcome::default(), "{why}");
    }
    assert_eq!(handle(&[0u8; 20], &gw(), &mut out), Outcome::default());
    // A solicited advertisement to a group.
    let f = na(a("2001:db8:1::10"), ipv6::ALL_NODES, icmpv6::NA_SOLICITED);
    assert_eq!(handle(&f, &gw(), &mut out), Outcome::default());
}

#[test]
fn solicitations_for_others_teach_nothing() {
    let mut out = [0u8; FRAME_LEN];
    let o = handle(&ns_for(a("2001:db8:1::20")), &gw(), &mut out);
    assert_eq!(
        o,
        Outcome {
            seen: Seen::Solicitation,
            reply: false,
            learned: None
        }
    );
    // An asker off our subnet is answered but not learned.
    let stranger = Interface {
        ipv6: "2001:db8:9::10/64".parse().ok(),
        ..host()
    };
    let mut f = [0u8; FRAME_LEN];
    assert!(solicit(&mut f, &stranger, a("fe80::ff:fe00:101")));
    let o = handle(&f, &gw(), &mut out);
    assert_eq!((o.reply, o.learned), (true, None));
}

#[test]
fn a_duplicate_address_probe_is_answered_to_all_nodes() {
    let mut f = [0u8; FRAME_LEN];
    let target = a("2001:db8:1::1");
    let group = ipv6::solicited_node(&target);
    let probe = NdRepr::Solicit {
        target,
        source_mac: None,
    };
    let mac = ipv6::multicast_mac(&group);
    let n = emit_frame(&mut f, mac, HOST_MAC, Ipv6Addr::UNSPECIFIED, group, &probe);
    assert_eq!(n, Some(14 + 40 + 24), "no option");
    let mut short = f[..14 + 40 + 24].to_vec();
    let mut out = [0u8; FRAME_LEN];
    let o = handle(&short, &gw(), &mut out);
    assert_eq!(
        (o.seen, o.reply, o.learned),
        (Seen::Solicitation, true, None)
    );
    assert_eq!(&out[..6], &[0x33, 0x33, 0, 0, 0, 1]);
    let p = ipv6::Packet::new_checked(&out[14..]).unwrap();
    assert_eq!(p.dst(), ipv6::ALL_NODES);
    assert_eq!(
        p.payload()[4],
        icmpv6::NA_ROUTER | icmpv6::NA_OVERRIDE,
        "not solicited"
    );
    // A probe to another group is invalid (its checksum made right for it).
    short[38..54].copy_from_slice(&ipv6::ALL_NODES.octets());
    icmpv6::fill_checksum(&Ipv6Addr::UNSPECIFIED, &ipv6::ALL_NODES, &mut short[54..]);
    assert_eq!(handle(&short, &gw(), &mut out), Outcome::default());
}

#[test]
fn advertisements_to_us_teach_their_target() {
    let mut out = [0u8; FRAME_LEN];
    let host_a = a("2001:db8:1::10");
    let f = na(host_a, a("2001:db8:1::1"), icmpv6::NA_SOLICITED);
    assert_eq!(
        handle(&f, &gw(), &mut out),
        Outcome {
            seen: Seen::Advertisement,
            reply: false,
            learned: Some((host_a, HOST_MAC)),
        }
    );
    // Unsolicited, to all nodes: seen, not learned; nor a target off our subnet.
    let f = na(host_a, ipv6::ALL_NODES, icmpv6::NA_OVERRIDE);
    assert_eq!(handle(&f, &gw(), &mut out).learned, None);
    let f = na(
        a("2001:db8:9::10"),
        a("2001:db8:1::1"),
        icmpv6::NA_SOLICITED,
    );
    assert_eq!(handle(&f, &gw(), &mut out).learned, None);
}
