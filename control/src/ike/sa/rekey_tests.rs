//! Rekeys (RFC 7296 sections 1.3.2, 1.3.3, 2.8): a child's make-before-break, the IKE SA's
//! move of its children to a successor, the simultaneous cases resolved by the lowest nonce,
//! and the hard lifetimes that end what was not rekeyed in time.

use super::tests::{exchange, pair, path, sent, settings};
use super::*;
use std::time::{Duration, Instant};

#[test]
fn a_child_rekey_is_make_before_break_on_both_sides() {
    for esp in ["aes256gcm16", "aes256gcm16-x25519"] {
        let t0 = Instant::now();
        let (mut i, mut r, mut spis) = pair(t0, esp);
        let old = i.children()[0].sa.inbound_spi;
        let old_r = r.children()[0].sa.inbound_spi;
        assert!(i.rekey_child(t0, old, &mut spis));
        let (req, _, _) = sent(&mut i);
        r.handle(t0, path(2, 1), &req[0], &mut spis);
        let (resp, rc, _) = sent(&mut r);
        // The responder has the new inbound SA before it answers; its traffic stays on the
        // old one until the initiator deletes it.
        assert_eq!(rc, 1);
        assert_eq!(r.children().len(), 2);
        assert!(r.children()[0].outbound && !r.children()[1].outbound);
        i.handle(t0, path(1, 2), &resp[0], &mut spis);
        let (del, ic, _) = sent(&mut i);
        assert_eq!(ic, 1);
        // The initiator sends with the new one at once and keeps the old inbound.
        let new = &i.children()[1];
        assert!(new.outbound && !i.children()[0].outbound);
        assert_eq!(*new.sa.outbound_key, *r.children()[1].sa.inbound_key);
        assert_eq!(*new.sa.inbound_key, *r.children()[1].sa.outbound_key);
        r.handle(t0, path(2, 1), &del[0], &mut spis);
        let (del_resp, rc, _) = sent(&mut r);
        assert_eq!(rc, 1);
        assert_eq!(r.children().len(), 1);
        assert!(r.children()[0].outbound);
        assert_ne!(r.children()[0].sa.inbound_spi, old_r);
        i.handle(t0, path(1, 2), &del_resp[0], &mut spis);
        // The old inbound SA lasts the grace period, then goes.
        assert_eq!(i.children().len(), 2);
        i.tick(t0 + Duration::from_secs(3), &mut spis);
        let (_, ic, _) = sent(&mut i);
        assert_eq!(ic, 1);
        assert_eq!(i.children().len(), 1);
        assert_ne!(i.children()[0].sa.inbound_spi, old);
        assert_eq!(i.stats.child_rekeys, 1);
        assert_eq!(r.stats.child_rekeys, 1);
    }
}

