//! Changes to running gateways while traffic flows: tunnels and SAs added, replaced (a
//! make-before-break rekey) and deleted between bursts lose no packet of an SA that stays; a
//! deleted SA's packets are dropped and counted; a change is in force once every worker has
//! applied it; SA lifetimes raise their events once.

use super::*;
use channel::{Algorithm, InboundSaSpec, KeyMaterial, Lifetime, OutboundSaSpec, RouteVia, SaSpec};

/// Runs a burst received on `port` by worker 0 through a gateway, including the handoffs to
/// the other workers (as their own bursts); each frame's final verdict and bytes.
fn through(gw: &mut Gateway, port: u16, frames: &[Vec<u8>]) -> Vec<(Verdict, Vec<u8>)> {
    let mut bufs: Vec<VecBuf> = frames.iter().map(|f| VecBuf::new(f)).collect();
    let mut verdicts: Vec<Verdict> = bufs.iter_mut().map(|b| gw[0].receive(port, b)).collect();
    gw[0].complete(&mut bufs, &mut verdicts);
    for (b, v) in bufs.iter_mut().zip(verdicts.iter_mut()) {
        if let Verdict::Handoff {
            worker,
            resume: tag,
        } = *v
        {
            let r = Resume::from_tag(tag.0).unwrap();
            *v = resume(&mut gw[usize::from(worker)], b, r);
        }
    }
    verdicts
        .into_iter()
        .zip(bufs)
        .map(|(v, b)| (v, b.data().to_vec()))
        .collect()
}

fn keys(seed: u8) -> KeyMaterial {
    crate::testkit::keymat(Algorithm::Aes128Gcm, seed)
}

fn sa(tunnel: &str, spi: u32, seed: u8) -> SaSpec {
    SaSpec {
        tunnel: name(tunnel),
        spi,
        keys: keys(seed),
        esn: false,
        soft: Lifetime::default(),
        hard: Lifetime::default(),
    }
}

fn outbound(s: SaSpec) -> Change {
    Change::SetOutboundSa(OutboundSaSpec {
        sa: s,
        first_seq: 1,
    })
}

fn inbound(s: SaSpec) -> Change {
    Change::SetInboundSa(InboundSaSpec {
        sa: s,
        replay_window: 64,
        highest_seen: 0,
        idle_after: None,
    })
}

/// A tunnel of gw1 (`first`) or gw2 towards the other.
fn tunnel(first: bool, n: &str) -> Change {
    let (local, remote) = if first {
        ("192.0.2.1", "192.0.2.2")
    } else {
        ("192.0.2.2", "192.0.2.1")
    };
    Change::SetTunnel(crate::testkit::tunnel_spec(n, ip(local), ip(remote)))
}

/// Host a to host b's LAN address `.host` of 10.2.0.0/24.
fn to_host(host: u8, n: usize) -> Vec<u8> {
    frame(
        GW1_LAN,
        HOST_A,
        "10.1.0.10",
        &format!("10.2.0.{host}"),
        64,
        ipv4::PROTO_UDP,
        &udp_payload(n),
    )
}

/// Two gateways of two workers each, with the tunnels of `second_tunnel`: gw1 sends 10.2.0.10
/// (host b) through st0.1 and 10.2.0.200 through st0.0; gw2 knows both hosts.
fn pair() -> (Gateway, Gateway) {
    (
        gateway_workers(true, false, 2, second_tunnel(true)),
        gateway_workers(false, false, 2, second_tunnel(false)),
    )
}

