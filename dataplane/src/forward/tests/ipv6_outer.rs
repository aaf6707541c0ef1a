//! Tunnels with IPv6 endpoints (RFC 4303 tunnel mode in IPv6, next header 50): IPv4 and IPv6
//! from host to host both ways between gw1 (2001:db8:ffff::1) and gw2 (2001:db8:ffff::2), the
//! outer header's fields, one frame opened by the independent `aes-gcm` crate, what is too
//! big, and an IPv4-outer tunnel next to the IPv6 one.

use super::ipv6_tunnel::{a_to_b6, after_hops, checksum6_valid, with_ipv6};
use super::*;
use crate::wire::ipv6;
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, KeyInit};

const WAN6: [&str; 2] = ["2001:db8:ffff::1", "2001:db8:ffff::2"];

/// The gateways of `gateway` with IPv6 on their LANs and WAN, st0.0 between their WAN IPv6
/// addresses (the peer's a static neighbor), and the far side's IPv4 and IPv6 routed into it.
fn outer6(first: bool) -> impl FnOnce(&mut serde_json::Value) {
    move |v| {
        with_ipv6(first)(v);
        let (me, peer, peer_mac) = if first {
            (WAN6[0], WAN6[1], GW2_WAN)
        } else {
            (WAN6[1], WAN6[0], GW1_WAN)
        };
        v["interfaces"][1]["address6"] = format!("{me}/64").into();
        v["tunnels"][0]["local"] = me.into();
        v["tunnels"][0]["remote"] = peer.into();
        let n = serde_json::json!({"address": peer, "mac": peer_mac.to_string()});
        v["neighbors"].as_array_mut().unwrap().push(n);
    }
}

fn gateway_outer6(first: bool) -> Gateway {
    gateway(first, false, outer6(first))
}

/// The outer IPv6 header of gw1's frame to gw2, checked field by field.
fn check_outer(wire: &[u8], tc: u8) {
    assert_eq!(&wire[0..6], &GW2_WAN.0);
    assert_eq!(&wire[6..12], &GW1_WAN.0);
    assert_eq!(&wire[12..14], &[0x86, 0xdd]);
    let h = &wire[14..];
    assert_eq!(
        &h[0..4],
        &[0x60 | tc >> 4, tc << 4, 0, 0],
        "version 6, traffic class"
    );
    assert_eq!(usize::from(u16::from_be_bytes([h[4], h[5]])), h.len() - 40);
    assert_eq!(
        (h[6], h[7]),
        (ipv6::NEXT_ESP, 64),
        "next header 50, hop limit = ttl"
    );
    assert_eq!(&h[8..24], &a6(WAN6[0]).octets());
    assert_eq!(&h[24..40], &a6(WAN6[1]).octets());
}

fn a6(s: &str) -> std::net::Ipv6Addr {
    s.parse().unwrap()
}

/// Opens the ESP in gw1's frame with the `aes-gcm` crate under gw1's outbound SA (AES-128-GCM,
/// key K1, ESN): the sequence number and the inner packet, its trailer checked.
fn oracle_open(frame: &[u8], next_header: u8) -> (u64, Vec<u8>) {
    let km = hex::decode(K1).unwrap();
    let (key, salt) = km.split_at(16);
    let esp = &frame[14 + 40..];
    assert_eq!(&esp[0..4], &0x1001u32.to_be_bytes(), "gw1's outbound SPI");
    let iv: [u8; 8] = esp[8..16].try_into().unwrap();
    let seq = u64::from_be_bytes(iv);
    let mut aad = esp[0..4].to_vec();
    aad.extend_from_slice(&seq.to_be_bytes());
    let nonce: Vec<u8> = salt.iter().chain(&iv).copied().collect();
    let (ct, tag) = esp[16..].split_at(esp.len() - 16 - 16);
    let mut pt = ct.to_vec();
    Aes128Gcm::new_from_slice(key)
        .unwrap()
        .decrypt_in_place_detached(nonce[..].into(), &aad, &mut pt, tag.into())
        .expect("the ICV verifies under the oracle");
    let nh = pt.pop().unwrap();
    let pad = pt.pop().unwrap();
    assert_eq!(nh, next_header);
    let inner_len = pt.len() - usize::from(pad);
    assert_eq!(&pt[inner_len..], &(1..=pad).collect::<Vec<u8>>()[..]);
    pt.truncate(inner_len);
    (seq, pt)
}