/// Both sides rekey the same child at once (RFC 7296 section 2.8.1), the requests crossing
/// on the wire: both are answered, and once everything is done each side has exactly one
/// child left, the same one on both sides (no packet of ours on a child the peer dropped),
/// whichever of the two exchanges had the lowest nonce.
#[test]
fn a_simultaneous_child_rekey_leaves_one_child_on_both_sides() {
    let mut outcomes = std::collections::HashSet::new();
    for round in 0..40 {
        let t0 = Instant::now();
        let (mut i, mut r, mut spis) = pair(t0, "aes256gcm16-x25519");
        let (old_i, old_r) = (
            i.children()[0].sa.inbound_spi,
            r.children()[0].sa.inbound_spi,
        );
        assert!(i.rekey_child(t0, old_i, &mut spis));
        assert!(r.rekey_child(t0, old_r, &mut spis));
        let (req_i, _, _) = sent(&mut i);
        let (req_r, _, _) = sent(&mut r);
        // Each answers the other's request as usual (no TEMPORARY_FAILURE).
        r.handle(t0, path(2, 1), &req_i[0], &mut spis);
        i.handle(t0, path(1, 2), &req_r[0], &mut spis);
        let (resp_r, _, failed_r) = sent(&mut r);
        let (resp_i, _, failed_i) = sent(&mut i);
        assert!(failed_r.is_empty() && failed_i.is_empty());
        // The answers cross too; each side deletes one child (the redundant one, or the old).
        // i has its answer before r has its own: whatever i sends on, r must have already.
        i.handle(t0, path(1, 2), &resp_r[0], &mut spis);
        let sending: Vec<u32> = i
            .children()
            .iter()
            .filter(|c| c.outbound)
            .map(|c| c.sa.outbound_spi)
            .collect();
        assert_eq!(sending.len(), 1);
        assert!(
            r.children().iter().any(|c| c.sa.inbound_spi == sending[0]),
            "round {round}: i sends on an SA r does not have yet"
        );
        r.handle(t0, path(2, 1), &resp_i[0], &mut spis);
        let (del_i, _, other_i) = sent(&mut i);
        let (del_r, _, other_r) = sent(&mut r);
        assert!(
            other_i.is_empty() && other_r.is_empty(),
            "{other_i:?} {other_r:?}"
        );
        assert_eq!((del_i.len(), del_r.len()), (1, 1), "round {round}");
        r.handle(t0, path(2, 1), &del_i[0], &mut spis);
        i.handle(t0, path(1, 2), &del_r[0], &mut spis);
        let (ans_r, _, _) = sent(&mut r);
        let (ans_i, _, _) = sent(&mut i);
        i.handle(t0, path(1, 2), &ans_r[0], &mut spis);
        r.handle(t0, path(2, 1), &ans_i[0], &mut spis);
        // Past the grace period: one child each, the same pair of SAs, carrying traffic.
        let t = t0 + Duration::from_secs(3);
        i.tick(t, &mut spis);
        r.tick(t, &mut spis);
        let _ = (sent(&mut i), sent(&mut r));
        let (ic, rc) = (i.children(), r.children());
        assert_eq!((ic.len(), rc.len()), (1, 1), "round {round}");
        assert!(ic[0].outbound && rc[0].outbound);
        assert_eq!(ic[0].sa.outbound_spi, rc[0].sa.inbound_spi);
        assert_eq!(ic[0].sa.inbound_spi, rc[0].sa.outbound_spi);
        assert_eq!(*ic[0].sa.outbound_key, *rc[0].sa.inbound_key);
        assert!(ic[0].sa.inbound_spi != old_i && rc[0].sa.inbound_spi != old_r);
        assert_eq!((i.stats.child_rekeys, r.stats.child_rekeys), (1, 1));
        // Whose exchange survived: the initiator's (its SPI was offered by i) or not.
        outcomes.insert(ic[0].sa.inbound_spi < rc[0].sa.inbound_spi);
        if outcomes.len() == 2 {
            break;
        }
    }
    assert_eq!(
        outcomes.len(),
        2,
        "both outcomes of the nonce comparison seen"
    );
}

#[test]
fn a_child_is_rekeyed_when_its_time_comes() {
    let t0 = Instant::now();
    let (mut i, _r, mut spis) = pair(t0, "aes128gcm16");
    let _ = sent(&mut i);
    let mut s = settings("a", "b", "10.1.0.0/16", "10.2.0.0/16", "aes128gcm16");
    if let Some(s) = Arc::get_mut(&mut s) {
        s.child_rekey = Some(Duration::from_secs(8));
    }
    i.settings = s;
    let t = t0 + Duration::from_secs(8);
    assert!(i.next_timer().is_some_and(|x| x <= t));
    i.tick(t, &mut spis);
    let (req, _, _) = sent(&mut i);
    assert_eq!(req.len(), 1, "a CREATE_CHILD_SA request");
}

