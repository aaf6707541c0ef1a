//! Two IKE SAs talking to each other with no network: what one sends is what the other
//! handles, the clock is a variable.

use super::*;
use crate::ike::proposal::{parse_esp, parse_ike};
use crate::ike::selectors::of_prefix;
use crate::ike::wire::Id;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) struct Counter(pub(super) u32);
impl SpiSource for Counter {
    fn next_spi(&mut self) -> u32 {
        self.0 += 1;
        self.0
    }
}

pub(super) fn settings(me: &str, peer: &str, mine: &str, theirs: &str, esp: &str) -> Arc<Settings> {
    Arc::new(Settings {
        ike: vec![parse_ike("aes256gcm16-prfsha256-ecp256").unwrap()],
        esp: vec![parse_esp(esp).unwrap()],
        auth: Auth::Psk(zeroize::Zeroizing::new(b"sa test key".to_vec())),
        local_id: Id {
            kind: 2,
            data: me.as_bytes().to_vec(),
        },
        remote_id: Identity::Fqdn(peer.into()),
        children: vec![ChildSelectors {
            local: vec![of_prefix(mine.parse::<ipnet::IpNet>().unwrap())],
            remote: vec![of_prefix(theirs.parse::<ipnet::IpNet>().unwrap())],
        }],
        force_encap: false,
        fragment_size: Some(1280),
        retransmit: Retransmit {
            timeout: Duration::from_secs(1),
            base: 2.0,
            tries: 3,
        },
        dpd: Some(Duration::from_secs(10)),
        dpd_threshold: 3,
        child_rekey: None,
        ike_rekey: None,
        ike_lifetime: None,
        child_lifetime: None,
        grace: Duration::from_secs(2),
    })
}

pub(super) fn path(a: u8, b: u8) -> Path {
    Path {
        local: format!("192.0.2.{a}:500").parse().unwrap(),
        remote: format!("192.0.2.{b}:500").parse().unwrap(),
    }
}

/// Everything `sa` wants sent, and how many `Children` changes it announced.
pub(super) fn sent(sa: &mut IkeSa) -> (Vec<Vec<u8>>, usize, Vec<Action>) {
    let mut out = Vec::new();
    let mut children = 0;
    let mut other = Vec::new();
    for a in sa.actions() {
        match a {
            Action::Send { bytes, .. } => out.push(bytes),
            Action::Children => children += 1,
            a => other.push(a),
        }
    }
    (out, children, other)
}

/// An initiator and a responder, established, with one child each.
pub(super) fn pair(t0: Instant, esp: &str) -> (IkeSa, IkeSa, Counter) {
    let si = settings("a.example", "b.example", "10.1.0.0/16", "10.2.0.0/16", esp);
    let sr = settings("b.example", "a.example", "10.2.0.0/16", "10.1.0.0/16", esp);
    pair_of(t0, si, sr)
}

/// `pair` with the given settings on each side.
pub(super) fn pair_of(
    t0: Instant,
    si: Arc<Settings>,
    sr: Arc<Settings>,
) -> (IkeSa, IkeSa, Counter) {
    let mut spis = Counter(0x1000);
    let mut i = IkeSa::initiate(si, path(1, 2), t0);
    let (req, _, _) = sent(&mut i);
    let mut r = IkeSa::respond(Arc::new(Candidates::new(vec![sr])), path(2, 1), &req[0], t0)
        .unwrap_or_else(|_| panic!("refused"));
    let (resp, _, _) = sent(&mut r);
    i.handle(t0, path(1, 2), &resp[0], &mut spis);
    let (auth, _, _) = sent(&mut i);
    r.handle(t0, path(2, 1), &auth[0], &mut spis);
    let (auth_resp, rc, _) = sent(&mut r);
    assert_eq!(rc, 1, "the responder's child before its answer");
    i.handle(t0, path(1, 2), &auth_resp[0], &mut spis);
    assert_eq!(i.state, State::Established);
    assert_eq!(r.state, State::Established);
    let _ = sent(&mut i);
    (i, r, spis)
}

