//! Two IKE managers wired to each other in memory, for the `ike_manager*` tests: their
//! configurations (VPNs over one gateway between A and B), the pair and its clock, delivery.

#![allow(dead_code)] // each test file uses part of it

use control::ike_manager::{IkeManager, Out};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

pub const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

/// `n` VPNs over one gateway (one pair of identities) between A and B, each its own /32s.
pub fn config(initiator: bool, n: u32) -> config::Config {
    config_with(initiator, n, |_| {})
}

/// `config`, its JSON edited by `edit` first.
pub fn config_with(
    initiator: bool,
    n: u32,
    edit: impl Fn(&mut serde_json::Value),
) -> config::Config {
    let (me, peer, mine, theirs) = if initiator {
        (A, B, 1, 2)
    } else {
        (B, A, 2, 1)
    };
    let tunnels: Vec<_> = (0..n)
        .map(|i| serde_json::json!({"name": format!("st0.{i}"), "local": me.to_string(), "remote": peer.to_string()}))
        .collect();
    let vpns: Vec<_> = (0..n)
        .map(|i| {
            serde_json::json!({
                "name": format!("vpn{i}"), "gateway": "peer", "bind_interface": format!("st0.{i}"),
                "local_ts": [format!("10.{mine}.0.{i}/32")], "remote_ts": [format!("10.{theirs}.0.{i}/32")],
                "establish": if initiator { "immediately" } else { "responder-only" },
            })
        })
        .collect();
    let mut v = serde_json::json!({
        "dataplane": {"eal": [], "workers": [1]},
        "interfaces": [{"name": "wan0", "port": 0, "address": format!("{me}/24")}],
        "tunnels": tunnels,
        "ike": {
            "gateways": [{"name": "peer", "local_address": me.to_string(), "remote_address": peer.to_string(),
                          "local_id": if initiator { "a.example" } else { "b.example" },
                          "remote_id": if initiator { "b.example" } else { "a.example" },
                          "psk": "in-memory test key", "proposals": ["aes128gcm16-prfsha256-x25519"],
                          "dpd": {"action": "none"}}],
            "vpns": vpns,
        }
    });
    edit(&mut v);
    match config::Config::parse(&v.to_string()) {
        Ok(c) => c,
        Err(e) => panic!("test configuration: {e}"),
    }
}

pub struct Pair {
    pub a: IkeManager,
    pub b: IkeManager,
    pub now: Instant,
}

impl Pair {
    pub fn new(n: u32) -> Pair {
        let now = Instant::now();
        let mut a = IkeManager::default();
        let mut b = IkeManager::default();
        b.configure(&config(false, n), now);
        a.configure(&config(true, n), now);
        Pair { a, b, now }
    }

    /// Delivers every datagram either side has out, ticking both every 10 ms of simulated
    /// time, for `ms` milliseconds.
    pub fn run(&mut self, ms: u64) {
        for _ in 0..ms / 10 {
            self.now += Duration::from_millis(10);
            self.a.tick(self.now);
            self.b.tick(self.now);
            // Ping-pong until quiet (each exchange is a few round trips).
            for _ in 0..16 {
                let (oa, ob) = (self.a.take_out(), self.b.take_out());
                if oa.is_empty() && ob.is_empty() {
                    break;
                }
                deliver(oa, &mut self.b, self.now);
                deliver(ob, &mut self.a, self.now);
            }
        }
    }
}

pub fn deliver(out: Vec<Out>, to: &mut IkeManager, now: Instant) {
    for o in out {
        if let Out::Send(g) = o {
            to.datagram(now, g.path.remote, g.path.local, &g.bytes);
        }
    }
}

/// (vpn, SPIs, initial_contact) of every established IKE SA.
pub fn up(m: &IkeManager, now: Instant) -> Vec<(String, String, bool)> {
    let mut v: Vec<_> = m
        .view(now)
        .into_iter()
        .filter(|s| s.state == "established")
        .map(|s| {
            (
                s.vpn,
                format!("{}/{}", s.initiator_spi, s.responder_spi),
                s.initial_contact,
            )
        })
        .collect();
    v.sort();
    v
}
