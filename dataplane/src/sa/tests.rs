use super::*;
use crate::esp::crypto::Algorithm;
use crate::testkit::{counters, keymat, tunnel};

fn outbound(esn: bool, first_seq: u64, soft: Lifetime, hard: Lifetime) -> OutboundSa {
    let p = OutboundParams {
        first_seq,
        soft,
        hard,
        ..OutboundParams::new(0x1001, esn, tunnel(None))
    };
    OutboundSa::new(
        p,
        &keymat(Algorithm::Aes128Gcm, 7),
        counters(),
        &Backend::Ring,
    )
    .unwrap()
}

fn inbound(soft: Lifetime, hard: Lifetime) -> InboundSa {
    let p = InboundParams {
        tunnel: 0,
        tcp_mss: 0,
        spi: 0x2001,
        esn: false,
        local: Ipv4Addr::new(192, 0, 2, 1),
        udp_encap: false,
        selectors: Selectors::default(),
        soft,
        hard,
    };
    let w = ReplayWindow::new(64, false);
    InboundSa::new(
        p,
        &keymat(Algorithm::Aes128Gcm, 7),
        w,
        counters(),
        &Backend::Ring,
    )
    .unwrap()
}

fn none() -> Lifetime {
    Lifetime::default()
}

fn taken(e: &mut EventFlags) -> Vec<SaEventKind> {
    e.take().collect()
}

#[test]
fn sequence_numbers_stop_instead_of_wrapping() {
    let mut sa = outbound(false, 1, none(), none());
    assert_eq!(sa.next_seq(), Ok(1), "first packet carries 1");
    let mut sa = outbound(false, u64::from(u32::MAX), none(), none());
    assert_eq!(sa.next_seq(), Ok(u64::from(u32::MAX)));
    assert_eq!(sa.next_seq(), Err(SeqStop::Exhausted));
    assert_eq!(sa.next_seq(), Err(SeqStop::Exhausted), "stays stopped");
    let mut sa = outbound(true, u64::from(u32::MAX) + 1, none(), none());
    assert_eq!(sa.next_seq(), Ok(1 << 32), "ESN continues past 2^32");
    let mut sa = outbound(true, u64::MAX, none(), none());
    assert_eq!(sa.next_seq(), Ok(u64::MAX));
    assert_eq!(sa.next_seq(), Err(SeqStop::Exhausted));
}

/// Near exhaustion is raised once, when 7/8 of the sequence space is used; the slow path
/// runs only at the thresholds.
#[test]
fn near_exhaustion_is_raised_once() {
    let space = u64::from(u32::MAX);
    let near = space - space / 8;
    let mut sa = outbound(false, near - 2, none(), none());
    assert_eq!(sa.next_seq(), Ok(near - 2));
    assert_eq!(sa.next_seq(), Ok(near - 1));
    assert!(!sa.events.any_pending());
    assert_eq!(sa.next_seq(), Ok(near));
    assert_eq!(taken(&mut sa.events), [SaEventKind::SeqNearExhaustion]);
    for _ in 0..1000 {
        assert!(sa.next_seq().is_ok());
    }
    assert!(!sa.events.any_pending(), "raised once");
}

#[test]
fn packet_lifetimes_of_an_outbound_sa() {
    let soft = Lifetime {
        packets: Some(3),
        bytes: None,
    };
    let hard = Lifetime {
        packets: Some(5),
        bytes: None,
    };
    // Counted from the first packet, wherever the numbers start.
    let mut sa = outbound(false, 100, soft, hard);
    for want in 100..=102 {
        assert_eq!(sa.next_seq(), Ok(want));
    }
    assert_eq!(taken(&mut sa.events), [SaEventKind::SoftLimit]);
    assert_eq!(sa.next_seq(), Ok(103));
    assert_eq!(sa.next_seq(), Ok(104));
    assert!(!sa.events.any_pending(), "soft raised once");
    assert_eq!(sa.next_seq(), Err(SeqStop::HardLimit));
    assert_eq!(taken(&mut sa.events), [SaEventKind::HardLimit]);
    assert_eq!(sa.next_seq(), Err(SeqStop::HardLimit));
    assert!(!sa.events.any_pending(), "hard raised once");
}

#[test]
fn byte_lifetimes_of_an_outbound_sa_stop_it_at_once() {
    let soft = Lifetime {
        packets: None,
        bytes: Some(1000),
    };
    let hard = Lifetime {
        packets: None,
        bytes: Some(2000),
    };
    let mut sa = outbound(false, 1, soft, hard);
    assert_eq!(sa.next_seq(), Ok(1));
    sa.carried(1, 999);
    assert!(!sa.events.any_pending());
    sa.carried(1, 1);
    assert_eq!(taken(&mut sa.events), [SaEventKind::SoftLimit]);
    sa.carried(1, 500);
    assert!(!sa.events.any_pending());
    sa.carried(1, 600);
    assert_eq!(taken(&mut sa.events), [SaEventKind::HardLimit]);
    assert_eq!(
        sa.next_seq(),
        Err(SeqStop::HardLimit),
        "no packet after the hard limit"
    );
    sa.carried(1, 600);
    assert!(!sa.events.any_pending());
    assert_eq!(sa.counters.bytes.get(), 2700);
}

