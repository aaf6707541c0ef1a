//! ESP encap/decap checked byte for byte against the `aes-gcm` crate, an implementation
//! independent of the one under test (ring).

use super::outer::TunnelEncap;
use super::replay::{ReplayError, ReplayWindow};
use super::*;
use crate::esp::crypto::{Algorithm, Backend};
use crate::packet::{PacketBuf, VecBuf};
use crate::sa::*;
use crate::testkit::{counters, inner_packet, keymat, tunnel};
use crate::wire::{checksum, ipv4};
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, Aes256Gcm, KeyInit};
use proptest::prelude::*;
use std::net::Ipv4Addr;

pub(super) fn outbound(alg: Algorithm, esn: bool, t: TunnelEncap) -> OutboundSa {
    outbound_from(alg, esn, t, 1)
}

/// An outbound SA whose first packet carries `first_seq`.
fn outbound_from(alg: Algorithm, esn: bool, t: TunnelEncap, first_seq: u64) -> OutboundSa {
    let mut p = OutboundParams::new(0x1001, esn, t);
    p.first_seq = first_seq;
    OutboundSa::new(p, &keymat(alg, 0), counters(), &Backend::Ring).unwrap()
}

pub(super) fn inbound(alg: Algorithm, esn: bool, udp: bool, window: u32) -> InboundSa {
    let p = InboundParams {
        tunnel: 0,
        tcp_mss: 0,
        spi: 0x1001,
        esn,
        local: Ipv4Addr::new(192, 0, 2, 2),
        udp_encap: udp,
        selectors: Selectors::default(),
        soft: Default::default(),
        hard: Default::default(),
    };
    let w = ReplayWindow::new(window, esn);
    InboundSa::new(p, &keymat(alg, 0), w, counters(), &Backend::Ring).unwrap()
}

/// The oracle: decrypts `ct_and_tag` with aes-gcm.
pub(super) fn oracle_open(
    alg: Algorithm,
    nonce: &[u8],
    aad: &[u8],
    ct_and_tag: &[u8],
) -> Option<Vec<u8>> {
    let km = keymat(alg, 0);
    let (ct, tag) = ct_and_tag.split_at(ct_and_tag.len() - 16);
    let mut buf = ct.to_vec();
    let ok = match alg {
        Algorithm::Aes128Gcm => Aes128Gcm::new_from_slice(km.key())
            .ok()?
            .decrypt_in_place_detached(nonce.into(), aad, &mut buf, tag.into()),
        Algorithm::Aes256Gcm => Aes256Gcm::new_from_slice(km.key())
            .ok()?
            .decrypt_in_place_detached(nonce.into(), aad, &mut buf, tag.into()),
    };
    ok.ok().map(|_| buf)
}

/// The oracle: an ESP payload (inner || trailer bytes as given) sealed with aes-gcm.
fn oracle_esp(alg: Algorithm, spi: u32, seq: u64, esn: bool, plaintext: &[u8]) -> Vec<u8> {
    let km = keymat(alg, 0);
    let iv = seq.to_be_bytes();
    let mut nonce = km.salt().to_vec();
    nonce.extend_from_slice(&iv);
    let mut aad = spi.to_be_bytes().to_vec();
    if esn {
        aad.extend_from_slice(&seq.to_be_bytes());
    } else {
        aad.extend_from_slice(&(seq as u32).to_be_bytes());
    }
    let mut buf = plaintext.to_vec();
    let tag = match alg {
        Algorithm::Aes128Gcm => Aes128Gcm::new_from_slice(km.key())
            .unwrap()
            .encrypt_in_place_detached(nonce[..].into(), &aad, &mut buf)
            .unwrap(),
        Algorithm::Aes256Gcm => Aes256Gcm::new_from_slice(km.key())
            .unwrap()
            .encrypt_in_place_detached(nonce[..].into(), &aad, &mut buf)
            .unwrap(),
    };
    let mut esp = spi.to_be_bytes().to_vec();
    esp.extend_from_slice(&(seq as u32).to_be_bytes());
    esp.extend_from_slice(&iv);
    esp.extend_from_slice(&buf);
    esp.extend_from_slice(&tag);
    esp
}

