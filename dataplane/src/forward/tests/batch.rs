//! A burst's crypto batched: the same verdicts and bytes as packet by packet, each parked job
//! paired with its own packet, and the jobs grouped by SA.

use super::*;
use crate::burst::MAX_BURST;
use crate::forward::batch::{CryptoBatch, Job, OpenJob, SealJob};

/// A burst mixing outbound cleartext, inbound ESP (with a duplicate, a forged packet and a
/// packet for the gateway itself), run with batched crypto, gives exactly the verdicts and
/// bytes of the same packets run one by one; the duplicate in the same batch is caught when
/// the window is updated after the open.
#[test]
fn batched_crypto_matches_packet_by_packet() {
    for udp in [false, true] {
        let mut gw2 = gateway(false, udp, |_| {});
        let esp: Vec<Vec<u8>> = (0..4)
            .map(|i| {
                let f = frame(
                    GW2_LAN,
                    HOST_B,
                    "10.2.0.10",
                    "10.1.0.10",
                    64,
                    ipv4::PROTO_UDP,
                    &udp_payload(10 + 50 * i),
                );
                let (v, wire) = run(&mut gw2, 0, &f);
                assert_eq!(v, Verdict::Tx(1));
                wire
            })
            .collect();
        let mut forged = esp[2].clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        let ping = ping_gw1();
        let burst: Vec<(u16, Vec<u8>)> = vec![
            (0, a_to_b(64, 1)),
            (1, esp[0].clone()),
            (0, a_to_b(64, 200)),
            (1, esp[1].clone()),
            (1, esp[1].clone()),
            (1, forged),
            (0, ping),
            (0, a_to_b(64, 1000)),
            (1, esp[3].clone()),
            (1, esp[2].clone()),
        ];

        let mut one_by_one = gateway(true, udp, |_| {});
        let want: Vec<(Verdict, Vec<u8>)> = burst
            .iter()
            .map(|(port, b)| run(&mut one_by_one, *port, b))
            .collect();

        let mut batched = gateway(true, udp, |_| {});
        let (mut bufs, mut verdicts) = receive_batched(&mut batched, &burst);
        assert_eq!(
            verdicts
                .iter()
                .filter(|v| matches!(v, Verdict::Crypto(_)))
                .count(),
            9,
            "every ESP and tunnel packet waits for its batch"
        );
        batched.complete(&mut bufs, &mut verdicts);
        let got: Vec<Option<(Verdict, Vec<u8>)>> = verdicts
            .into_iter()
            .zip(&bufs)
            .map(|(v, b)| Some((v, b.data().to_vec())))
            .collect();
        for (i, (g, w)) in got.into_iter().zip(&want).enumerate() {
            let g = g.unwrap();
            assert_eq!(g.0, w.0, "packet {i} udp={udp}");
            if matches!(w.0, Verdict::Tx(_) | Verdict::Punt(_)) {
                assert_eq!(g.1, w.1, "packet {i} bytes udp={udp}");
            }
        }
        assert_eq!(want[4].0, Verdict::Drop(Stat::ReplayErrors));
        assert_eq!(want[5].0, Verdict::Drop(Stat::EspAuthFailures));
        for s in [
            Stat::EncryptedPackets,
            Stat::DecryptedPackets,
            Stat::ReplayErrors,
            Stat::EspAuthFailures,
            Stat::Punted,
        ] {
            assert_eq!(batched.stats.get(s), one_by_one.stats.get(s), "{s:?}");
        }
    }
}