#[test]
fn a_peer_that_dies_during_a_rekey_is_dead_after_the_dpd_time_not_the_rekeys_back_off() {
    let t0 = Instant::now();
    let (mut i, _r, mut spis) = pair(t0, "aes128gcm16");
    let inbound = i.children()[0].sa.inbound_spi;
    assert!(i.rekey_child(t0, inbound, &mut spis));
    let _ = sent(&mut i);
    // DPD 10 s, threshold 3: 30 s without an answer or anything else from the peer.
    i.tick(t0 + Duration::from_secs(29), &mut spis);
    assert_eq!(i.state, State::Established);
    assert!(i
        .next_timer()
        .is_some_and(|t| t <= t0 + Duration::from_secs(30)));
    i.tick(t0 + Duration::from_secs(30), &mut spis);
    let (_, _, other) = sent(&mut i);
    assert!(
        matches!(other[..], [Action::Closed(Close::Timeout)]),
        "{other:?}"
    );
}

/// The new IKE SA an action list carries, and the rest.
fn successor(actions: Vec<Action>) -> (Option<IkeSa>, Vec<Action>) {
    let mut new = None;
    let mut rest = Vec::new();
    for a in actions {
        match a {
            Action::Rekeyed(sa) => new = Some(*sa),
            a => rest.push(a),
        }
    }
    (new, rest)
}

#[test]
fn an_ike_sa_rekey_moves_the_children_to_a_new_sa_whose_keys_match() {
    for (who, first) in [("initiator", true), ("responder", false)] {
        let t0 = Instant::now();
        let (mut i, mut r, mut spis) = pair(t0, "aes128gcm16");
        let (a, b) = if first {
            (&mut i, &mut r)
        } else {
            (&mut r, &mut i)
        };
        let (pa, pb) = if first {
            (path(1, 2), path(2, 1))
        } else {
            (path(2, 1), path(1, 2))
        };
        let child_in = a.children()[0].sa.inbound_spi;
        assert!(a.rekey_ike(t0), "{who}");
        let (req, _, _) = sent(a);
        b.handle(t0, pb, &req[0], &mut spis);
        let (resp, _, other) = sent(b);
        let (Some(mut nb), _) = successor(other) else {
            panic!("{who}: no new SA")
        };
        a.handle(t0, pa, &resp[0], &mut spis);
        let (del, _, other) = sent(a);
        let (Some(mut na), _) = successor(other) else {
            panic!("{who}: no new SA")
        };
        // The children moved, unchanged; fresh SPIs; the old SA is deleted.
        assert_eq!(na.children()[0].sa.inbound_spi, child_in);
        assert!(a.children().is_empty() && b.children().is_empty());
        assert_eq!((na.spi_i, na.spi_r), (nb.spi_i, nb.spi_r));
        assert_ne!(na.spi_i, a.spi_i);
        assert_eq!(
            na.role,
            Role::Initiator,
            "the rekey's initiator starts the new SA"
        );
        b.handle(t0, pb, &del[0], &mut spis);
        let (del_resp, children, other) = sent(b);
        assert_eq!(children, 0, "no child leaves with the old SA");
        assert!(
            matches!(other[..], [Action::Closed(Close::Rekeyed)]),
            "{other:?}"
        );
        a.handle(t0, pa, &del_resp[0], &mut spis);
        let (_, _, other) = sent(a);
        assert!(
            matches!(other[..], [Action::Closed(Close::Rekeyed)]),
            "{other:?}"
        );
        // The new SAs talk (their keys match): a liveness check, then a child rekey.
        let t = t0 + Duration::from_secs(11);
        na.tick(t, &mut spis);
        let (dpd, _, _) = sent(&mut na);
        assert_eq!(dpd.len(), 1);
        nb.handle(t, pb, &dpd[0], &mut spis);
        let (ans, _, _) = sent(&mut nb);
        assert_eq!(
            ans.len(),
            1,
            "{who}: the new SA's peer could not open the check"
        );
        na.handle(t, pa, &ans[0], &mut spis);
        assert!(!na.busy());
        let inb = na.children()[0].sa.inbound_spi;
        assert!(na.rekey_child(t, inb, &mut spis));
        let (req, _, _) = sent(&mut na);
        nb.handle(t, pb, &req[0], &mut spis);
        let (resp, _, _) = sent(&mut nb);
        na.handle(t, pa, &resp[0], &mut spis);
        assert_eq!(
            *na.children()[1].sa.outbound_key,
            *nb.children()[1].sa.inbound_key
        );
    }
}

