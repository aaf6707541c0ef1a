//! The look ahead over a burst: only a hint, which changes nothing and reads what the
//! pipeline would.

use super::*;
use crate::forward::tables::route_cache_index;

/// The look ahead over a burst (`prefetch_sas`) is only a hint: over frames of every kind,
/// malformed ones included, it counts nothing, asks for no resolution, and leaves every
/// packet's verdict and bytes as a gateway without it gives them.
#[test]
fn the_look_ahead_changes_nothing() {
    for udp in [false, true] {
        let mut gw2 = gateway(false, udp, |_| {});
        let (_, esp) = run(
            &mut gw2,
            0,
            &frame(
                GW2_LAN,
                HOST_B,
                "10.2.0.10",
                "10.1.0.10",
                64,
                ipv4::PROTO_UDP,
                &udp_payload(20),
            ),
        );
        let good = a_to_b(64, 10);
        let mut unknown_spi = esp.clone();
        let spi_at = 14 + 20 + if udp { 8 } else { 0 };
        unknown_spi[spi_at..spi_at + 4].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        let mut ipv6 = good.clone();
        ipv6[12..14].copy_from_slice(&[0x86, 0xdd]);
        let frames: Vec<(u16, Vec<u8>)> = vec![
            (0, good.clone()),
            (1, esp.clone()),
            (1, esp[..14 + 20 + 2].to_vec()),
            (1, unknown_spi),
            (0, good[..10].to_vec()),
            (0, good[..14 + 12].to_vec()),
            (0, ipv6),
            (1, to_us(ipv4::PROTO_ESP, &[0, 0])),
            (1, natt(&[0xff])),
            (1, natt(&[0, 0, 0, 0, 1, 2, 3, 4])),
            (
                0,
                frame(
                    GW1_LAN,
                    HOST_A,
                    "10.1.0.10",
                    "172.16.0.1",
                    64,
                    17,
                    &udp_payload(1),
                ),
            ),
            (
                0,
                frame(
                    GW1_LAN,
                    HOST_A,
                    "10.1.0.10",
                    "10.1.0.99",
                    64,
                    17,
                    &udp_payload(1),
                ),
            ),
            (0, good),
        ];
        let mut plain = gateway(true, udp, |_| {});
        let mut looked = gateway(true, udp, |_| {});
        looked.spread = true;
        let bufs: Vec<VecBuf> = frames.iter().map(|(_, b)| VecBuf::new(b)).collect();
        looked.prefetch_sas(&bufs);
        for s in Stat::ALL {
            assert_eq!(looked.stats.get(*s), 0, "{s:?} counted by the look ahead");
        }
        assert!(looked.events.is_empty(), "no resolution asked");
        for (i, (port, b)) in frames.iter().enumerate() {
            assert_eq!(
                run(&mut looked, *port, b),
                run(&mut plain, *port, b),
                "frame {i}"
            );
        }
    }
}

/// What the look ahead reads from a frame: the SPI of ESP and of ESP in UDP on the NAT-T
/// port (after IPv4 options too), the destination of a frame to route, and nothing for
/// anything the pipeline drops before routing or that carries no SA.
#[test]
fn the_look_ahead_reads_spis_and_destinations() {
    use crate::forward::lookahead::{DST, SPI};
    let gw = gateway(true, true, |_| {});
    let esp = to_us(ipv4::PROTO_ESP, &[0, 0, 0x20, 0x01, 0, 0, 0, 1]);
    // The same with 4 bytes of IPv4 options (IHL 6): the SPI follows them.
    let mut with_options = esp[..34].to_vec();
    with_options[14] = 0x46;
    with_options.extend_from_slice(&[1, 1, 1, 0, 0, 0, 0x20, 0x02]);
    let mut ihl4 = esp.clone();
    ihl4[14] = 0x44;
    let mut v6 = esp.clone();
    v6[14] = 0x65;
    let other_port = {
        let mut f = natt(&[0, 0, 0x20, 0x01]);
        f[14 + 20 + 3] = 0x95;
        f
    };
    let bcast = frame(
        GW1_LAN,
        HOST_A,
        "10.1.0.10",
        "255.255.255.255",
        64,
        17,
        &[0; 8],
    );
    let mcast = frame(GW1_LAN, HOST_A, "10.1.0.10", "239.1.1.1", 64, 17, &[0; 8]);
    let cases: Vec<(&str, Vec<u8>, u64)> = vec![
        ("esp", esp.clone(), SPI | 0x2001),
        ("esp after options", with_options, SPI | 0x2002),
        (
            "esp in udp",
            natt(&[0, 0, 0x20, 0x01, 0, 0, 0, 1]),
            SPI | 0x2001,
        ),
        ("non-esp marker", natt(&[0, 0, 0, 0, 1, 2, 3, 4]), 0),
        ("keepalive", natt(&[0xff]), 0),
        ("udp to another port", other_port, 0),
        ("routed", a_to_b(64, 10), DST | 0x0a02_000a),
        ("broadcast", bcast, 0),
        ("multicast", mcast, 0),
        ("ihl below 5", ihl4, 0),
        ("not version 4", v6, 0),
        ("esp cut before its spi", esp[..14 + 20 + 2].to_vec(), 0),
        ("header cut short", esp[..14 + 19].to_vec(), 0),
        ("ethernet only", esp[..14].to_vec(), 0),
        ("empty", Vec::new(), 0),
    ];
    for (what, f, want) in cases {
        assert_eq!(gw.tables.sa_key(&f), want, "{what}");
    }
}

proptest! {
    /// Any bytes, as whole bursts of frames, pass through the look ahead without a panic or
    /// a count, and frames that start as IPv4 for us or to route reach its deeper reads.
    #[test]
    fn the_look_ahead_takes_any_bytes(
        frames in proptest::collection::vec(
            (0usize..4, proptest::collection::vec(any::<u8>(), 0..90)), 1..32)
    ) {
        let mut gw = gateway(true, true, |_| {});
        gw.spread = true;
        let udp = frame(GW1_WAN, GW2_WAN, "192.0.2.2", "192.0.2.1", 64, ipv4::PROTO_UDP, &[]);
        let mut esp = udp.clone();
        esp[14 + 9] = ipv4::PROTO_ESP;
        // Random bytes after nothing, after an IPv4 header up to its protocol (a random
        // destination: routed), or after a whole header for us of UDP or ESP.
        let heads: [&[u8]; 4] = [&[], &udp[..24], &udp[..34], &esp[..34]];
        let bufs: Vec<VecBuf> = frames
            .iter()
            .map(|(h, tail)| {
                let mut f = heads[*h].to_vec();
                f.extend_from_slice(tail);
                VecBuf::new(&f)
            })
            .collect();
        gw.prefetch_sas(&bufs);
        for s in Stat::ALL {
            prop_assert_eq!(gw.stats.get(*s), 0);
        }
    }
}

/// 32 destinations that differ in one octet only (each subnet's .10, or 32 hosts of one
/// subnet) take 32 entries of the route cache, whichever octet it is: none evicts another.
#[test]
fn route_cache_spreads_destinations_differing_in_one_octet() {
    for shift in [0, 8, 16, 24] {
        for base in [0x0a02_000a_u32, 0xc0a8_0001, 0x0a80_0000] {
            let slots: std::collections::HashSet<usize> = (0..32u32)
                .map(|i| route_cache_index((base & !(0xff << shift)) | (i << shift)))
                .collect();
            assert_eq!(slots.len(), 32, "octet at bit {shift} of {base:#x}");
        }
    }
}