#[test]
fn two_sas_establish_and_a_repeated_request_is_answered_from_the_cache() {
    let t0 = Instant::now();
    let (mut i, mut r, mut spis) = pair(t0, "aes128gcm16");
    let (ic, rc) = (&i.children()[0], &r.children()[0]);
    assert_eq!(ic.sa.outbound_spi, rc.sa.inbound_spi);
    assert_eq!(*ic.sa.outbound_key, *rc.sa.inbound_key);
    assert!(ic.outbound && rc.outbound);
    // A liveness check after 10 s of silence; the peer answers it.
    let t = t0 + Duration::from_secs(11);
    i.tick(t, &mut spis);
    let (dpd, _, _) = sent(&mut i);
    assert_eq!(dpd.len(), 1);
    r.handle(t, path(2, 1), &dpd[0], &mut spis);
    let (answer, _, _) = sent(&mut r);
    // The request again (our answer was lost): the same answer, byte for byte.
    r.handle(t, path(2, 1), &dpd[0], &mut spis);
    let (again, _, _) = sent(&mut r);
    assert_eq!(answer, again);
    assert_eq!(r.stats.duplicates_answered, 1);
    i.handle(t, path(1, 2), &answer[0], &mut spis);
    assert_eq!(i.stats.dpd_sent, 1);
    // Answered: nothing more to send before the next interval.
    i.tick(t + Duration::from_secs(5), &mut spis);
    assert!(sent(&mut i).0.is_empty());
    // The next check with a changed byte: refused, nothing changes; then the real one is
    // answered.
    let t = t + Duration::from_secs(20);
    i.tick(t, &mut spis);
    let (dpd, _, _) = sent(&mut i);
    let mut bad = dpd[0].clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    let before = r.stats.exchanges;
    r.handle(t, path(2, 1), &bad, &mut spis);
    assert!(sent(&mut r).0.is_empty());
    assert_eq!((r.stats.exchanges, r.stats.invalid), (before, 1));
    r.handle(t, path(2, 1), &dpd[0], &mut spis);
    assert_eq!(sent(&mut r).0.len(), 1);
}

#[test]
fn a_dead_peer_is_found_by_retransmissions_running_out() {
    let t0 = Instant::now();
    let (mut i, _r, mut spis) = pair(t0, "aes128gcm16");
    let mut t = t0 + Duration::from_secs(10);
    let mut sends = 0;
    let mut closed = None;
    // A check at 10 s of silence, again each 10 s interval; the third unanswered one is
    // the threshold: dead at 40 s.
    for _ in 0..60 {
        i.tick(t, &mut spis);
        let (s, children, other) = sent(&mut i);
        sends += s.len();
        if let Some(Action::Closed(c)) = other.into_iter().next() {
            assert_eq!(children, 1, "the children go with it");
            closed = Some((c, t - t0));
            break;
        }
        t += Duration::from_secs(1);
    }
    let (why, after) = closed.expect("closed");
    assert_eq!(why, Close::Timeout);
    assert_eq!(sends, 3);
    assert_eq!(i.stats.retransmits, 2);
    assert_eq!(after, Duration::from_secs(40));
    assert!(i.children().is_empty());
}

#[test]
fn a_delete_closes_both_sides() {
    let t0 = Instant::now();
    let (mut i, mut r, mut spis) = pair(t0, "aes128gcm16");
    r.delete(t0);
    let (req, rc, _) = sent(&mut r);
    assert_eq!(rc, 1);
    i.handle(t0, path(1, 2), &req[0], &mut spis);
    let (resp, ic, other) = sent(&mut i);
    assert_eq!(ic, 1);
    assert!(matches!(other[..], [Action::Closed(Close::DeletedByPeer)]));
    r.handle(t0, path(2, 1), &resp[0], &mut spis);
    let (_, _, other) = sent(&mut r);
    assert!(matches!(other[..], [Action::Closed(Close::Deleted)]));
    assert_eq!((i.state, r.state), (State::Closed, State::Closed));
}