#[test]
fn a_child_goes_at_its_hard_lifetime_and_the_peer_is_told() {
    let t0 = Instant::now();
    let (mut i, mut r, mut spis) = pair(t0, "aes128gcm16");
    let mut s = settings("a", "b", "10.1.0.0/16", "10.2.0.0/16", "aes128gcm16");
    if let Some(s) = Arc::get_mut(&mut s) {
        s.child_lifetime = Some(Duration::from_secs(20));
        s.dpd = None;
    }
    i.settings = s;
    i.tick(t0 + Duration::from_secs(19), &mut spis);
    assert_eq!(i.children().len(), 1);
    assert!(i
        .next_timer()
        .is_some_and(|t| t <= t0 + Duration::from_secs(20)));
    i.tick(t0 + Duration::from_secs(20), &mut spis);
    let (del, children, _) = sent(&mut i);
    assert_eq!((children, i.children().len()), (1, 0));
    r.handle(t0, path(2, 1), &del[0], &mut spis);
    let (_, rc, _) = sent(&mut r);
    assert_eq!((rc, r.children().len()), (1, 0), "the peer removes it too");
}

/// The new SAs a side's actions carry: the one with the children, and the redundant one.
fn rekey_results(actions: Vec<Action>) -> (Option<IkeSa>, Option<IkeSa>) {
    let (mut survivor, mut redundant) = (None, None);
    for a in actions {
        match a {
            Action::Rekeyed(sa) => survivor = Some(*sa),
            Action::Redundant(sa) => redundant = Some(*sa),
            _ => {}
        }
    }
    (survivor, redundant)
}

/// Both sides rekey the IKE SA at once (RFC 7296 section 2.8.2), the requests crossing: both
/// are answered, and once everything is done each side has one new IKE SA with the
/// children, the same on both sides; the old and the redundant one are gone from both, with
/// no event for either. Both outcomes of the nonce comparison are seen.
#[test]
fn a_simultaneous_ike_sa_rekey_leaves_one_new_sa_on_both_sides() {
    let mut outcomes = std::collections::HashSet::new();
    for round in 0..40 {
        let t0 = Instant::now();
        let (mut i, mut r, mut spis) = pair(t0, "aes128gcm16");
        let child = i.children()[0].sa.inbound_spi;
        assert!(i.rekey_ike(t0) && r.rekey_ike(t0));
        let (req_i, _, _) = sent(&mut i);
        let (req_r, _, _) = sent(&mut r);
        r.handle(t0, path(2, 1), &req_i[0], &mut spis);
        i.handle(t0, path(1, 2), &req_r[0], &mut spis);
        let (resp_r, _, other_r) = sent(&mut r);
        let (resp_i, _, other_i) = sent(&mut i);
        // Answered as usual, nothing handed up yet.
        assert!(
            other_r.is_empty() && other_i.is_empty(),
            "{other_i:?} {other_r:?}"
        );
        assert_eq!(i.children().len(), 1);
        i.handle(t0, path(1, 2), &resp_r[0], &mut spis);
        r.handle(t0, path(2, 1), &resp_i[0], &mut spis);
        let (del_i, _, acts_i) = sent(&mut i);
        let (del_r, _, acts_r) = sent(&mut r);
        // Exactly one side deletes the old SA.
        assert_eq!(del_i.len() + del_r.len(), 1, "round {round}");
        let (Some(mut si), Some(mut xi)) = rekey_results(acts_i) else {
            panic!("initiator: no new SAs")
        };
        let (Some(mut sr), Some(mut xr)) = rekey_results(acts_r) else {
            panic!("responder: no new SAs")
        };
        // The old SAs' deletes go out again for `exchange` to carry.
        for (sa, del) in [(&mut i, del_i), (&mut r, del_r)] {
            for bytes in del {
                sa.actions.push_back(Action::Send {
                    path: sa.path,
                    bytes,
                });
            }
        }
        let events = exchange(
            &mut [&mut i, &mut si, &mut xi],
            &mut [&mut r, &mut sr, &mut xr],
            t0,
            &mut spis,
        );
        for sa in [&i, &r, &xi, &xr] {
            assert_eq!(sa.state, State::Closed, "round {round}");
        }
        // Four silent ends (no failure, no delete by the peer), nothing else.
        assert_eq!(events.len(), 4, "{events:?}");
        assert!(
            events
                .iter()
                .all(|a| matches!(a, Action::Closed(Close::Rekeyed))),
            "{events:?}"
        );
        assert_eq!(
            (si.state, sr.state),
            (State::Established, State::Established)
        );
        assert_eq!((si.spi_i, si.spi_r), (sr.spi_i, sr.spi_r));
        assert_eq!(si.children()[0].sa.inbound_spi, child);
        assert_eq!(
            *si.children()[0].sa.outbound_key,
            *sr.children()[0].sa.inbound_key
        );
        // The survivors talk: a liveness check answered.
        si.informational_request(t0, &[], Asking::Liveness);
        exchange(&mut [&mut si], &mut [&mut sr], t0, &mut spis);
        assert!(!si.busy());
        outcomes.insert(si.role == Role::Initiator);
        if outcomes.len() == 2 {
            break;
        }
    }
    assert_eq!(
        outcomes.len(),
        2,
        "both outcomes of the nonce comparison seen"
    );
}

