use super::*;
use proptest::prelude::*;

fn site(l: u8, r: u8) -> Peer {
    Peer::Site {
        local: std::net::Ipv4Addr::new(192, 0, 2, l).into(),
        remote: std::net::Ipv4Addr::new(198, 51, 100, r).into(),
    }
}

fn tunnels_per_group(a: &Anchors) -> Vec<u32> {
    (0..a.groups()).map(|g| a.tunnels_in(g)).collect()
}

/// Juniper's example: 3 SPUs, 3 IKE gateways with 3, 3 and 1 tunnels: every gateway's
/// tunnels stay on one SPU, the gateways spread by load factor: 3/3/1.
#[test]
fn juniper_three_spus_three_gateways_seven_tunnels() {
    let gateways = [(site(1, 1), 3), (site(1, 2), 3), (site(1, 3), 1)];
    // In gateway order, and interleaved as tunnels come up in real life.
    let in_order: Vec<Peer> = gateways
        .iter()
        .flat_map(|&(p, n)| std::iter::repeat_n(p, n))
        .collect();
    let interleaved = vec![
        site(1, 1),
        site(1, 2),
        site(1, 3),
        site(1, 1),
        site(1, 2),
        site(1, 1),
        site(1, 2),
    ];
    for order in [in_order, interleaved] {
        let mut a = Anchors::new(&[vec![1], vec![2], vec![3]]).unwrap();
        let placed: Vec<Placement> = order
            .iter()
            .enumerate()
            .map(|(t, &p)| a.place(t as u32, p))
            .collect();
        assert_eq!(tunnels_per_group(&a), vec![3, 3, 1]);
        for (t, &p) in order.iter().enumerate() {
            let same_gw: Vec<usize> = (0..order.len())
                .filter(|&u| order[u] == p)
                .map(|u| placed[u].group)
                .collect();
            assert!(
                same_gw.iter().all(|&g| g == placed[t].group),
                "one gateway, one SPU"
            );
        }
        assert_eq!(
            [a.load_factor(0), a.load_factor(1), a.load_factor(2)],
            [3.0, 3.0, 1.0]
        );
    }
}

#[test]
fn one_gateway_pair_spreads_over_the_workers_of_its_group() {
    let mut a = Anchors::new(&[vec![1, 2], vec![3, 4]]).unwrap();
    let w: Vec<Lcore> = (0..4).map(|t| a.place(t, site(1, 1)).worker).collect();
    assert_eq!(w, vec![1, 2, 1, 2]);
    assert_eq!(tunnels_per_group(&a), vec![4, 0]);
    // Another pair goes to the lighter group.
    assert_eq!(
        a.place(10, site(1, 2)),
        Placement {
            group: 1,
            worker: 3
        }
    );
}

#[test]
fn load_factor_weighs_group_size() {
    // Group 0 has one worker, group 1 three: after one tunnel each, group 1 (1/3) is lighter
    // than group 0 (1/1), so the next two pairs go to group 1.
    let mut a = Anchors::new(&[vec![1], vec![2, 3, 4]]).unwrap();
    let g: Vec<usize> = (0..5).map(|t| a.place(t, site(1, t as u8)).group).collect();
    assert_eq!(g, vec![0, 1, 1, 1, 0]);
    assert_eq!(a.workers(1), &[(2, 1), (3, 1), (4, 1)]);
}

#[test]
fn dynamic_tunnels_go_round_robin() {
    let mut a = Anchors::new(&[vec![1], vec![2], vec![3]]).unwrap();
    a.place(100, site(1, 1));
    a.place(101, site(1, 1));
    let g: Vec<usize> = (0..5).map(|t| a.place(t, Peer::Dynamic).group).collect();
    assert_eq!(g, vec![0, 1, 2, 0, 1], "regardless of load");
}

#[test]
fn placements_never_move() {
    let mut a = Anchors::new(&[vec![1, 2]]).unwrap();
    let before: Vec<Placement> = (0..6).map(|t| a.place(t, site(1, t as u8 % 2))).collect();
    a.add_worker(0, 5).unwrap();
    a.add_group(&[7, 8]).unwrap();
    for t in 0..6 {
        assert_eq!(a.placement(t), Some(before[t as usize]));
        assert_eq!(
            a.place(t, site(9, 9)),
            before[t as usize],
            "placing again (rekey) changes nothing"
        );
    }
    // New work goes to the new, empty capacity.
    assert_eq!(a.place(50, site(3, 3)).group, 1);
    assert_eq!(
        a.place(51, site(1, 0)).worker,
        5,
        "same pair: group 0, its idle new worker"
    );
}