#[test]
fn changes_between_bursts_lose_no_packet_of_an_sa_that_stays() {
    let (mut gw1, mut gw2) = pair();
    // gw2 also delivers to 10.2.0.77, which gw1 will route through a new tunnel.
    gw2.change(Change::SetNeighbor {
        addr: ip("10.2.0.77").into(),
        mac: HOST_B.0,
    })
    .unwrap();
    let mut sent = [0usize; 3];
    let mut got = [0usize; 3];
    let hosts = [200u8, 10, 77];
    for round in 0..40 {
        // A burst to every host, of varied sizes.
        let frames: Vec<Vec<u8>> = (0..12)
            .map(|i| to_host(hosts[i % 3], 20 + round * 7 + i))
            .collect();
        let out = through(&mut gw1, 0, &frames);
        let wire: Vec<Vec<u8>> = out
            .iter()
            .filter(|(v, _)| *v == Verdict::Tx(1))
            .map(|(_, b)| b.clone())
            .collect();
        for (i, _) in frames.iter().enumerate() {
            sent[i % 3] += 1;
        }
        for (v, b) in through(&mut gw2, 1, &wire) {
            if v == Verdict::Tx(0) {
                let h = hosts.iter().position(|&h| h == b[14 + 19]).unwrap();
                got[h] += 1;
            }
        }
        match round {
            // A new tunnel on both sides, its SAs, then gw1's route into it.
            10 => {
                gw2.change(tunnel(false, "st0.2")).unwrap();
                gw2.change(inbound(sa("st0.2", 0x1003, 3))).unwrap();
                gw1.change(tunnel(true, "st0.2")).unwrap();
                gw1.change(outbound(sa("st0.2", 0x1003, 3))).unwrap();
                gw1.change(Change::SetRoute {
                    prefix: "10.2.0.77/32".parse().unwrap(),
                    via: RouteVia::Tunnel(name("st0.2")),
                })
                .unwrap();
                // From here on, every packet to .77 is counted.
                sent[2] = 0;
                got[2] = 0;
            }
            // A make-before-break rekey of st0.0 (host .200): the new inbound SA is in force
            // on gw2 before gw1's outbound SA switches; the old inbound SA goes afterwards.
            20 => {
                let g = gw2.change(inbound(sa("st0.0", 0x1011, 11))).unwrap();
                assert!(gw2.control.in_force(g));
                gw1.change(outbound(sa("st0.0", 0x1011, 11))).unwrap();
            }
            22 => {
                gw2.change(Change::DeleteInboundSa { spi: 0x1001 }).unwrap();
            }
            // st0.1 (host .10) loses its inbound SA on gw2: its packets are dropped there.
            30 => {
                gw2.change(Change::DeleteInboundSa { spi: 0x1002 }).unwrap();
            }
            _ => {}
        }
    }
    assert_eq!(got[0], sent[0], "st0.0, rekeyed on the way, lost nothing");
    assert_eq!(sent[2], 29 * 4, "st0.2 carried from its route on");
    assert_eq!(got[2], sent[2], "st0.2, added on the way, lost nothing");
    // st0.1: delivered for rounds 0..=30, dropped after.
    assert_eq!(got[1], 31 * 4);
    let invalid: u64 = gw2
        .workers
        .iter()
        .map(|w| w.stats.get(Stat::InvalidSpi))
        .sum();
    assert_eq!(
        invalid,
        9 * 4,
        "every packet of the deleted SA dropped and counted"
    );
    // What was replaced or deleted went back to the main lcores and was freed.
    assert_eq!(gw1.control.live_sas(), 5);
    assert_eq!(gw2.control.live_sas(), 4);
}

#[test]
fn a_change_is_in_force_once_every_worker_applied_it() {
    let (mut gw1, _) = pair();
    let before = gw1.control.generation();
    let g = gw1
        .change_later(Change::SetRoute {
            prefix: "10.9.0.0/16".parse().unwrap(),
            via: RouteVia::Tunnel(name("st0.0")),
        })
        .unwrap();
    assert!(g > before);
    assert!(gw1.control.in_force(before) && !gw1.control.in_force(g));
    let nine = frame(
        GW1_LAN,
        HOST_A,
        "10.1.0.10",
        "10.9.0.1",
        64,
        17,
        &udp_payload(5),
    );
    assert_eq!(run(&mut gw1[0], 0, &nine).0, Verdict::Drop(Stat::NoRoute));
    gw1.deliver(0, usize::MAX);
    assert_eq!(gw1.control.applied(0), Some(g));
    assert!(!gw1.control.in_force(g), "worker 1 has not applied it yet");
    // Worker 0 routes it already; worker 1 not yet.
    assert_ne!(run(&mut gw1[0], 0, &nine).0, Verdict::Drop(Stat::NoRoute));
    assert_eq!(run(&mut gw1[1], 0, &nine).0, Verdict::Drop(Stat::NoRoute));
    gw1.deliver(1, usize::MAX);
    assert!(gw1.control.in_force(g));
    assert_ne!(run(&mut gw1[1], 0, &nine).0, Verdict::Drop(Stat::NoRoute));
    // A change for one worker only (an SA on its owner) is in force once that one applied it.
    let g = gw1.change_later(outbound(sa("st0.1", 0x1021, 5))).unwrap();
    let owner = gw1.control.view().lock().unwrap().sas
        [&crate::control_state::view::SaKey::Out(name("st0.1"))]
        .worker;
    let w = (owner - 1) as usize;
    gw1.deliver(w, usize::MAX);
    assert!(gw1.control.in_force(g));
}