#[test]
fn a_wrong_key_fails_on_both_sides_and_leaves_no_child() {
    let t0 = Instant::now();
    let mut spis = Counter(1);
    let si = settings(
        "a.example",
        "b.example",
        "10.1.0.0/16",
        "10.2.0.0/16",
        "aes128gcm16",
    );
    let mut sr = settings(
        "b.example",
        "a.example",
        "10.2.0.0/16",
        "10.1.0.0/16",
        "aes128gcm16",
    );
    if let Some(s) = Arc::get_mut(&mut sr) {
        s.auth = Auth::Psk(zeroize::Zeroizing::new(b"another key".to_vec()));
    }
    let mut i = IkeSa::initiate(si, path(1, 2), t0);
    let (req, _, _) = sent(&mut i);
    let mut r = IkeSa::respond(Arc::new(Candidates::new(vec![sr])), path(2, 1), &req[0], t0)
        .unwrap_or_else(|_| panic!());
    let (resp, _, _) = sent(&mut r);
    i.handle(t0, path(1, 2), &resp[0], &mut spis);
    let (auth, _, _) = sent(&mut i);
    r.handle(t0, path(2, 1), &auth[0], &mut spis);
    let (fail, rc, other) = sent(&mut r);
    assert_eq!(rc, 0);
    assert!(
        matches!(&other[..], [Action::Closed(Close::Failed(s))] if s == "AUTHENTICATION_FAILED: wrong pre-shared key")
    );
    i.handle(t0, path(1, 2), &fail[0], &mut spis);
    let (_, ic, other) = sent(&mut i);
    assert_eq!(ic, 0);
    assert!(
        matches!(&other[..], [Action::Closed(Close::Failed(s))] if s == "AUTHENTICATION_FAILED")
    );
    assert!(i.children().is_empty() && r.children().is_empty());
}

#[test]
fn an_invalid_ke_payload_is_retried_in_the_group_asked_for() {
    let t0 = Instant::now();
    let mut spis = Counter(1);
    let mk = |ike: &str, me: &str, peer: &str, a: &str, b: &str| {
        let mut s = settings(me, peer, a, b, "aes128gcm16");
        if let Some(s) = Arc::get_mut(&mut s) {
            s.ike = vec![parse_ike(ike).unwrap()];
        }
        s
    };
    let si = mk(
        "aes256gcm16-prfsha256-ecp256-x25519",
        "a.example",
        "b.example",
        "10.1.0.0/16",
        "10.2.0.0/16",
    );
    let sr = mk(
        "aes256gcm16-prfsha256-x25519",
        "b.example",
        "a.example",
        "10.2.0.0/16",
        "10.1.0.0/16",
    );
    let mut i = IkeSa::initiate(si, path(1, 2), t0);
    let (req, _, _) = sent(&mut i);
    let Err(refusal) = IkeSa::respond(
        Arc::new(Candidates::new(vec![sr.clone()])),
        path(2, 1),
        &req[0],
        t0,
    ) else {
        panic!("a KE in the wrong group accepted")
    };
    let Some(Action::Send { bytes, .. }) = refusal.into_iter().next() else {
        panic!("no INVALID_KE_PAYLOAD")
    };
    i.handle(t0, path(1, 2), &bytes, &mut spis);
    let (req2, _, _) = sent(&mut i);
    assert_eq!(req2.len(), 1);
    assert!(IkeSa::respond(
        Arc::new(Candidates::new(vec![sr])),
        path(2, 1),
        &req2[0],
        t0
    )
    .is_ok());
}