/// `f` (a frame holding IPv4) with the TTL it has after `hops` routers, checksum fixed.
fn after_ttl(f: &[u8], hops: u8) -> Vec<u8> {
    let mut f = f.to_vec();
    f[14 + 8] -= hops;
    f[24..26].copy_from_slice(&[0, 0]);
    let c = !checksum::sum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f
}

#[test]
fn ipv4_and_ipv6_in_ipv6_host_to_host_both_ways() {
    let mut gw1 = gateway_outer6(true);
    let mut gw2 = gateway_outer6(false);

    // IPv4 a -> b: next header 4 inside, DSCP and ECN in the outer traffic class.
    let sent = a_to_b(64, 100);
    let (v, wire) = run(&mut gw1, 0, &sent);
    assert_eq!(v, Verdict::Tx(1));
    check_outer(&wire, sent[15]);
    let (seq, inner) = oracle_open(&wire, ipv4::PROTO_IPV4);
    assert_eq!(seq, 1);
    assert_eq!(&inner[..], &after_ttl(&sent, 1)[14..]);
    let (v, got) = run(&mut gw2, 1, &wire);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(&got[0..6], &HOST_B.0);
    assert_eq!(&got[14..], &after_ttl(&sent, 2)[14..], "byte for byte");

    // IPv6 a -> b: next header 41 inside.
    let sent = a_to_b6(64, 100);
    let (v, wire) = run(&mut gw1, 0, &sent);
    assert_eq!(v, Verdict::Tx(1));
    check_outer(&wire, 0xb9);
    let (seq, inner) = oracle_open(&wire, ipv4::PROTO_IPV6);
    assert_eq!(seq, 2);
    assert_eq!(&inner[..], &after_hops(&sent, 1)[14..]);
    let (v, got) = run(&mut gw2, 1, &wire);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(&got[12..14], &[0x86, 0xdd]);
    assert_eq!(&got[14..], &after_hops(&sent, 2)[14..], "byte for byte");
    assert_eq!(gw2.stats.get(Stat::DecryptedPackets), 2);

    // And back, both families.
    let back4 = frame(
        GW2_LAN,
        HOST_B,
        "10.2.0.10",
        "10.1.0.10",
        64,
        ipv4::PROTO_UDP,
        &udp_payload(7),
    );
    let (v, wire) = run(&mut gw2, 0, &back4);
    assert_eq!(v, Verdict::Tx(1));
    assert_eq!(&wire[12..14], &[0x86, 0xdd]);
    let (v, got) = run(&mut gw1, 1, &wire);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(&got[14..], &after_ttl(&back4, 2)[14..]);
    let back6 = super::ipv6::frame6(
        GW2_LAN,
        "2001:db8:2::10",
        "2001:db8:1::10",
        64,
        ipv6::NEXT_UDP,
        &udp_payload(3),
    );
    let (v, wire) = run(&mut gw2, 0, &back6);
    assert_eq!(v, Verdict::Tx(1));
    let (v, got) = run(&mut gw1, 1, &wire);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(&got[14..], &after_hops(&back6, 2)[14..]);
    assert_eq!(gw1.stats.get(Stat::DecryptedPackets), 2);
}