#[test]
fn a_change_that_does_not_fit_changes_nothing() {
    let (mut gw1, _) = pair();
    let sas = gw1.control.live_sas();
    let g0 = gw1.control.generation();
    for bad in [
        outbound(sa("st0.9", 0x1111, 1)),
        outbound(sa("st0.0", 0x10, 1)),
        inbound(sa("st0.0", 0x2002, 1)),
        Change::DeleteTunnel {
            name: name("st0.0"),
        },
        Change::SetRoute {
            prefix: "10.9.0.1/16".parse().unwrap(),
            via: RouteVia::Tunnel(name("st0.0")),
        },
        Change::SetRoute {
            prefix: "10.9.0.0/16".parse().unwrap(),
            via: RouteVia::Gateway(ip("172.16.0.1").into()),
        },
        Change::DeleteInterface { name: name("wan0") },
    ] {
        let what = format!("{bad:?}");
        let e = gw1.change(bad).unwrap_err();
        assert!(!e.reason.is_empty(), "{what}");
        assert!(!format!("{e}").contains("KeyMaterial("), "no key in {e}");
    }
    assert_eq!(
        gw1.control.generation(),
        g0,
        "refused changes spend no generation"
    );
    // A tunnel whose gateways change is refused (delete it and add it again), and so is any
    // change of one whose SAs are built from it.
    assert!(
        gw1.change(tunnel(true, "st0.1")).is_ok(),
        "the same tunnel again: nothing to do"
    );
    let g = gw1.control.generation();
    let mut moved = tunnel(true, "st0.1");
    if let Change::SetTunnel(t) = &mut moved {
        t.remote = ip("192.0.2.3").into();
    }
    assert!(gw1.change(moved).is_err());
    // Endpoints of two families.
    let mut mixed = tunnel(true, "st0.9");
    if let Change::SetTunnel(t) = &mut mixed {
        t.remote = "2001:db8:ffff::2".parse().unwrap();
    }
    let e = gw1.change(mixed).unwrap_err();
    assert!(e.reason.contains("different families"), "{e}");
    // Selectors its inbound SA copied cannot change under it.
    let mut narrower = tunnel(true, "st0.1");
    if let Change::SetTunnel(t) = &mut narrower {
        t.remote_selectors.push("10.2.0.0/24".parse().unwrap());
    }
    assert!(gw1.change(narrower).is_err());
    assert_eq!(gw1.control.generation(), g, "no generation spent");
    assert_eq!(gw1.control.live_sas(), sas);
    // And traffic flows as before.
    assert_eq!(run(&mut gw1[0], 0, &to_host(200, 10)).0, Verdict::Tx(1));
}

#[test]
fn lifetimes_raise_their_events_once_and_the_hard_limit_stops_the_sa() {
    let (mut gw1, mut gw2) = pair();
    let mut s = sa("st0.0", 0x1031, 7);
    s.soft = Lifetime {
        packets: Some(5),
        bytes: None,
    };
    s.hard = Lifetime {
        packets: Some(8),
        bytes: None,
    };
    let mut i = s.clone();
    i.soft = Lifetime {
        packets: None,
        bytes: Some(300),
    };
    i.hard = Lifetime::default();
    gw2.change(inbound(i)).unwrap();
    gw1.change(outbound(s)).unwrap();
    let mut verdicts = Vec::new();
    for _ in 0..10 {
        let out = through(&mut gw1, 0, &[to_host(200, 100)]);
        verdicts.push(out[0].0);
        if out[0].0 == Verdict::Tx(1) {
            assert_eq!(
                through(&mut gw2, 1, &[out[0].1.clone()])[0].0,
                Verdict::Tx(0)
            );
        }
    }
    assert_eq!(&verdicts[..8], &[Verdict::Tx(1); 8]);
    assert_eq!(&verdicts[8..], &[Verdict::Drop(Stat::SaHardLimit); 2]);
    gw1.sync();
    gw2.sync();
    let e1 = gw1.control.view().lock().unwrap().events;
    assert_eq!((e1.soft_lifetimes, e1.hard_lifetimes), (1, 1));
    let e2 = gw2.control.view().lock().unwrap().events;
    assert_eq!((e2.soft_lifetimes, e2.hard_lifetimes), (1, 0));
    // A tunnel without an outbound SA asks for one (an ACQUIRE), once a second.
    gw1.change(Change::DeleteOutboundSa {
        tunnel: name("st0.0"),
    })
    .unwrap();
    let owner = (gw1.control.view().lock().unwrap().tunnels[&name("st0.0")].worker - 1) as usize;
    gw1[owner].now_ms = 10_000;
    for _ in 0..5 {
        assert_eq!(
            through(&mut gw1, 0, &[to_host(200, 10)])[0].0,
            Verdict::Drop(Stat::NoSa)
        );
    }
    gw1[owner].now_ms = 11_000;
    through(&mut gw1, 0, &[to_host(200, 10)]);
    gw1.sync();
    assert_eq!(gw1.control.view().lock().unwrap().events.acquires, 2);
}