#[test]
fn removing_the_last_tunnel_of_a_pair_drops_its_affinity() {
    let mut a = Anchors::new(&[vec![1], vec![2]]).unwrap();
    assert_eq!(a.place(0, site(1, 1)).group, 0);
    assert_eq!(a.place(1, site(1, 2)).group, 1);
    assert_eq!(a.place(2, site(1, 1)).group, 0);
    assert_eq!(a.remove(0).map(|p| p.group), Some(0));
    assert_eq!(
        a.place(3, site(1, 1)).group,
        0,
        "tunnel 2 still holds the pair on group 0"
    );
    a.remove(2);
    a.remove(3);
    assert_eq!(a.remove(3), None);
    // Group 0 now holds two tunnels of another pair, group 1 one: a remembered (1, 1) would
    // go back to group 0, a forgotten one goes by load to group 1.
    assert_eq!(a.place(4, site(2, 2)).group, 0);
    assert_eq!(a.place(6, site(2, 2)).group, 0);
    assert_eq!(
        a.place(5, site(1, 1)).group,
        1,
        "pair forgotten: placed by load again"
    );
}

#[test]
fn bad_groups_are_rejected() {
    assert_eq!(Anchors::new(&[]).err(), Some(AnchorError::NoGroups));
    assert_eq!(
        Anchors::new(&[vec![1], vec![]]).err(),
        Some(AnchorError::EmptyGroup(1))
    );
    assert_eq!(
        Anchors::new(&[vec![1], vec![1]]).err(),
        Some(AnchorError::DuplicateWorker(1))
    );
    assert_eq!(
        Anchors::new(&[vec![2, 2]]).err(),
        Some(AnchorError::DuplicateWorker(2))
    );
}

proptest! {
    /// When placement is free (every tunnel its own gateway pair), no group's load factor
    /// exceeds the minimum by more than one tunnel per worker of the largest step, and
    /// inside a group the workers differ by at most one tunnel.
    #[test]
    fn load_factors_stay_within_one_tunnel_per_worker(
        sizes in prop::collection::vec(1usize..5, 1..6),
        n in 1u32..200,
    ) {
        let mut next = 0;
        let groups: Vec<Vec<Lcore>> = sizes.iter().map(|&s| { let g = (next..next + s as u32).collect(); next += s as u32; g }).collect();
        let mut a = Anchors::new(&groups).unwrap();
        let step = sizes.iter().map(|&s| 1.0 / s as f64).fold(0.0, f64::max);
        for t in 0..n {
            a.place(t, Peer::Site { local: std::net::Ipv4Addr::new(192, 0, 2, 1).into(), remote: std::net::Ipv4Addr::from(t).into() });
            let lf: Vec<f64> = (0..a.groups()).map(|g| a.load_factor(g)).collect();
            let (lo, hi) = lf.iter().fold((f64::MAX, 0.0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
            prop_assert!(hi - lo <= step + 1e-9, "{lf:?} after {t}");
            for g in 0..a.groups() {
                let counts: Vec<u32> = a.workers(g).iter().map(|w| w.1).collect();
                prop_assert!(counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1);
            }
        }
    }

    /// With affinity in play (few gateway pairs), all tunnels of a pair share one group and
    /// spread evenly over its workers; nothing ever moves.
    #[test]
    fn affinity_keeps_pairs_together(pairs in prop::collection::vec(0u8..4, 1..80)) {
        let mut a = Anchors::new(&[vec![1, 2], vec![3], vec![4, 5, 6]]).unwrap();
        let mut seen: HashMap<u8, usize> = HashMap::new();
        let mut placed = Vec::new();
        for (t, &p) in pairs.iter().enumerate() {
            let pl = a.place(t as u32, site(1, p));
            prop_assert_eq!(*seen.entry(p).or_insert(pl.group), pl.group);
            placed.push(pl);
        }
        for (t, pl) in placed.iter().enumerate() {
            prop_assert_eq!(a.placement(t as u32), Some(*pl));
        }
    }
}