/// inner || 1, 2, ... || pad length || next header.
pub(super) fn trailer(inner: &[u8], next_header: u8) -> Vec<u8> {
    let pad = crate::wire::esp::pad_len(inner.len());
    let mut v = inner.to_vec();
    v.extend((1..=pad as u8).collect::<Vec<_>>());
    v.push(pad as u8);
    v.push(next_header);
    v
}

/// An outer IPv4 (+ UDP) packet around `esp`, as a peer would send it to 192.0.2.2.
fn outer_packet(esp: &[u8], udp: bool) -> Vec<u8> {
    let mut v = Vec::new();
    let udp_len = if udp { 8 } else { 0 };
    let mut h = [0u8; 20];
    ipv4::Repr {
        tos: 0,
        ident: 1,
        dont_frag: false,
        ttl: 64,
        protocol: if udp {
            ipv4::PROTO_UDP
        } else {
            ipv4::PROTO_ESP
        },
        src: Ipv4Addr::new(192, 0, 2, 1),
        dst: Ipv4Addr::new(192, 0, 2, 2),
        payload_len: udp_len + esp.len(),
    }
    .emit(&mut h);
    v.extend_from_slice(&h);
    if udp {
        v.extend_from_slice(&4500u16.to_be_bytes());
        v.extend_from_slice(&4500u16.to_be_bytes());
        v.extend_from_slice(&((8 + esp.len()) as u16).to_be_bytes());
        v.extend_from_slice(&[0, 0]);
    }
    v.extend_from_slice(esp);
    v
}

#[test]
fn encap_layout_and_ciphertext_match_the_oracle() {
    for alg in [Algorithm::Aes128Gcm, Algorithm::Aes256Gcm] {
        for len in [20usize, 21, 22, 23, 64, 1400] {
            let inner = inner_packet(len, 0xb9, true);
            let mut sa = outbound(alg, false, tunnel(None));
            let mut buf = VecBuf::new(&inner);
            encap(&mut sa, &mut buf).unwrap();
            let out = buf.data();
            let pad = crate::wire::esp::pad_len(len);
            assert_eq!(out.len(), 20 + 8 + 8 + len + pad + 2 + 16, "{alg:?} {len}");
            // Outer IPv4: DSCP+ECN and DF copied, TTL 64, protocol 50, our addresses.
            assert_eq!(&out[0..2], &[0x45, 0xb9]);
            assert_eq!(usize::from(u16::from_be_bytes([out[2], out[3]])), out.len());
            assert_eq!(&out[4..10], &[0, 1, 0x40, 0, 64, 50]);
            assert_eq!(checksum::sum(&out[..20]), 0xffff);
            assert_eq!(&out[12..20], &[192, 0, 2, 1, 192, 0, 2, 2]);
            // ESP: SPI, sequence 1, IV = 64-bit sequence.
            assert_eq!(
                &out[20..36],
                &[0, 0, 0x10, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]
            );
            let mut nonce = keymat(alg, 0).salt().to_vec();
            nonce.extend_from_slice(&out[28..36]);
            let pt = oracle_open(alg, &nonce, &out[20..28], &out[36..])
                .expect("oracle verifies the ICV");
            assert_eq!(pt, trailer(&inner, 4));
            assert_eq!(
                (sa.counters.packets.get(), sa.counters.bytes.get()),
                (1, len as u64)
            );
        }
    }
}

#[test]
fn natt_encap_has_udp_4500_with_zero_checksum() {
    let inner = inner_packet(100, 0, false);
    let mut sa = outbound(Algorithm::Aes128Gcm, false, tunnel(Some((4500, 4501))));
    let mut buf = VecBuf::new(&inner);
    encap(&mut sa, &mut buf).unwrap();
    let out = buf.data();
    assert_eq!(out[9], ipv4::PROTO_UDP);
    assert_eq!(&out[6..8], &[0, 0], "DF copied (clear)");
    let udp_len = u16::from_be_bytes([out[24], out[25]]) as usize;
    assert_eq!(&out[20..24], &[0x11, 0x94, 0x11, 0x95]);
    assert_eq!(udp_len, out.len() - 20);
    assert_eq!(&out[26..28], &[0, 0]);
    assert_eq!(&out[28..32], &0x1001u32.to_be_bytes());
}