/// What an SA is, as far as any message could change it.
fn snapshot(sa: &IkeSa) -> String {
    format!(
        "{:?} {:?} {} {} {:?} {:?} {} {}",
        sa.state,
        sa.path,
        sa.next_id,
        sa.peer_next,
        sa.cached.as_ref().map(|c| c.0),
        sa.out.as_ref().map(|o| o.id),
        sa.children
            .iter()
            .map(|c| format!(
                "{:x}/{:x}/{}",
                c.sa.inbound_spi, c.sa.outbound_spi, c.outbound
            ))
            .collect::<Vec<_>>()
            .join(","),
        sa.stats.exchanges
    )
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    /// A genuine request from an established pair: `pick` says which (a liveness check, a
    /// child rekey or a delete, from either side); the pair after it is sent.
    fn genuine(pick: usize) -> (IkeSa, IkeSa, Counter, Vec<u8>, bool) {
        let t0 = Instant::now();
        let (mut i, mut r, mut spis) = pair(t0, "aes128gcm16");
        let from_i = pick % 2 == 0;
        let t = t0 + Duration::from_secs(11);
        {
            let a = if from_i { &mut i } else { &mut r };
            match pick / 2 % 3 {
                0 => a.tick(t, &mut spis),
                1 => {
                    let inb = a.children()[0].sa.inbound_spi;
                    a.rekey_child(t, inb, &mut spis);
                }
                _ => a.delete(t),
            }
        }
        let a = if from_i { &mut i } else { &mut r };
        let (m, _, _) = sent(a);
        (i, r, spis, m.into_iter().next().unwrap_or_default(), from_i)
    }

    /// The property below means something: each genuine request does change its receiver.
    #[test]
    fn genuine_requests_change_their_receiver() {
        for pick in 0..6 {
            let t0 = Instant::now();
            let (mut i, mut r, mut spis, m, from_i) = genuine(pick);
            let (to, p) = if from_i {
                (&mut r, path(2, 1))
            } else {
                (&mut i, path(1, 2))
            };
            let before = snapshot(to);
            to.handle(t0, p, &m, &mut spis);
            assert_ne!(snapshot(to), before, "pick {pick}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// No input panics an established SA on either side, and a message that is not
        /// genuine (random bytes, or a genuine one with bytes changed or cut) changes nothing.
        #[test]
        fn mangled_messages_change_nothing(
            pick in 0usize..6,
            flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 1..4),
            cut in proptest::option::of(any::<usize>()),
            random in proptest::collection::vec(any::<u8>(), 0..300),
            use_random: bool,
        ) {
            let t0 = Instant::now();
            let (mut i, mut r, mut spis, genuine, from_i) = genuine(pick);
            let mut m = if use_random { random } else { genuine };
            if !use_random && !m.is_empty() {
                for (at, x) in &flips {
                    let n = m.len();
                    m[at % n] ^= x;
                }
                if let Some(cut) = cut {
                    let n = m.len();
                    m.truncate(cut % n);
                }
            }
            let (bi, br) = (snapshot(&i), snapshot(&r));
            let (to, p) = if from_i { (&mut r, path(2, 1)) } else { (&mut i, path(1, 2)) };
            to.handle(t0, p, &m, &mut spis);
            for a in to.actions() {
                prop_assert!(false, "an action from a mangled message: {a:?}");
            }
            prop_assert_eq!(snapshot(&i), bi);
            prop_assert_eq!(snapshot(&r), br);
        }
    }
}

/// Behind a NAT (the responder sees us at another address than ours), the initiator sends
/// a keepalive after 20 s without sending anything; the responder, not behind one, does not.
#[test]
fn behind_a_nat_keepalives_keep_the_mapping_open() {
    let t0 = Instant::now();
    let mut spis = Counter(1);
    let si = settings(
        "a.example",
        "b.example",
        "10.1.0.0/16",
        "10.2.0.0/16",
        "aes128gcm16",
    );
    let sr = settings(
        "b.example",
        "a.example",
        "10.2.0.0/16",
        "10.1.0.0/16",
        "aes128gcm16",
    );
    let mut i = IkeSa::initiate(si, path(1, 2), t0);
    let (req, _, _) = sent(&mut i);
    // The NAT: the responder sees the initiator as 198.51.100.7:31000.
    let natted = Path {
        local: "192.0.2.2:500".parse().unwrap(),
        remote: "198.51.100.7:31000".parse().unwrap(),
    };
    let mut r = IkeSa::respond(Arc::new(Candidates::new(vec![sr])), natted, &req[0], t0)
        .unwrap_or_else(|_| panic!());
    assert!(r.nat && !r.behind_nat);
    let (resp, _, _) = sent(&mut r);
    i.handle(t0, path(1, 2), &resp[0], &mut spis);
    assert!(i.nat && i.behind_nat);
    assert_eq!(i.path.local.port(), 4500, "floated");
    let (auth, _, _) = sent(&mut i);
    let natted = Path {
        local: "192.0.2.2:4500".parse().unwrap(),
        remote: "198.51.100.7:31001".parse().unwrap(),
    };
    r.handle(t0, natted, &auth[0], &mut spis);
    let (ar, _, _) = sent(&mut r);
    i.handle(t0, path(1, 2), &ar[0], &mut spis);
    assert_eq!(i.state, State::Established);
    assert_eq!(
        r.path.remote.port(),
        31001,
        "the responder follows the NAT's port"
    );
    let mut s = settings("a", "b", "10.1.0.0/16", "10.2.0.0/16", "aes128gcm16");
    if let Some(s) = Arc::get_mut(&mut s) {
        s.dpd = None;
    }
    i.settings = s;
    i.tick(t0 + Duration::from_secs(19), &mut spis);
    assert!(sent(&mut i).0.is_empty());
    i.tick(t0 + Duration::from_secs(20), &mut spis);
    assert_eq!(sent(&mut i).0, vec![vec![0xffu8]]);
    r.tick(t0 + Duration::from_secs(20), &mut spis);
    assert!(!sent(&mut r).0.contains(&vec![0xff]));
}

/// `settings` with IKE fragments of at most `size` bytes (`None`: fragmentation not offered).
fn fragmenting(me: &str, peer: &str, mine: &str, theirs: &str, size: Option<u16>) -> Arc<Settings> {
    let s = settings(me, peer, mine, theirs, "aes256gcm16-x25519");
    Arc::new(Settings {
        ike: s.ike.clone(),
        esp: s.esp.clone(),
        auth: s.auth.clone(),
        local_id: s.local_id.clone(),
        remote_id: s.remote_id.clone(),
        children: s.children.clone(),
        fragment_size: size,
        ..*s
    })
}

/// Both sides offer IKE fragmentation with tiny fragments: IKE_AUTH and a PFS rekey go in
/// fragments both ways, taken in any order, and come out as they would whole; a repeated
/// request is answered with every fragment of the cached answer again.
#[test]
fn big_messages_go_in_fragments_when_both_sides_agreed() {
    let t0 = Instant::now();
    let si = fragmenting(
        "a.example",
        "b.example",
        "10.1.0.0/16",
        "10.2.0.0/16",
        Some(180),
    );
    let sr = fragmenting(
        "b.example",
        "a.example",
        "10.2.0.0/16",
        "10.1.0.0/16",
        Some(180),
    );
    let mut spis = Counter(0x1000);
    let mut i = IkeSa::initiate(si, path(1, 2), t0);
    let (req, _, _) = sent(&mut i);
    let mut r = IkeSa::respond(Arc::new(Candidates::new(vec![sr])), path(2, 1), &req[0], t0)
        .unwrap_or_else(|_| panic!("refused"));
    let (resp, _, _) = sent(&mut r);
    i.handle(t0, path(1, 2), &resp[0], &mut spis);
    let (auth, _, _) = sent(&mut i);
    assert!(auth.len() >= 2, "IKE_AUTH in {} datagrams", auth.len());
    assert!(auth.iter().all(|f| f.len() <= 180 - 32));
    // Backwards: nothing happens until the last one (the first) is in.
    for f in auth.iter().rev() {
        assert_eq!(r.state, State::Authenticating);
        r.handle(t0, path(2, 1), f, &mut spis);
    }
    assert_eq!(r.state, State::Established);
    let (answer, _, _) = sent(&mut r);
    assert!(answer.len() >= 2);
    // The request again (our answer was lost): all of the answer again, once.
    for f in &auth {
        r.handle(t0, path(2, 1), f, &mut spis);
    }
    let (again, _, _) = sent(&mut r);
    assert_eq!(again, answer);
    for f in &answer {
        i.handle(t0, path(1, 2), f, &mut spis);
    }
    assert_eq!(i.state, State::Established);
    let _ = sent(&mut i);
    assert_eq!(
        i.children()[0].sa.outbound_key,
        r.children()[0].sa.inbound_key
    );
    assert_eq!((i.stats.fragmented, r.stats.reassembled), (1, 1));
    assert_eq!((r.stats.fragmented, i.stats.reassembled), (1, 1));
    // A PFS rekey: its KE makes it big too.
    let old = i.children()[0].sa.inbound_spi;
    assert!(i.rekey_child(t0, old, &mut spis));
    let (rekey, _, _) = sent(&mut i);
    assert!(rekey.len() >= 2);
    for f in &rekey {
        r.handle(t0, path(2, 1), f, &mut spis);
    }
    let (rekey_answer, _, _) = sent(&mut r);
    for f in &rekey_answer {
        i.handle(t0, path(1, 2), f, &mut spis);
    }
    assert_eq!(i.stats.child_rekeys, 1);
    let new = i.children().iter().find(|c| c.outbound).unwrap();
    assert!(r
        .children()
        .iter()
        .any(|c| c.sa.inbound_key == new.sa.outbound_key));
}

/// A peer that does not offer fragmentation gets whole messages, however small our
/// fragment size, and fragments from it are refused.
#[test]
fn without_the_peers_agreement_nothing_is_fragmented() {
    let t0 = Instant::now();
    let si = fragmenting(
        "a.example",
        "b.example",
        "10.1.0.0/16",
        "10.2.0.0/16",
        Some(256),
    );
    let sr = fragmenting("b.example", "a.example", "10.2.0.0/16", "10.1.0.0/16", None);
    let mut spis = Counter(0x1000);
    let mut i = IkeSa::initiate(si, path(1, 2), t0);
    let (req, _, _) = sent(&mut i);
    let mut r = IkeSa::respond(Arc::new(Candidates::new(vec![sr])), path(2, 1), &req[0], t0)
        .unwrap_or_else(|_| panic!("refused"));
    let (resp, _, _) = sent(&mut r);
    i.handle(t0, path(1, 2), &resp[0], &mut spis);
    let (auth, _, _) = sent(&mut i);
    assert_eq!(auth.len(), 1);
    r.handle(t0, path(2, 1), &auth[0], &mut spis);
    assert_eq!(r.state, State::Established);
    assert_eq!((i.stats.fragmented, r.stats.reassembled), (0, 0));
}

/// Delivers what every SA of each side has to send to the SA of the other side its SPIs
/// name, until nothing more is sent; the other actions, in the order they came.
pub(super) fn exchange(
    a: &mut [&mut IkeSa],
    b: &mut [&mut IkeSa],
    t: Instant,
    spis: &mut Counter,
) -> Vec<Action> {
    /// Hands each datagram to the SA its SPIs name.
    fn deliver(
        sends: Vec<Vec<u8>>,
        to: &mut [&mut IkeSa],
        p: Path,
        t: Instant,
        spis: &mut Counter,
    ) {
        for bytes in sends {
            let h = Message::parse(&bytes).unwrap().header;
            if let Some(sa) = to
                .iter_mut()
                .find(|s| (s.spi_i, s.spi_r) == (h.initiator_spi, h.responder_spi))
            {
                sa.handle(t, p, &bytes, spis);
            }
        }
    }
    let mut events = Vec::new();
    let drain = |side: &mut [&mut IkeSa], events: &mut Vec<Action>| -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for s in side.iter_mut() {
            let (sends, _, other) = sent(s);
            out.extend(sends);
            events.extend(other);
        }
        out
    };
    for _ in 0..8 {
        let from_a = drain(a, &mut events);
        let quiet = from_a.is_empty();
        deliver(from_a, b, path(2, 1), t, spis);
        let from_b = drain(b, &mut events);
        if quiet && from_b.is_empty() {
            break;
        }
        deliver(from_b, a, path(1, 2), t, spis);
    }
    events
}