/// A full burst with the parked packets at every odd position (the last, 31, among them)
/// leaves as packet by packet; and verdicts that name a parked job that does not exist (a
/// caller bug) fail every parked packet as a crypto error, never a wrong pairing.
#[test]
fn a_full_burst_maps_every_parked_packet_back() {
    let ping = ping_gw1();
    let burst: Vec<(u16, Vec<u8>)> = (0..MAX_BURST)
        .map(|i| {
            (
                0,
                if i % 2 == 0 {
                    ping.clone()
                } else {
                    a_to_b(64, 10 + i)
                },
            )
        })
        .collect();
    let mut one_by_one = gateway(true, false, |_| {});
    let want: Vec<(Verdict, Vec<u8>)> = burst
        .iter()
        .map(|(port, b)| run(&mut one_by_one, *port, b))
        .collect();
    let mut batched = gateway(true, false, |_| {});
    let (mut bufs, mut verdicts) = receive_batched(&mut batched, &burst);
    assert_eq!(verdicts[MAX_BURST - 1], Verdict::Crypto(Parked(15)));
    batched.complete(&mut bufs, &mut verdicts);
    for (i, ((v, b), (wv, wb))) in verdicts.iter().zip(&bufs).zip(&want).enumerate() {
        assert_eq!(v, wv, "packet {i}");
        assert_eq!(b.data(), &wb[..], "packet {i} bytes");
    }
    assert_eq!(want[1].0, Verdict::Tx(1));

    let mut gw = gateway(true, false, |_| {});
    let burst: Vec<(u16, Vec<u8>)> = (0..3).map(|i| (0, a_to_b(64, 10 + i))).collect();
    let (mut bufs, mut verdicts) = receive_batched(&mut gw, &burst);
    verdicts.push(Verdict::Crypto(Parked(3)));
    bufs.push(VecBuf::new(&ping));
    gw.complete(&mut bufs, &mut verdicts);
    assert_eq!(verdicts, vec![Verdict::Drop(Stat::CryptoErrors); 4]);
    assert_eq!(gw.stats.get(Stat::CryptoErrors), 4);
    assert!(!gw.has_parked(), "nothing is left parked");
}

/// An ICMP echo request from host a to gateway 1's LAN address.
fn ping_gw1() -> Vec<u8> {
    frame(
        GW1_LAN,
        HOST_A,
        "10.1.0.10",
        "10.1.0.1",
        64,
        ipv4::PROTO_ICMP,
        &[8, 0, 0xf7, 0xff, 0, 0, 0, 0],
    )
}

/// A burst of (port, frame) received with batching on, as a worker does: the buffers and
/// their verdicts, before `complete`.
fn receive_batched(gw: &mut Forwarder, burst: &[(u16, Vec<u8>)]) -> (Vec<VecBuf>, Vec<Verdict>) {
    let mut bufs: Vec<VecBuf> = burst.iter().map(|(_, b)| VecBuf::new(b)).collect();
    let verdicts = bufs
        .iter_mut()
        .zip(burst)
        .map(|(b, (port, _))| gw.receive(*port, b))
        .collect();
    (bufs, verdicts)
}

/// A burst's parked jobs group by SA in order of first appearance, each group holding exactly
/// its SA's jobs; a tunnel and an inbound index with the same number are different SAs; 32 jobs
/// of 32 SAs make 32 groups.
#[test]
fn parked_jobs_group_by_sa() {
    let prep = Prepared {
        offset: 0,
        len: 0,
        seq: 0,
    };
    let seal = |tunnel| {
        Job::Seal(SealJob {
            tunnel,
            port: 0,
            inner_len: 0,
            udp6: false,
        })
    };
    let open = |sa| {
        Job::Open(OpenJob {
            sa: InboundIndex(sa),
            esp_off: 0,
        })
    };
    let mut p = CryptoBatch::default();
    for job in [
        seal(7),
        open(7),
        seal(3),
        seal(7),
        open(7),
        seal(3),
        seal(9),
    ] {
        assert!(try_park(&mut p, prep, job).is_some());
    }
    let groups = p.groups();
    assert_eq!(
        groups.as_slice(),
        &[(0, 0b1001), (1, 0b10010), (2, 0b100100), (6, 0b1000000)]
    );

    let mut p = CryptoBatch::default();
    for t in 0..MAX_BURST as u32 {
        assert_eq!(
            try_park(&mut p, prep, seal(t * 1024)),
            Some(Parked(t as u8))
        );
    }
    assert!(
        try_park(&mut p, prep, seal(0)).is_none(),
        "a full batch takes no more"
    );
    let groups = p.groups();
    assert_eq!(groups.len(), MAX_BURST);
    // A burst over as many tunnels as packets goes to the queue pair on the filter's count
    // alone (more SAs than a third of the packets), without being grouped.
    let (mixed, at_least) = p.spread();
    assert!(mixed && at_least as usize * 3 > MAX_BURST, "{at_least}");
    for (j, &(first, members)) in groups.iter().enumerate() {
        assert_eq!((first, members), (j, 1 << j));
    }
    // One SA: one group of everything parked, from 1 job to a full batch.
    for n in [1, 2, 31, MAX_BURST] {
        let mut p = CryptoBatch::default();
        for _ in 0..n {
            assert!(try_park(&mut p, prep, open(5)).is_some());
        }
        let all = (u64::MAX >> (64 - n)) as u32;
        assert_eq!(p.groups().as_slice(), &[(0, all)], "{n} jobs");
    }
    // The same number as a tunnel and as an inbound index: two SAs.
    let mut p = CryptoBatch::default();
    assert!(try_park(&mut p, prep, seal(3)).is_some() && try_park(&mut p, prep, open(3)).is_some());
    assert_eq!(p.groups().as_slice(), &[(0, 0b1), (1, 0b10)]);
    // While the batch is being finished, nothing more is parked: it runs at once.
    p.finishing();
    assert!(try_park(&mut p, prep, seal(4)).is_none());
    p.clear();
    assert_eq!(try_park(&mut p, prep, seal(4)), Some(Parked(0)));
}