#[test]
fn esn_uses_high_bits_in_aad_but_not_on_the_wire() {
    let inner = inner_packet(60, 0, false);
    let mut sa = outbound_from(Algorithm::Aes256Gcm, true, tunnel(None), 1 << 32);
    let mut buf = VecBuf::new(&inner);
    encap(&mut sa, &mut buf).unwrap();
    let out = buf.data();
    let seq: u64 = 1 << 32;
    assert_eq!(&out[24..28], &[0, 0, 0, 0], "low 32 bits on the wire");
    assert_eq!(
        &out[28..36],
        &seq.to_be_bytes(),
        "IV is the full 64-bit sequence"
    );
    let mut aad = 0x1001u32.to_be_bytes().to_vec();
    aad.extend_from_slice(&seq.to_be_bytes());
    let mut nonce = keymat(Algorithm::Aes256Gcm, 0).salt().to_vec();
    nonce.extend_from_slice(&out[28..36]);
    assert!(oracle_open(Algorithm::Aes256Gcm, &nonce, &aad, &out[36..]).is_some());
    assert!(
        oracle_open(Algorithm::Aes256Gcm, &nonce, &out[20..28], &out[36..]).is_none(),
        "8-byte AAD must fail"
    );
}

/// `prepare` takes an MTU and room for a link header: an outer packet of exactly the MTU
/// passes, one byte over fails, as does a byte too little headroom, and neither failure
/// spends a sequence number or touches the buffer.
#[test]
fn prepare_checks_mtu_and_link_room_before_the_sequence_number() {
    let inner = inner_packet(40, 0, false);
    let mut sa = outbound(Algorithm::Aes128Gcm, false, tunnel(None));
    let outer = super::encap::outer_len(&sa, inner.len());
    let front = super::encap::overhead_front(&sa);
    let mut buf = VecBuf::new(&inner);
    assert_eq!(
        super::encap::prepare(&mut sa, &mut buf, 14, outer - 1),
        Err(EncapError::ExceedsMtu)
    );
    let mut tight = VecBuf::with_room(front + 13, &inner, 100);
    assert_eq!(
        super::encap::prepare(&mut sa, &mut tight, 14, outer),
        Err(EncapError::NoRoom)
    );
    assert_eq!((buf.data(), tight.data()), (&inner[..], &inner[..]));
    assert_eq!(sa.last_seq(), 0, "no sequence number spent");
    let mut fits = VecBuf::with_room(front + 14, &inner, 100);
    let p = super::encap::prepare(&mut sa, &mut fits, 14, outer).unwrap();
    assert_eq!((p.seq, usize::from(p.offset)), (1, 14 + front));
    assert_eq!(fits.len(), 14 + outer, "the link header's room is in front");
}

/// Every DSCP and DF policy, against an inner packet without DF and one with DF, MF and a
/// fragment offset: the outer flags byte holds DF alone (or nothing), the offset is zero, ECN
/// is copied, and the outer header's checksum verifies.
#[test]
fn dscp_and_df_policies() {
    let plain = inner_packet(40, 0xb9, false);
    let mut fragment = inner_packet(40, 0xb9, true);
    fragment[6] |= 0x20 | 0x05; // MF and offset bits beside DF
    fragment[7] = 0x55;
    for (inner, inner_df) in [(plain, 0), (fragment, 0x40)] {
        for (dscp, want_tos) in [
            (channel::Dscp::Copy, 0xb9),
            (channel::Dscp::Set(46), (46 << 2) | 1),
        ] {
            for (df, want_flags) in [
                (channel::DfPolicy::Copy, inner_df),
                (channel::DfPolicy::Set, 0x40),
                (channel::DfPolicy::Clear, 0),
            ] {
                let mut t = tunnel(None);
                t.dscp = dscp;
                t.df = df;
                let mut sa = outbound(Algorithm::Aes128Gcm, false, t);
                let mut buf = VecBuf::new(&inner);
                encap(&mut sa, &mut buf).unwrap();
                let d = buf.data();
                let case = format!("{dscp:?} {df:?} inner DF {inner_df:#x}");
                assert_eq!((d[1], d[6], d[7]), (want_tos, want_flags, 0), "{case}");
                let outer = ipv4::Packet::new_checked(d).unwrap();
                assert!(outer.verify_checksum(), "{case}");
            }
        }
    }
}