/// ESP to us in IPv6 after destination options is found; ESP in IPv6 under an SPI of an
/// IPv4-outer tunnel is not taken.
#[test]
fn extension_headers_are_skipped_and_families_kept_apart() {
    let mut gw1 = gateway_outer6(true);
    let mut gw2 = gateway_outer6(false);
    let (_, wire) = run(&mut gw1, 0, &a_to_b(64, 20));
    // Destination options (8 bytes of padding) between the header and ESP.
    let mut opts = wire[..14 + 40].to_vec();
    opts[14 + 6] = ipv6::NEXT_DEST_OPTS;
    opts.extend_from_slice(&[ipv6::NEXT_ESP, 0, 1, 4, 0, 0, 0, 0]);
    opts.extend_from_slice(&wire[14 + 40..]);
    let plen = (opts.len() - 14 - 40) as u16;
    opts[14 + 4..14 + 6].copy_from_slice(&plen.to_be_bytes());
    let (v, _) = run(&mut gw2, 1, &opts);
    assert_eq!(v, Verdict::Tx(0));

    // gw2's IPv4-outer gateway: the same SPI arrives in IPv6 and is refused.
    let mut gw2v4 = gateway(false, false, |v| {
        with_ipv6(false)(v);
        v["interfaces"][1]["address6"] = format!("{}/64", WAN6[1]).into();
    });
    let (_, wire) = run(&mut gw1, 0, &a_to_b(64, 20));
    assert_eq!(run(&mut gw2v4, 1, &wire).0, Verdict::Drop(Stat::InvalidSpi));
}

#[test]
fn too_big_for_the_ipv6_tunnel() {
    let mut gw1 = gateway_outer6(true);
    // 1500 less outer IPv6 40, ESP 8 + IV 8, ICV 16, trailer 2, to 4 bytes: 20 below IPv4's.
    let big = a_to_b6(64, 1426 - 48 + 1);
    let (v, _) = run(&mut gw1, 0, &big);
    assert_eq!(v, Verdict::Punt(Punt::TooBig6 { mtu: 1426 }));
    let fits = a_to_b6(64, 1426 - 48);
    let (v, wire) = run(&mut gw1, 0, &fits);
    assert_eq!(v, Verdict::Tx(1));
    assert!(wire.len() <= 14 + 1500);
    // IPv4 with DF: told the same MTU; without: cut by the main lcore to fit it.
    let mut big4 = a_to_b(64, 1426 - 28 + 1);
    big4[14 + 6] |= 0x40;
    let big4 = after_ttl(&big4, 0);
    assert_eq!(
        run(&mut gw1, 0, &big4).0,
        Verdict::Punt(Punt::TooBig { mtu: 1426 })
    );
    let mut nodf = big4.clone();
    nodf[14 + 6] &= !0x40;
    let nodf = after_ttl(&nodf, 0);
    assert_eq!(
        run(&mut gw1, 0, &nodf).0,
        Verdict::Punt(Punt::Fragment { mtu: 1426 })
    );
}

/// st0.0 in IPv6 and st0.1 (10.2.0.0/25) in IPv4, side by side.
#[test]
fn an_ipv6_outer_tunnel_next_to_an_ipv4_one() {
    let g = |first| {
        gateway(first, false, move |v| {
            outer6(first)(v);
            second_tunnel(first)(v);
        })
    };
    let (mut gw1, mut gw2) = (g(true), g(false));
    // 10.2.0.10 is in st0.1's /25: IPv4 outside.
    let (v, wire) = run(&mut gw1, 0, &a_to_b(64, 30));
    assert_eq!(v, Verdict::Tx(1));
    assert_eq!(&wire[12..14], &[0x08, 0x00]);
    assert_eq!(run(&mut gw2, 1, &wire).0, Verdict::Tx(0));
    // IPv6 goes through st0.0: IPv6 outside.
    let (v, wire) = run(&mut gw1, 0, &a_to_b6(64, 30));
    assert_eq!(v, Verdict::Tx(1));
    check_outer(&wire, 0xb9);
    assert_eq!(run(&mut gw2, 1, &wire).0, Verdict::Tx(0));
    assert_eq!(gw2.stats.get(Stat::DecryptedPackets), 2);
}

