//! Several children under one IKE SA (RFC 7296 section 1.3.1): the VPN's first child in
//! IKE_AUTH, the others asked for by CREATE_CHILD_SA, each matched by its selectors to a
//! slot of the responder's VPN (whatever the order of its list), rekeyed on its own.

use super::tests::{exchange, pair_of, sent, settings};
use super::*;
use crate::ike::selectors::of_prefix;
use std::time::{Duration, Instant};

/// `settings` (one child: `first`) with more children, each (ours, the peer's).
fn with_children(
    me: &str,
    peer: &str,
    first: (&str, &str),
    more: &[(&str, &str)],
) -> Arc<Settings> {
    let s = settings(me, peer, first.0, first.1, "aes128gcm16");
    let mut children = s.children.clone();
    for (l, r) in more {
        children.push(ChildSelectors {
            local: vec![of_prefix(l.parse::<ipnet::IpNet>().unwrap())],
            remote: vec![of_prefix(r.parse::<ipnet::IpNet>().unwrap())],
        });
    }
    Arc::new(Settings {
        children,
        auth: s.auth.clone(),
        ike: s.ike.clone(),
        esp: s.esp.clone(),
        local_id: s.local_id.clone(),
        remote_id: s.remote_id.clone(),
        ..*s
    })
}

/// (slot, our selectors, the peer's) of each child that carries our traffic, by slot.
fn slots(sa: &IkeSa) -> Vec<(usize, String, String)> {
    let mut v: Vec<_> = sa
        .children()
        .iter()
        .filter(|c| c.outbound)
        .map(|c| {
            let p = |ts: &[TrafficSelector]| format!("{:?}", crate::ike::selectors::prefixes(ts));
            (c.sa.slot, p(&c.sa.local_ts), p(&c.sa.remote_ts))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn the_initiator_asks_for_each_further_child_and_the_responder_matches_them_by_selectors() {
    let t0 = Instant::now();
    let si = with_children(
        "a.example",
        "b.example",
        ("10.1.0.0/16", "10.2.0.0/16"),
        &[
            ("10.1.0.0/16", "10.3.0.0/24"),
            ("10.1.5.0/24", "10.4.0.0/16"),
        ],
    );
    // The responder lists them in another order, and one more it never gets asked for.
    let sr = with_children(
        "b.example",
        "a.example",
        ("10.4.0.0/16", "10.1.5.0/24"),
        &[
            ("10.9.0.0/16", "10.1.0.0/16"),
            ("10.2.0.0/16", "10.1.0.0/16"),
            ("10.3.0.0/24", "10.1.0.0/16"),
        ],
    );
    let (mut i, mut r, mut spis) = pair_of(t0, si, sr);
    assert_eq!(
        r.children()[0].sa.slot,
        2,
        "IKE_AUTH's child is the responder's third"
    );
    // The initiator asks for the other two, one exchange at a time, by its timers.
    for _ in 0..2 {
        assert_eq!(i.next_timer().map(|t| t <= t0), Some(true));
        i.tick(t0, &mut spis);
        let events = exchange(&mut [&mut i], &mut [&mut r], t0, &mut spis);
        assert!(events.is_empty(), "{events:?}");
    }
    assert_eq!(
        slots(&i),
        [
            (0, "[10.1.0.0/16]".into(), "[10.2.0.0/16]".into()),
            (1, "[10.1.0.0/16]".into(), "[10.3.0.0/24]".into()),
            (2, "[10.1.5.0/24]".into(), "[10.4.0.0/16]".into()),
        ]
    );
    assert_eq!(
        slots(&r),
        [
            (0, "[10.4.0.0/16]".into(), "[10.1.5.0/24]".into()),
            (2, "[10.2.0.0/16]".into(), "[10.1.0.0/16]".into()),
            (3, "[10.3.0.0/24]".into(), "[10.1.0.0/16]".into()),
        ]
    );
    // Each pair shares its keys.
    for c in i.children() {
        let peer = r
            .children()
            .iter()
            .find(|p| p.sa.inbound_spi == c.sa.outbound_spi)
            .unwrap();
        assert_eq!(*c.sa.outbound_key, *peer.sa.inbound_key);
    }
    // Nothing more is asked for.
    i.tick(t0 + Duration::from_secs(1), &mut spis);
    assert!(sent(&mut i).0.is_empty());

    // One child's rekey replaces it in its slot and leaves the others sending.
    let slot1 = i
        .children()
        .iter()
        .find(|c| c.sa.slot == 1)
        .unwrap()
        .sa
        .inbound_spi;
    assert!(i.rekey_child(t0, slot1, &mut spis));
    let events = exchange(&mut [&mut i], &mut [&mut r], t0, &mut spis);
    assert!(events.is_empty(), "{events:?}");
    let after = slots(&i);
    assert_eq!(after.len(), 3, "{after:?}");
    let new = i
        .children()
        .iter()
        .find(|c| c.sa.slot == 1 && c.outbound)
        .unwrap();
    assert_ne!(new.sa.inbound_spi, slot1);
    assert_eq!(slots(&r).len(), 3);
    assert_eq!(i.stats.child_rekeys, 1);
}

#[test]
fn a_further_child_the_peer_refuses_leaves_the_ike_sa_and_is_not_asked_again() {
    let t0 = Instant::now();
    let si = with_children(
        "a.example",
        "b.example",
        ("10.1.0.0/16", "10.2.0.0/16"),
        &[("10.1.0.0/16", "10.7.0.0/16")],
    );
    let sr = settings(
        "b.example",
        "a.example",
        "10.2.0.0/16",
        "10.1.0.0/16",
        "aes128gcm16",
    );
    let (mut i, mut r, mut spis) = pair_of(t0, si, sr);
    i.tick(t0, &mut spis);
    let events = exchange(&mut [&mut i], &mut [&mut r], t0, &mut spis);
    assert!(
        matches!(&events[..], [Action::ChildFailed(e)] if e == "child SA: TS_UNACCEPTABLE"),
        "{events:?}"
    );
    assert_eq!(i.state, State::Established);
    assert_eq!((i.children().len(), r.children().len()), (1, 1));
    i.tick(t0 + Duration::from_secs(5), &mut spis);
    assert!(sent(&mut i).0.is_empty(), "asked again");
}