/// The ESP sequence number of an encrypted frame (Ethernet, outer IPv4 without options, ESP).
fn esp_seq(frame: &[u8]) -> u32 {
    u32::from_be_bytes([frame[38], frame[39], frame[40], frame[41]])
}

/// With a channel, an outbound SA sends only numbers published first, is granted more as it
/// goes without losing a packet, and a new start of the dataplane resumes it above the last
/// grant: no (SPI, sequence number) pair, and so no GCM nonce, is ever used twice.
#[test]
fn sequence_numbers_run_on_published_grants_and_resume_above_them() {
    let dir = std::env::temp_dir().join(format!("espgw-grants-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("seg");
    let layout = channel::Layout {
        grants: 64,
        ..Default::default()
    };
    let seg = channel::Segment::create(&path, layout).unwrap();
    let (mut gw1, mut gw2) = pair();
    gw1.control.use_grants(seg.clone(), Vec::new(), Vec::new());
    gw1.control.set_grant_size(8);
    gw2.change(inbound(sa("st0.0", 0x1051, 5))).unwrap();
    gw1.change(outbound(sa("st0.0", 0x1051, 5))).unwrap();
    let grant = |seg: &channel::Segment| {
        seg.grants()
            .iter()
            .filter(|g| g.spi == 0x1051)
            .map(|g| g.end)
            .max()
            .unwrap_or(0)
    };
    let mut seqs = Vec::new();
    for _ in 0..40 {
        let out = through(&mut gw1, 0, &[to_host(200, 30)]);
        assert_eq!(out[0].0, Verdict::Tx(1), "no packet waits for a grant");
        let s = esp_seq(&out[0].1);
        assert!(
            u64::from(s) <= grant(&seg),
            "{s} sent before it was granted"
        );
        seqs.push(s);
        assert_eq!(
            through(&mut gw2, 1, &[out[0].1.clone()])[0].0,
            Verdict::Tx(0)
        );
        gw1.sync();
    }
    assert_eq!(seqs, (1..=40).collect::<Vec<u32>>());
    let last_grant = grant(&seg);
    assert!((40..=48).contains(&last_grant), "{last_grant}");

    // The dataplane restarts: the same SA, pushed again from 1, resumes above the grant.
    drop(gw1);
    let previous = channel::Segment::previous_grants(&path);
    let seg2 = channel::Segment::create(&path, layout).unwrap();
    let (mut gw1, _) = pair();
    gw1.control.use_grants(seg2.clone(), previous, Vec::new());
    gw1.change(outbound(sa("st0.0", 0x1051, 5))).unwrap();
    let out = through(&mut gw1, 0, &[to_host(200, 30)]);
    assert_eq!(u64::from(esp_seq(&out[0].1)), last_grant + 1);
    assert_eq!(
        through(&mut gw2, 1, &[out[0].1.clone()])[0].0,
        Verdict::Tx(0),
        "the peer takes it: it is above its window"
    );
    // Another key under the same SPI starts from 1.
    gw1.change(Change::DeleteOutboundSa {
        tunnel: name("st0.0"),
    })
    .unwrap();
    gw1.change(outbound(sa("st0.0", 0x1051, 6))).unwrap();
    assert_eq!(esp_seq(&through(&mut gw1, 0, &[to_host(200, 30)])[0].1), 1);
    drop(seg);
    drop(seg2);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// With a channel, an inbound SA's replay window resumes, after a restart, from the top last
/// published: a packet it accepted before is not accepted again.
#[test]
fn replay_windows_resume_from_their_published_top() {
    let dir = std::env::temp_dir().join(format!("espgw-windows-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("seg");
    let layout = channel::Layout {
        windows: 64,
        ..Default::default()
    };
    let seg = channel::Segment::create(&path, layout).unwrap();
    let (mut gw1, mut gw2) = pair();
    gw2.control.use_grants(seg.clone(), Vec::new(), Vec::new());
    gw2.change(inbound(sa("st0.0", 0x1061, 8))).unwrap();
    gw1.change(outbound(sa("st0.0", 0x1061, 8))).unwrap();
    // The worker writes the top every 32 packets (and exactly when the SA leaves it).
    let mut wire = Vec::new();
    for _ in 0..32 {
        let out = through(&mut gw1, 0, &[to_host(200, 30)]);
        assert_eq!(
            through(&mut gw2, 1, &[out[0].1.clone()])[0].0,
            Verdict::Tx(0)
        );
        wire.push(out[0].1.clone());
    }
    gw2.control.publish_windows();
    assert!(seg.windows().iter().any(|w| w.spi == 0x1061 && w.end == 32));

    // gw2 restarts and is given the same SA again, from 0.
    drop(gw2);
    let windows = channel::Segment::previous_windows(&path);
    let seg2 = channel::Segment::create(&path, layout).unwrap();
    let (_, mut gw2) = pair();
    gw2.control.use_grants(seg2.clone(), Vec::new(), windows);
    gw2.change(inbound(sa("st0.0", 0x1061, 8))).unwrap();
    assert_eq!(
        through(&mut gw2, 1, &[wire[4].clone()])[0].0,
        Verdict::Drop(Stat::ReplayErrors),
        "a packet accepted before the restart is a replay after it"
    );
    let fresh = through(&mut gw1, 0, &[to_host(200, 30)]);
    assert_eq!(
        through(&mut gw2, 1, &[fresh[0].1.clone()])[0].0,
        Verdict::Tx(0)
    );
    drop((seg, seg2));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The peer's NAT rebinds (RFC 7296 section 2.23, RFC 3948): IKE moves the tunnel's NAT-T
/// port while its SA runs, and the next packet goes to the new port with the next sequence
/// number (the same SA, its keys and counters); the old port is used no more.
#[test]
fn an_outbound_sa_follows_its_tunnels_new_nat_t_port() {
    let (mut gw1, _) = pair();
    let mut t = crate::testkit::tunnel_spec("st0.2", ip("192.0.2.1"), ip("192.0.2.2"));
    t.udp = Some((4500, 4500));
    gw1.change(Change::SetTunnel(t.clone())).unwrap();
    gw1.change(outbound(sa("st0.2", 0x1003, 3))).unwrap();
    gw1.change(Change::SetRoute {
        prefix: "10.2.0.77/32".parse().unwrap(),
        via: RouteVia::Tunnel(name("st0.2")),
    })
    .unwrap();
    // Ethernet, IPv4, UDP: the destination port, then the ESP sequence number.
    let sent = |gw: &mut Gateway| -> (u16, u32) {
        let out = through(gw, 0, &[to_host(77, 40)]);
        let (v, b) = &out[0];
        assert_eq!(*v, Verdict::Tx(1));
        let port = u16::from_be_bytes([b[36], b[37]]);
        let seq = u32::from_be_bytes([b[46], b[47], b[48], b[49]]);
        (port, seq)
    };
    assert_eq!(sent(&mut gw1), (4500, 1));
    t.udp = Some((4500, 40123));
    gw1.change(Change::SetTunnel(t.clone())).unwrap();
    assert_eq!(sent(&mut gw1), (40123, 2));
    assert_eq!(sent(&mut gw1), (40123, 3));
    // ESP in UDP cannot become raw ESP under its SA.
    t.udp = None;
    let e = gw1.change(Change::SetTunnel(t)).unwrap_err();
    assert!(e.reason.contains("SAs are built from it"), "{e}");
    assert_eq!(
        gw1.control.live_sas(),
        5,
        "no SA replaced: the pair's 4 and st0.2's"
    );
}