/// With two workers, ESP in IPv6 that lands on the worker not owning its SA is handed to the
/// owner and resumes there (`Resume::EspInput` tells IPv6 apart by its version).
#[test]
fn esp_in_ipv6_is_handed_to_the_owner_of_its_sa() {
    let mut gw1 = gateway_workers(true, false, 2, outer6(true));
    let mut gw2 = gateway_workers(false, false, 2, outer6(false));
    let mut handed = 0;
    for w in 0..2 {
        // gw1 encrypts on the owner of st0.0 (the other hands off, spending nothing).
        let sent = a_to_b6(64, 40 + w);
        let wire = (0..2)
            .find_map(|i| {
                let (v, wire) = run(&mut gw1[i], 0, &sent);
                (v == Verdict::Tx(1)).then_some(wire)
            })
            .expect("one worker owns st0.0");
        // The ESP lands on gw2's worker `w`.
        let (v, got) = match run(&mut gw2[w], 1, &wire) {
            (Verdict::Handoff { worker, .. }, held) => {
                handed += 1;
                let mut e = VecBuf::new(&held);
                let v = resume(&mut gw2[usize::from(worker)], &mut e, Resume::EspInput);
                (v, e.data().to_vec())
            }
            other => other,
        };
        assert_eq!(v, Verdict::Tx(0), "worker {w}");
        assert_eq!(&got[14..], &after_hops(&sent, 2)[14..]);
    }
    assert_eq!(handed, 1, "one of the two workers is not the owner");
}

/// ESP in UDP over IPv6 (NAT-T kept over IPv6, as Linux and strongSwan do): next header 17,
/// ports 4500, the UDP length, a checksum that verifies (IPv6 forbids 0; it covers the
/// ciphertext), the ESP after it opened by the oracle; the peer takes it in on its NAT-T
/// port, both families inside, and sends its own back the same way.
#[test]
fn esp_in_udp_over_ipv6() {
    let mut gw1 = gateway(true, true, outer6(true));
    let mut gw2 = gateway(false, true, outer6(false));
    for (seq, (sent, next)) in [
        (a_to_b(64, 100), ipv4::PROTO_IPV4),
        (a_to_b6(64, 101), ipv4::PROTO_IPV6),
    ]
    .into_iter()
    .enumerate()
    {
        let (v, wire) = run(&mut gw1, 0, &sent);
        assert_eq!(v, Verdict::Tx(1));
        let h = &wire[14..];
        let dgram = &h[40..];
        assert_eq!((h[0] >> 4, h[6]), (6, ipv6::NEXT_UDP));
        assert_eq!(usize::from(u16::from_be_bytes([h[4], h[5]])), dgram.len());
        assert_eq!(&dgram[0..4], &[0x11, 0x94, 0x11, 0x94], "4500 -> 4500");
        assert_eq!(
            usize::from(u16::from_be_bytes([dgram[4], dgram[5]])),
            dgram.len()
        );
        assert_ne!(&dgram[6..8], &[0, 0]);
        assert!(checksum6_valid(WAN6[0], WAN6[1], ipv6::NEXT_UDP, dgram));
        // The ESP behind the UDP header is gw1's as the oracle opens it.
        let mut raw = wire[..14 + 40].to_vec();
        raw[14 + 6] = ipv6::NEXT_ESP;
        raw.extend_from_slice(&dgram[8..]);
        let after = |hops| match next {
            ipv4::PROTO_IPV4 => after_ttl(&sent, hops),
            _ => after_hops(&sent, hops),
        };
        let (n, inner) = oracle_open(&raw, next);
        assert_eq!(n, seq as u64 + 1);
        assert_eq!(&inner[..], &after(1)[14..]);
        let (v, got) = run(&mut gw2, 1, &wire);
        assert_eq!(v, Verdict::Tx(0), "taken in on the NAT-T port");
        assert_eq!(&got[14..], &after(2)[14..], "byte for byte");
    }
    assert_eq!(gw2.stats.get(Stat::DecryptedPackets), 2);
    // A UDP checksum that does not verify, or 0, which IPv6 forbids: dropped before the SA.
    let (_, wire) = run(&mut gw1, 0, &a_to_b(64, 30));
    let at = 14 + 40 + 6;
    for c in [wire[at] ^ 1, 0] {
        let mut bad = wire.clone();
        bad[at] = c;
        if c == 0 {
            bad[at + 1] = 0;
        }
        assert_eq!(
            run(&mut gw2, 1, &bad).0,
            Verdict::Drop(Stat::BadUdpChecksum)
        );
    }
    assert_eq!(
        run(&mut gw2, 1, &wire).0,
        Verdict::Tx(0),
        "the frame itself was good"
    );
    // ESP in UDP to a gateway whose tunnel is raw: 4500 is no NAT-T port of its, so the
    // datagram is not ESP to it (the gateway's own stack gets it).
    let raw_gw2 = &mut gateway_outer6(false);
    let (_, wire) = run(&mut gw1, 0, &a_to_b(64, 20));
    assert_eq!(run(raw_gw2, 1, &wire).0, Verdict::Punt(Punt::Local));
    // And back from gw2.
    let back = frame(
        GW2_LAN,
        HOST_B,
        "10.2.0.10",
        "10.1.0.10",
        64,
        ipv4::PROTO_UDP,
        &udp_payload(7),
    );
    let (v, wire) = run(&mut gw2, 0, &back);
    assert_eq!(v, Verdict::Tx(1));
    assert!(checksum6_valid(
        WAN6[1],
        WAN6[0],
        ipv6::NEXT_UDP,
        &wire[14 + 40..]
    ));
    let (v, got) = run(&mut gw1, 1, &wire);
    assert_eq!(v, Verdict::Tx(0));
    assert_eq!(&got[14..], &after_ttl(&back, 2)[14..]);
}