#[test]
fn lifetimes_of_an_inbound_sa() {
    let mut sa = inbound(
        Lifetime {
            packets: Some(2),
            bytes: None,
        },
        Lifetime {
            packets: None,
            bytes: Some(300),
        },
    );
    sa.carried(100);
    assert!(!sa.events.any_pending() && !sa.expired);
    sa.carried(100);
    assert_eq!(taken(&mut sa.events), [SaEventKind::SoftLimit]);
    sa.carried(50);
    assert!(!sa.events.any_pending() && !sa.expired);
    sa.carried(50);
    assert_eq!(taken(&mut sa.events), [SaEventKind::HardLimit]);
    assert!(sa.expired, "the hard limit ends the SA");
    sa.carried(50);
    assert!(!sa.events.any_pending(), "raised once");
}

#[test]
fn selectors_any_and_lists() {
    let any = Selectors::default();
    let a = Ipv4Addr::new(10, 2, 0, 10);
    let b = Ipv4Addr::new(10, 1, 0, 10);
    assert!(any.admits_inbound(a, b));
    let s = Selectors {
        local: Box::new(["10.1.0.0/16".parse().unwrap()]),
        remote: Box::new(["10.2.0.0/24".parse().unwrap()]),
        ..Default::default()
    };
    assert!(s.admits_inbound(a, b));
    assert!(!s.admits_inbound(b, a));
    assert!(!s.admits_inbound(Ipv4Addr::new(10, 2, 1, 1), b));
    // The integer test agrees with `Ipv4Net::contains` for every prefix length.
    for len in 0..=32u8 {
        let net = Ipv4Net::new(Ipv4Addr::new(10, 2, 0x85, 0x21), len)
            .unwrap()
            .trunc();
        let s = Selectors {
            remote: Box::new([net]),
            ..Default::default()
        };
        for k in 0..2000u32 {
            let a =
                Ipv4Addr::from(0x0a02_8521 ^ k.wrapping_mul(2654435761).rotate_left(len.into()));
            assert_eq!(s.admits_inbound(a, b), net.contains(&a), "{net} {a}");
        }
    }
}

/// Each family's lists decide for its packets; a side without prefixes of either family
/// admits anything, a side with prefixes of the other family only admits none of this one.
#[test]
fn selectors_of_both_families() {
    let v4 = |s: &str| -> Ipv4Addr { s.parse().unwrap() };
    let v6 = |s: &str| -> std::net::Ipv6Addr { s.parse().unwrap() };
    let s = Selectors {
        local: Box::new(["10.1.0.0/16".parse().unwrap()]),
        local6: Box::new(["2001:db8:1::/48".parse().unwrap()]),
        remote6: Box::new(["2001:db8:2::/48".parse().unwrap()]),
        ..Default::default()
    };
    let (b6, a6) = (v6("2001:db8:2::10"), v6("2001:db8:1::10"));
    assert!(s.admits_inbound6(&b6, &a6));
    assert!(!s.admits_inbound6(&a6, &b6));
    assert!(!s.admits_inbound6(&v6("2001:db8:3::1"), &a6));
    // The remote side lists IPv6 only: no IPv4 source is admitted.
    assert!(!s.admits_inbound(v4("10.2.0.10"), v4("10.1.0.10")));
    let ipv4_only = Selectors {
        local: Box::new(["10.1.0.0/16".parse().unwrap()]),
        ..Default::default()
    };
    assert!(ipv4_only.admits_inbound(v4("10.2.0.10"), v4("10.1.0.10")));
    assert!(
        !ipv4_only.admits_inbound6(&b6, &a6),
        "its local side is IPv4"
    );
    assert!(Selectors::default().admits_inbound6(&b6, &a6));
}

/// An SA on grants sends nothing above the grant's end, asks for more at half of it (again
/// after every grant), and carries on where it stopped once extended.
#[test]
fn sequence_numbers_never_pass_the_grant() {
    let p = OutboundParams {
        first_seq: 101,
        lease: Lease {
            end: 110,
            renew_at: 105,
        },
        ..OutboundParams::new(0x1001, false, tunnel(None))
    };
    let mut sa = OutboundSa::new(
        p,
        &keymat(Algorithm::Aes128Gcm, 7),
        counters(),
        &Backend::Ring,
    )
    .unwrap();
    for want in 101..=104 {
        assert_eq!(sa.next_seq(), Ok(want));
    }
    assert!(!sa.events.any_pending());
    assert_eq!(sa.next_seq(), Ok(105));
    assert_eq!(taken(&mut sa.events), [SaEventKind::LeaseLow]);
    for want in 106..=110 {
        assert_eq!(sa.next_seq(), Ok(want));
    }
    assert_eq!(
        sa.next_seq(),
        Err(SeqStop::Lease),
        "nothing above the grant"
    );
    assert_eq!(sa.next_seq(), Err(SeqStop::Lease));
    assert!(taken(&mut sa.events).is_empty(), "asked once per grant");
    // An older grant changes nothing; a newer one lets it go on, and re-arms the request.
    sa.extend_lease(Lease {
        end: 109,
        renew_at: 100,
    });
    assert_eq!(sa.next_seq(), Err(SeqStop::Lease));
    sa.extend_lease(Lease {
        end: 120,
        renew_at: 115,
    });
    for want in 111..=114 {
        assert_eq!(sa.next_seq(), Ok(want));
    }
    assert_eq!(sa.next_seq(), Ok(115));
    assert_eq!(taken(&mut sa.events), [SaEventKind::LeaseLow]);
    assert_eq!(sa.last_seq(), 115);
}
