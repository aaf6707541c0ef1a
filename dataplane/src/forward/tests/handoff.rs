//! Several workers: a packet that needs an SA another worker owns goes to that worker and
//! resumes there; and no frame panics the pipeline.

use super::*;

#[test]
fn packets_for_an_sa_owned_elsewhere_go_to_its_owner_and_resume_there() {
    // One gateway pair, two tunnels, two workers in one group: st0.0 on worker 0, st0.1 on 1.
    let mut gw1 = gateway_workers(true, true, 2, second_tunnel(true));
    let mut gw2 = gateway_workers(false, true, 2, second_tunnel(false));
    let via_st0_0 = frame(
        GW1_LAN,
        HOST_A,
        "10.1.0.10",
        "10.2.0.200",
        64,
        17,
        &udp_payload(20),
    );
    let via_st0_1 = frame(
        GW1_LAN,
        HOST_A,
        "10.1.0.10",
        "10.2.0.10",
        64,
        17,
        &udp_payload(30),
    );
    for (bytes, tunnel, owner) in [(&via_st0_0, 0u32, 0usize), (&via_st0_1, 1, 1)] {
        let other = 1 - owner;
        // Outbound: received by the other worker, which stops before touching the SA.
        let mut b = VecBuf::new(bytes);
        let before = gw1[other].stats.get(Stat::EncryptedPackets);
        let v = gw1[other].receive(0, &mut b);
        assert_eq!(
            v,
            Verdict::Handoff {
                worker: owner as u16,
                resume: Resume::TunnelOutput(tunnel).into()
            }
        );
        assert_eq!(gw1[other].stats.get(Stat::EncryptedPackets), before);
        assert!(
            gw1[other].tables.outbound(tunnel).is_none(),
            "the non-owner does not even hold the SA"
        );
        let before = gw1[owner].stats.get(Stat::EncryptedPackets);
        assert_eq!(
            resume(&mut gw1[owner], &mut b, Resume::TunnelOutput(tunnel)),
            Verdict::Tx(1)
        );
        assert_eq!(gw1[owner].stats.get(Stat::EncryptedPackets), before + 1);

        // Inbound at gw2: the ESP lands on the non-owner, goes to the owner by SPI.
        let mut e = VecBuf::new(b.data());
        let before = gw2[other].stats.get(Stat::DecryptedPackets);
        assert_eq!(
            gw2[other].receive(1, &mut e),
            Verdict::Handoff {
                worker: owner as u16,
                resume: Resume::EspInput.into()
            }
        );
        assert_eq!(gw2[other].stats.get(Stat::DecryptedPackets), before);
        assert_eq!(
            resume(&mut gw2[owner], &mut e, Resume::EspInput),
            Verdict::Tx(0)
        );
        assert_eq!(&e.data()[34..], &bytes[34..], "inner packet intact");

        // Received directly by the owner: no handoff.
        assert_eq!(run(&mut gw1[owner], 0, bytes).0, Verdict::Tx(1));
    }
}

proptest! {
    #[test]
    fn receive_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300), port in 0u16..3,
                            ip_proto in prop::sample::select(vec![1u8, 17, 50, 6])) {
        let mut gw = gateway(false, true, |_| {});
        let _ = run(&mut gw, port, &bytes);
        // Also with valid Ethernet + IPv4 headers in front, so the deeper layers get fuzzed.
        let mut f = frame(GW2_WAN, GW1_WAN, "192.0.2.1", "192.0.2.2", 64, ip_proto, &bytes);
        let _ = run(&mut gw, 1, &f);
        if f.len() > 42 {
            f[34..36].copy_from_slice(&4500u16.to_be_bytes());
            f[36..38].copy_from_slice(&4500u16.to_be_bytes());
            let _ = run(&mut gw, 1, &f);
        }
    }
}
