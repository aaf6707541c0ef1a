//! The dataplane's end of the channel against a control end in the same process: commands in,
//! results out once in force, refusals, garbage, resync.

use super::*;
use crate::esp::crypto::Backend;
use crate::testkit::Gateway;
use channel::{Change, Name, RouteVia};
use std::path::PathBuf;

struct TmpDir(PathBuf);

impl TmpDir {
    fn new(test: &str) -> TmpDir {
        let dir = std::env::temp_dir().join(format!("espgw-cc-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TmpDir(dir)
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn small() -> Layout {
    let r = channel::ring::RingLayout {
        slots: 16,
        slot_size: 1024,
    };
    Layout {
        rings: [r; 4],
        stats_len: 4096,
        grants: 16,
        windows: 16,
    }
}

fn gateway() -> Gateway {
    let cfg = serde_json::json!({
        "dataplane": {"workers": [1, 2], "max_tunnels": 64, "max_sas": 64, "route_tables": 64},
        "interfaces": [{"name": "wan0", "port": 1, "address": "192.0.2.1/24"}],
    });
    Gateway::new(&cfg.to_string(), &[1, 2], &Backend::Ring).unwrap()
}

fn name(s: &str) -> Name {
    Name::new(s).unwrap()
}

struct Control {
    tx: channel::segment::Tx,
    rx: channel::segment::Rx,
}

impl Control {
    fn attach(path: &Path) -> Control {
        let seg = Segment::attach(path).unwrap();
        Control {
            tx: seg.producer(RingId::Commands).unwrap(),
            rx: seg.consumer(RingId::Events).unwrap(),
        }
    }
    fn send(&mut self, c: Command) {
        self.tx.send(&c).unwrap();
    }
    fn events(&mut self) -> Vec<Event> {
        let mut v = Vec::new();
        while let Some(e) = self.rx.recv::<Event>().unwrap() {
            v.push(e);
        }
        v
    }
}

/// Polls the channel, delivering the commands to the workers in between, until nothing moves.
fn run(ch: &mut ControlChannel, gw: &mut Gateway) {
    for _ in 0..8 {
        ch.poll(&mut gw.control);
        gw.sync();
    }
}

#[test]
fn a_change_is_answered_once_every_worker_has_it() {
    let dir = TmpDir::new("answer");
    let path = dir.0.join("seg");
    let mut gw = gateway();
    let mut ch = ControlChannel::create(&path, small(), &mut gw.control).unwrap();
    let mut ctl = Control::attach(&path);
    ctl.send(Command::Hello { pid: 77 });
    ctl.send(Command::Change {
        id: 1,
        change: Change::SetTunnel(crate::testkit::tunnel_spec(
            "st0.1",
            "192.0.2.1".parse::<std::net::Ipv4Addr>().unwrap(),
            "192.0.2.9".parse::<std::net::Ipv4Addr>().unwrap(),
        )),
    });
    // Applied on the main lcore, but no worker has it yet: no answer.
    ch.poll(&mut gw.control);
    let ev = ctl.events();
    assert!(matches!(ev.as_slice(), [Event::Welcome { pid, .. }] if *pid == std::process::id()));
    assert_eq!(ch.segment().control().0, 77);
    gw.sync();
    ch.poll(&mut gw.control);
    let g = gw.control.generation();
    assert_eq!(
        ctl.events(),
        [Event::Applied {
            id: 1,
            generation: g,
            changed: true
        }]
    );
    // A refused change names why; the same tunnel again changes nothing.
    ctl.send(Command::Change {
        id: 2,
        change: Change::SetRoute {
            prefix: "10.0.0.0/8".parse().unwrap(),
            via: RouteVia::Tunnel(name("nope")),
        },
    });
    ctl.send(Command::Change {
        id: 3,
        change: Change::SetTunnel(crate::testkit::tunnel_spec(
            "st0.1",
            "192.0.2.1".parse::<std::net::Ipv4Addr>().unwrap(),
            "192.0.2.9".parse::<std::net::Ipv4Addr>().unwrap(),
        )),
    });
    run(&mut ch, &mut gw);
    let ev = ctl.events();
    assert!(
        matches!(&ev[0], Event::Refused { id: 2, error } if error.contains("nope")),
        "{ev:?}"
    );
    assert_eq!(
        ev[1],
        Event::Applied {
            id: 3,
            generation: g,
            changed: false
        }
    );
    assert_eq!(ch.stats.changes_refused, 1);
    assert_eq!(ch.stats.changes_unchanged, 1);
}

#[test]
fn garbage_is_answered_and_the_channel_goes_on() {
    let dir = TmpDir::new("garbage");
    let path = dir.0.join("seg");
    let mut gw = gateway();
    let mut ch = ControlChannel::create(&path, small(), &mut gw.control).unwrap();
    let mut ctl = Control::attach(&path);
    ctl.tx.ring.push(&[0xee; 100]).unwrap();
    ctl.send(Command::Hello { pid: 1 });
    run(&mut ch, &mut gw);
    let ev = ctl.events();
    assert!(matches!(ev[0], Event::Malformed { .. }), "{ev:?}");
    assert!(matches!(ev[1], Event::Welcome { .. }), "{ev:?}");
    assert_eq!(ch.stats.malformed, 1);
}

#[test]
fn answers_wait_for_room_on_a_full_events_ring() {
    let dir = TmpDir::new("full");
    let path = dir.0.join("seg");
    let mut gw = gateway();
    let mut ch = ControlChannel::create(&path, small(), &mut gw.control).unwrap();
    let mut ctl = Control::attach(&path);
    // 40 answers for a ring of 16 slots: the control reads only now and then.
    let mut got = Vec::new();
    for round in 0..4u64 {
        for i in 0..10 {
            ctl.send(Command::Hello {
                pid: (round * 10 + i) as u32,
            });
        }
        run(&mut ch, &mut gw);
        if round % 2 == 1 {
            got.extend(ctl.events());
        }
    }
    run(&mut ch, &mut gw);
    got.extend(ctl.events());
    assert_eq!(got.len(), 40, "none lost");
    assert_eq!(ch.stats.events_dropped, 0);
}

#[test]
fn a_resync_answers_with_what_it_removed() {
    let dir = TmpDir::new("resync");
    let path = dir.0.join("seg");
    let mut gw = gateway();
    gw.change(Change::SetTunnel(crate::testkit::tunnel_spec(
        "old",
        "192.0.2.1".parse::<std::net::Ipv4Addr>().unwrap(),
        "192.0.2.8".parse::<std::net::Ipv4Addr>().unwrap(),
    )))
    .unwrap();
    let mut ch = ControlChannel::create(&path, small(), &mut gw.control).unwrap();
    let mut ctl = Control::attach(&path);
    ctl.send(Command::SyncBegin { id: 1 });
    ctl.send(Command::Change {
        id: 2,
        change: Change::SetInterface(channel::InterfaceSpec {
            name: name("wan0"),
            port: 1,
            addr: "192.0.2.1".parse::<std::net::Ipv4Addr>().unwrap(),
            prefix_len: 24,
            ipv6: None,
            mac: None,
            mtu: 1500,
        }),
    });
    ctl.send(Command::SyncEnd { id: 3 });
    run(&mut ch, &mut gw);
    let ev = ctl.events();
    assert!(matches!(ev[0], Event::Applied { id: 1, .. }), "{ev:?}");
    assert!(matches!(ev[1], Event::Applied { id: 2, .. }), "{ev:?}");
    assert_eq!(ev[2], Event::SyncDone { id: 3, deleted: 1 });
    assert!(gw.control.view().lock().unwrap().tunnels.is_empty());
}

#[test]
fn datagrams_cross_both_ways() {
    let dir = TmpDir::new("datagrams");
    let path = dir.0.join("seg");
    let mut gw = gateway();
    let mut ch = ControlChannel::create(&path, small(), &mut gw.control).unwrap();
    let seg = Segment::attach(&path).unwrap();
    let mut punted = seg.consumer(RingId::Punt).unwrap();
    let mut inject = seg.producer(RingId::Inject).unwrap();
    let d = channel::Datagram {
        port: 1,
        src: "192.0.2.9".parse().unwrap(),
        dst: "192.0.2.1".parse().unwrap(),
        sport: 500,
        dport: 500,
        payload: b"an IKE_SA_INIT",
    };
    ch.punt(&d);
    let got = punted
        .recv_with(|r| r.map(|x| (x.src, x.sport, x.payload.to_vec())))
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got, (d.src, 500, b"an IKE_SA_INIT".to_vec()));
    // The control's reply, and a slot of garbage: one sent, one counted as an error.
    let reply = channel::Datagram {
        src: d.dst,
        dst: d.src,
        ..d.clone()
    };
    inject.send(&reply).unwrap();
    inject.ring.push(&[0xee; 40]).unwrap();
    let mut seen = Vec::new();
    let n = ch.injected(32, |x| {
        seen.push((x.src, x.dst, x.payload.to_vec()));
        true
    });
    assert_eq!(n, 2);
    assert_eq!(seen, [(reply.src, reply.dst, reply.payload.to_vec())]);
    assert_eq!(
        (ch.stats.punted, ch.stats.injected, ch.stats.inject_errors),
        (1, 1, 1)
    );
}