/// The dataplane's soft lifetime event for a child while the IKE SA is busy (a liveness
/// check out) is not lost: the rekey starts as soon as the answer is in.
#[test]
fn a_rekey_asked_for_while_busy_starts_once_the_ike_sa_is_free() {
    let t0 = Instant::now();
    let (mut i, mut r, mut spis) = pair(t0, "aes128gcm16");
    i.informational_request(t0, &[], Asking::Liveness);
    let (check, _, _) = sent(&mut i);
    let inbound = i.children()[0].sa.inbound_spi;
    assert!(!i.rekey_child(t0, inbound, &mut spis), "busy");
    assert!(i.next_timer().is_some_and(|t| t <= t0));
    r.handle(t0, path(2, 1), &check[0], &mut spis);
    let (answer, _, _) = sent(&mut r);
    i.handle(t0, path(1, 2), &answer[0], &mut spis);
    let t = t0 + Duration::from_millis(20);
    i.tick(t, &mut spis);
    let (req, _, _) = sent(&mut i);
    assert_eq!(req.len(), 1, "the rekey request");
    r.handle(t, path(2, 1), &req[0], &mut spis);
    let (resp, _, _) = sent(&mut r);
    i.handle(t, path(1, 2), &resp[0], &mut spis);
    assert_eq!(i.stats.child_rekeys, 1);
    assert!(i
        .children()
        .iter()
        .any(|c| c.outbound && c.sa.inbound_spi != inbound));
}

/// An IKE SA whose rekey never comes through (the peer refuses it) is deleted with its
/// children at its hard lifetime, the peer told.
#[test]
fn an_ike_sa_goes_at_its_hard_lifetime() {
    let t0 = Instant::now();
    let (mut i, mut r, mut spis) = pair(t0, "aes128gcm16");
    let mut s = settings("a", "b", "10.1.0.0/16", "10.2.0.0/16", "aes128gcm16");
    if let Some(s) = Arc::get_mut(&mut s) {
        s.ike_lifetime = Some(Duration::from_secs(100));
        s.dpd = None;
    }
    i.settings = s;
    i.tick(t0 + Duration::from_secs(99), &mut spis);
    assert_eq!(i.state, State::Established);
    assert!(i
        .next_timer()
        .is_some_and(|t| t <= t0 + Duration::from_secs(100)));
    i.tick(t0 + Duration::from_secs(100), &mut spis);
    let (del, children, _) = sent(&mut i);
    assert_eq!((i.state, children), (State::Deleting, 1));
    assert!(i.children().is_empty() && i.stats.expired);
    r.handle(t0, path(2, 1), &del[0], &mut spis);
    let (_, _, other) = sent(&mut r);
    assert!(
        matches!(other[..], [Action::Closed(Close::DeletedByPeer)]),
        "{other:?}"
    );
}