/// `locate` finds each parked job's packet, and refuses verdicts that name jobs out of order,
/// twice, or not at all.
#[test]
fn parked_jobs_are_located_by_their_verdicts() {
    let prep = Prepared {
        offset: 0,
        len: 0,
        seq: 0,
    };
    let job = Job::Open(OpenJob {
        sa: InboundIndex(1),
        esp_off: 0,
    });
    let mut p = CryptoBatch::default();
    for _ in 0..3 {
        assert!(try_park(&mut p, prep, job).is_some());
    }
    let at = |v: &[Option<u8>]| -> Vec<Verdict> {
        v.iter()
            .map(|k| match k {
                Some(k) => Verdict::Crypto(Parked(*k)),
                None => Verdict::Tx(0),
            })
            .collect()
    };
    let pos = p
        .locate(&at(&[None, Some(0), None, Some(1), Some(2)]))
        .unwrap();
    assert_eq!(&pos[..3], &[1, 3, 4]);
    assert!(
        p.locate(&at(&[Some(1), Some(0), Some(2)])).is_none(),
        "out of order"
    );
    assert!(
        p.locate(&at(&[Some(0), Some(0), Some(1)])).is_none(),
        "twice"
    );
    assert!(p.locate(&at(&[Some(0), Some(1)])).is_none(), "one missing");
    assert!(
        p.locate(&at(&[Some(0), Some(1), Some(2), Some(3)]))
            .is_none(),
        "one too many"
    );
}

proptest! {
    /// `groups` agrees with the obvious scan on any batch: colliding and wrapping probes,
    /// runs, interleavings and full batches alike.
    #[test]
    fn groups_match_a_plain_scan(
        sas in prop::collection::vec((any::<bool>(), 0u32..6), 0..=MAX_BURST),
        spread in any::<u32>(),
    ) {
        let mut p = CryptoBatch::default();
        let mut jobs = Vec::new();
        for &(seal, sa) in &sas {
            // A few SAs, spread far apart or packed, so that probes collide and wrap.
            let sa = sa.wrapping_mul(spread | 1);
            let job = if seal {
                Job::Seal(SealJob { tunnel: sa, port: 0, inner_len: 0, udp6: false })
            } else {
                Job::Open(OpenJob { sa: InboundIndex(sa), esp_off: 0 })
            };
            let prep = Prepared { offset: 0, len: 0, seq: 0 };
            prop_assert!(try_park(&mut p, prep, job).is_some());
            jobs.push(job);
        }
        let mut expect: Vec<(usize, u32)> = Vec::new();
        for j in 0..jobs.len() {
            match expect.iter_mut().find(|(first, _)| jobs[*first] == jobs[j]) {
                Some(g) => g.1 |= 1 << j,
                None => expect.push((j, 1 << j)),
            }
        }
        let got = p.groups();
        prop_assert_eq!(got.as_slice(), expect.as_slice());
        // `spread`: mixed exactly when there are several groups, and never more SAs than
        // there are.
        let (mixed, at_least) = p.spread();
        prop_assert_eq!(mixed, expect.len() > 1);
        prop_assert!(at_least as usize <= expect.len().max(1));
        prop_assert!(at_least >= 1 || sas.is_empty());
    }
}

/// Parks as the forwarder does: only when the batch can take the job.
fn try_park(p: &mut CryptoBatch, prep: Prepared, job: Job) -> Option<Parked> {
    p.can_park().then(|| p.park(prep, job))
}