/// ESP to us in IPv6 fragments (its source cut it, as IPv6 allows only the source to): each
/// fragment goes to the main lcore for reassembly, and the datagram it puts back together,
/// handed to the worker as the main lcore does (`output_ip`), is decrypted like any other;
/// raw ESP and ESP in UDP.
#[test]
fn esp_in_ipv6_fragments_is_reassembled_then_decrypted() {
    use crate::reassembly::{tests6::cut, Reassembler};
    for udp in [false, true] {
        let mut gw1 = gateway(true, udp, outer6(true));
        let mut gw2 = gateway(false, udp, outer6(false));
        let sent = a_to_b(64, 900);
        let (_, wire) = run(&mut gw1, 0, &sent);
        let mut pieces = cut(&wire[14..], 40, 6, 256, 77);
        assert!(pieces.len() >= 4);
        pieces.reverse();
        let mut r = Reassembler::default();
        let mut whole = None;
        for p in &pieces {
            let f = [&wire[..14], &p[..]].concat();
            let (v, punted) = run(&mut gw2, 1, &f);
            assert_eq!(v, Verdict::Punt(Punt::Reassemble), "udp {udp}");
            whole = whole.or(r.add(&punted[14..], std::time::Instant::now()));
        }
        let whole = whole.expect("put back together");
        assert_eq!(whole, wire[14..], "udp {udp}");
        let mut b = VecBuf::new(&whole);
        let mut v = [gw2.output_ip(&mut b)];
        let mut bufs = [b];
        gw2.complete(&mut bufs, &mut v);
        assert_eq!(v[0], Verdict::Tx(0), "udp {udp}");
        assert_eq!(&bufs[0].data()[14..], &after_ttl(&sent, 2)[14..]);
    }
}