#[test]
fn encap_without_room_or_sequence_numbers_changes_nothing() {
    let inner = inner_packet(40, 0, false);
    let mut sa = outbound(Algorithm::Aes128Gcm, false, tunnel(None));
    let mut buf = VecBuf::with_room(10, &inner, 100);
    assert_eq!(encap(&mut sa, &mut buf), Err(EncapError::NoRoom));
    assert_eq!(buf.data(), &inner[..]);
    assert_eq!(sa.last_seq(), 0, "no sequence number consumed");
    let mut sa = outbound_from(
        Algorithm::Aes128Gcm,
        false,
        tunnel(None),
        u64::from(u32::MAX),
    );
    let mut buf = VecBuf::new(&inner);
    assert_eq!(encap(&mut sa, &mut buf), Ok(()), "the last number is used");
    let mut buf = VecBuf::new(&inner);
    assert_eq!(encap(&mut sa, &mut buf), Err(EncapError::SeqExhausted));
    assert_eq!(buf.data(), &inner[..]);
    let mut buf = VecBuf::new(&[0x50; 40]);
    assert_eq!(encap(&mut sa, &mut buf), Err(EncapError::NotIp));
}

#[test]
fn decap_of_oracle_packets_raw_and_udp() {
    for (alg, esn, udp) in [
        (Algorithm::Aes128Gcm, false, false),
        (Algorithm::Aes256Gcm, true, true),
        (Algorithm::Aes256Gcm, false, true),
    ] {
        let inner = inner_packet(77, 0, false);
        let esp = oracle_esp(alg, 0x1001, 5, esn, &trailer(&inner, 4));
        let mut buf = VecBuf::new(&outer_packet(&esp, udp));
        let mut sa = inbound(alg, esn, udp, 64);
        decap(&mut sa, &mut buf, if udp { 28 } else { 20 }).unwrap();
        assert_eq!(buf.data(), &inner[..], "{alg:?} esn={esn} udp={udp}");
        assert_eq!(
            (sa.counters.packets.get(), sa.counters.bytes.get()),
            (1, 77)
        );
        assert_eq!(sa.replay.top(), 5);
    }
}

#[test]
fn decap_accepts_tfc_padding_after_the_inner_packet() {
    let inner = inner_packet(50, 0, false);
    let mut padded = inner.clone();
    padded.extend_from_slice(&[0xaa; 30]);
    let esp = oracle_esp(Algorithm::Aes128Gcm, 0x1001, 1, false, &trailer(&padded, 4));
    let mut buf = VecBuf::new(&outer_packet(&esp, false));
    decap(
        &mut inbound(Algorithm::Aes128Gcm, false, false, 64),
        &mut buf,
        20,
    )
    .unwrap();
    assert_eq!(buf.data(), &inner[..]);
}

#[test]
fn bad_trailers_dummies_and_bad_inner_packets() {
    let inner = inner_packet(64, 0, false); // pad 2
    let mut wrong_pad = trailer(&inner, 4);
    wrong_pad[64] = 9; // padding must be 1, 2
    let mut long_pad = trailer(&inner, 4);
    long_pad[66] = 200; // pad length beyond the payload
    let cases = [
        (wrong_pad, DecapError::BadTrailer),
        (long_pad, DecapError::BadTrailer),
        (trailer(&inner, 17), DecapError::BadTrailer),
        (trailer(&inner, 59), DecapError::Dummy),
        // IPv4 said to be IPv6, and IPv6 said to be IPv4.
        (trailer(&inner, 41), DecapError::BadInner),
        (trailer(&ipv6_packet(8), 4), DecapError::BadInner),
        (trailer(&ipv6_packet(8)[..47], 41), DecapError::BadInner),
        (trailer(&[0x45; 10], 4), DecapError::BadInner),
        (trailer(&[0x46; 24], 4), DecapError::BadInner), // IHL 6, total length 0x4646
    ];
    for (seq, (pt, want)) in cases.into_iter().enumerate() {
        let esp = oracle_esp(Algorithm::Aes128Gcm, 0x1001, seq as u64 + 1, false, &pt);
        let mut buf = VecBuf::new(&outer_packet(&esp, false));
        let mut sa = inbound(Algorithm::Aes128Gcm, false, false, 64);
        assert_eq!(decap(&mut sa, &mut buf, 20), Err(want));
        assert_eq!(
            sa.counters.packets.get(),
            0,
            "errors do not count toward the SA's lifetime"
        );
    }
}