/// Over IPv6, IKE fragments leave room for the 40-byte IPv6 header: a datagram stays within
/// `fragment_size` as over IPv4 (where the same message's fragments are 20 bytes longer).
#[test]
fn ipv6_fragments_fit_the_fragment_size_with_their_ipv6_header() {
    let t0 = Instant::now();
    let s = |me, peer, mine, theirs| fragmenting(me, peer, mine, theirs, Some(180));
    let v6 = |a: u8, b: u8| Path {
        local: format!("[2001:db8::{a}]:500").parse().unwrap(),
        remote: format!("[2001:db8::{b}]:500").parse().unwrap(),
    };
    let mut longest = Vec::new();
    for (pi, pr) in [(path(1, 2), path(2, 1)), (v6(1, 2), v6(2, 1))] {
        let mut spis = Counter(0x1000);
        let si = s("a.example", "b.example", "10.1.0.0/16", "10.2.0.0/16");
        let sr = s("b.example", "a.example", "10.2.0.0/16", "10.1.0.0/16");
        let mut i = IkeSa::initiate(si, pi, t0);
        let (req, _, _) = sent(&mut i);
        let mut r = IkeSa::respond(Arc::new(Candidates::new(vec![sr])), pr, &req[0], t0)
            .unwrap_or_else(|_| panic!("refused"));
        let (resp, _, _) = sent(&mut r);
        i.handle(t0, pi, &resp[0], &mut spis);
        let (auth, _, _) = sent(&mut i);
        assert!(auth.len() >= 2);
        longest.push(auth.iter().map(Vec::len).max().unwrap());
    }
    // IP header, UDP, the non-ESP marker: 20 + 8 + 4 over IPv4, 40 + 8 + 4 over IPv6.
    assert!(
        longest[0] <= 180 - 32 && longest[0] > 180 - 52,
        "{longest:?}"
    );
    assert!(longest[1] <= 180 - 52, "{longest:?}");
}