/// An IPv6 packet (2001:db8:1::10 -> 2001:db8:2::10, no next header) with `n` bytes of
/// payload.
pub(super) fn ipv6_packet(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; 40];
    crate::wire::ipv6::Repr {
        traffic_class: 0x2e,
        next_header: 59,
        hop_limit: 9,
        src: "2001:db8:1::10".parse().unwrap(),
        dst: "2001:db8:2::10".parse().unwrap(),
        payload_len: n,
    }
    .emit((&mut v[..]).try_into().unwrap());
    v.extend((0..n).map(|i| i as u8));
    v
}

/// IPv6 in tunnel mode (next header 41) both ways against the oracle: sealed with the traffic
/// class's DSCP and ECN outside and DF set, opened to exactly the inner packet (TFC padding
/// after it cut), and refused by an SA whose selectors are IPv4 prefixes.
#[test]
fn ipv6_inner_packets_with_next_header_41() {
    let inner = ipv6_packet(30);
    let mut sa = outbound(Algorithm::Aes128Gcm, false, tunnel(None));
    let mut buf = VecBuf::new(&inner);
    encap(&mut sa, &mut buf).unwrap();
    let out = buf.data().to_vec();
    assert_eq!((out[1], out[6] & 0x40), (0x2e, 0x40));
    let pt = oracle_open(
        Algorithm::Aes128Gcm,
        &[&keymat(Algorithm::Aes128Gcm, 0).salt()[..], &out[28..36]].concat(),
        &[&out[20..24], &out[24..28]].concat(),
        &out[36..],
    )
    .unwrap();
    assert_eq!(pt, trailer(&inner, 41));

    let mut padded = inner.clone();
    padded.extend_from_slice(&[0; 6]); // TFC padding
    let esp = oracle_esp(
        Algorithm::Aes128Gcm,
        0x1001,
        1,
        false,
        &trailer(&padded, 41),
    );
    let mut buf = VecBuf::new(&outer_packet(&esp, false));
    let mut isa = inbound(Algorithm::Aes128Gcm, false, false, 64);
    decap(&mut isa, &mut buf, 20).unwrap();
    assert_eq!(buf.data(), &inner[..]);
    assert_eq!(isa.counters.packets.get(), 1);

    let mut buf = VecBuf::new(&outer_packet(&esp, false));
    let mut isa = inbound(Algorithm::Aes128Gcm, false, false, 64);
    isa.selectors = Some(Box::new(Selectors {
        local: Box::new(["10.2.0.0/16".parse().unwrap()]),
        ..Default::default()
    }));
    assert_eq!(decap(&mut isa, &mut buf, 20), Err(DecapError::TsCheckFail));
}

/// The ICV authenticates the inner packet as the peer sent it: a wrong inner header checksum
/// is the peer's, and is carried as sent (as VPP does), not checked again.
#[test]
fn an_authenticated_inner_packet_is_not_checksummed_again() {
    let mut inner = inner_packet(64, 0, false);
    inner[10] ^= 0xff;
    let esp = oracle_esp(Algorithm::Aes128Gcm, 0x1001, 1, false, &trailer(&inner, 4));
    let mut buf = VecBuf::new(&outer_packet(&esp, false));
    let mut sa = inbound(Algorithm::Aes128Gcm, false, false, 64);
    assert_eq!(decap(&mut sa, &mut buf, 20), Ok(()));
    assert_eq!(buf.data(), &inner[..]);
}

#[test]
fn tampering_fails_authentication_without_moving_the_window() {
    let inner = inner_packet(64, 0, false);
    let esp = oracle_esp(Algorithm::Aes128Gcm, 0x1001, 9, false, &trailer(&inner, 4));
    let good = outer_packet(&esp, false);
    let mut sa = inbound(Algorithm::Aes128Gcm, false, false, 64);
    // Every byte from the sequence number to the ICV is covered by AAD or ciphertext.
    for i in 24..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x01;
        let mut buf = VecBuf::new(&bad);
        let r = decap(&mut sa, &mut buf, 20);
        assert!(matches!(r, Err(DecapError::Auth)), "byte {i}: {r:?}");
    }
    assert_eq!(sa.replay.top(), 0, "window untouched by forgeries");
    assert_eq!(decap(&mut sa, &mut VecBuf::new(&good), 20), Ok(()));
    assert_eq!(
        decap(&mut sa, &mut VecBuf::new(&good), 20),
        Err(DecapError::Replay(ReplayError::Duplicate))
    );
    assert_eq!(sa.counters.packets.get(), 1);
}

#[test]
fn short_esp_is_a_bad_header() {
    let mut sa = inbound(Algorithm::Aes128Gcm, false, false, 64);
    let pkt = outer_packet(&[0, 0, 0x10, 1, 0, 0, 0, 1, 0, 0], false);
    assert_eq!(
        decap(&mut sa, &mut VecBuf::new(&pkt), 20),
        Err(DecapError::BadHeader)
    );
    assert_eq!(
        decap(&mut sa, &mut VecBuf::new(&pkt), 5000),
        Err(DecapError::BadHeader)
    );
}

proptest! {
    #[test]
    fn encap_then_decap_restores_the_inner_packet(len in 20usize..1500, tos: u8, df: bool, esn: bool,
                                                  udp: bool, start in 0u64..(1u64 << 33)) {
        let inner = inner_packet(len, tos, df);
        let t = tunnel(if udp { Some((4500, 4500)) } else { None });
        let start = if esn { start } else { start % u64::from(u32::MAX) };
        let mut o = outbound_from(Algorithm::Aes256Gcm, esn, t, start + 1);
        let mut i = inbound(Algorithm::Aes256Gcm, esn, udp, 1024);
        i.replay.set_top(start);
        let mut buf = VecBuf::new(&inner);
        encap(&mut o, &mut buf).unwrap();
        prop_assert_eq!(decap(&mut i, &mut buf, if udp { 28 } else { 20 }), Ok(()));
        prop_assert_eq!(buf.data(), &inner[..]);
    }

    #[test]
    fn ipv6_encap_then_decap_restores_the_inner_packet(len in 0usize..1400, udp: bool) {
        let inner = ipv6_packet(len);
        let t = tunnel(if udp { Some((4500, 4500)) } else { None });
        let mut o = outbound(Algorithm::Aes128Gcm, false, t);
        let mut i = inbound(Algorithm::Aes128Gcm, false, udp, 64);
        let mut buf = VecBuf::new(&inner);
        encap(&mut o, &mut buf).unwrap();
        prop_assert_eq!(decap(&mut i, &mut buf, if udp { 28 } else { 20 }), Ok(()));
        prop_assert_eq!(buf.data(), &inner[..]);
    }

    /// Whatever an authenticated payload holds, with any next header, decap ends in an
    /// error or exactly one inner packet of the family the next header names.
    #[test]
    fn any_authenticated_payload_is_handled(body in prop::collection::vec(any::<u8>(), 0..120),
                                           nh in prop::sample::select(vec![4u8, 41, 59, 17])) {
        let pt = trailer(&body, nh);
        let esp = oracle_esp(Algorithm::Aes128Gcm, 0x1001, 1, false, &pt);
        let mut buf = VecBuf::new(&outer_packet(&esp, false));
        let mut sa = inbound(Algorithm::Aes128Gcm, false, false, 64);
        if decap(&mut sa, &mut buf, 20).is_ok() {
            let version = buf.data()[0] >> 4;
            prop_assert_eq!(version, if nh == 41 { 6 } else { 4 });
            prop_assert!(body.starts_with(buf.data()));
        }
    }

    #[test]
    fn decap_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200), off in 0usize..220) {
        let mut sa = inbound(Algorithm::Aes128Gcm, true, false, 64);
        let _ = decap(&mut sa, &mut VecBuf::new(&bytes), off);
    }
}
