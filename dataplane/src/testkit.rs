//! Fixtures for the workspace's tests and benchmarks (the `testkit` feature, or this crate's
//! own tests); the gateway itself uses none of them. One way to build a test SA's keys, its
//! tunnel, an inner packet, and a whole gateway without DPDK: a control state and its workers'
//! forwarders in one thread, with the links between them driven by hand (`Gateway::sync`).

use crate::config::{self, Config};
use crate::control_state::{ChangeError, ControlState, Setup, WorkerInfo};
use crate::counters::{CounterRef, StatBlock};
use crate::esp::crypto::{Algorithm, Backend, KeyMaterial};
use crate::esp::outer::TunnelEncap;
use crate::forward::Forwarder;
use crate::link::WorkerEnd;
use crate::mem::Memory;
use crate::wire::ethernet::Mac;
use crate::wire::ipv4;
use channel::{Change, DfPolicy, Dscp};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// Key material for `alg`; different seeds give different keys.
pub fn keymat(alg: Algorithm, seed: u8) -> KeyMaterial {
    let bytes: Vec<u8> = (0..alg.keymat_len() as u8)
        .map(|b| b.wrapping_mul(31).wrapping_add(seed))
        .collect();
    // The length is the algorithm's own, so this cannot fail.
    KeyMaterial::new(alg, &bytes).expect("keymat of the algorithm's length")
}

/// A tunnel 192.0.2.1 -> 192.0.2.2, in UDP (NAT-T) between `udp`'s ports if given.
pub fn tunnel(udp: Option<(u16, u16)>) -> TunnelEncap {
    TunnelEncap {
        local: Ipv4Addr::new(192, 0, 2, 1).into(),
        remote: Ipv4Addr::new(192, 0, 2, 2).into(),
        udp,
        df: DfPolicy::Copy,
        dscp: Dscp::Copy,
        ttl: 64,
        mtu: None,
    }
}

/// A tunnel named `name` from `local` to `remote`, in raw ESP, with the defaults of the file
/// format and no traffic selectors.
pub fn tunnel_spec(
    name: &str,
    local: impl Into<IpAddr>,
    remote: impl Into<IpAddr>,
) -> channel::TunnelSpec {
    channel::TunnelSpec {
        name: channel::Name::new(name).expect("a test tunnel's name"),
        local: local.into(),
        remote: remote.into(),
        dynamic: false,
        tcp_mss: None,
        mtu: None,
        udp: None,
        df: DfPolicy::Copy,
        dscp: Dscp::Copy,
        ttl: 64,
        local_selectors: Default::default(),
        remote_selectors: Default::default(),
        local_selectors6: Default::default(),
        remote_selectors6: Default::default(),
    }
}

/// Counters for an SA made outside a control state.
pub fn counters() -> CounterRef {
    crate::counters::standalone()
}

/// An inner IPv4/UDP packet 10.1.0.10 -> 10.2.0.10 of `len` (>= 20) bytes, with a
/// recognisable payload (byte i is i mod 256).
pub fn inner_packet(len: usize, tos: u8, df: bool) -> Vec<u8> {
    let mut p: Vec<u8> = (0..len).map(|i| i as u8).collect();
    let mut h = [0u8; ipv4::MIN_HEADER_LEN];
    ipv4::Repr {
        tos,
        ident: 0x4242,
        dont_frag: df,
        ttl: 63,
        protocol: ipv4::PROTO_UDP,
        src: Ipv4Addr::new(10, 1, 0, 10),
        dst: Ipv4Addr::new(10, 2, 0, 10),
        payload_len: len - ipv4::MIN_HEADER_LEN,
    }
    .emit(&mut h);
    p[..ipv4::MIN_HEADER_LEN].copy_from_slice(&h);
    p
}

/// EAL arguments for a process that needs a crypto device and no port: no hugepages, no PCI,
/// no shared config, no telemetry.
#[cfg(feature = "dpdk")]
pub fn crypto_only_eal() -> Vec<String> {
    [
        "--no-huge",
        "-m",
        "256",
        "--no-pci",
        "--no-shconf",
        "--no-telemetry",
    ]
    .map(String::from)
    .to_vec()
}

/// A whole gateway without DPDK: the main lcore's control state and one forwarder per worker,
/// linked as in the dataplane, the links driven by `sync` instead of the workers' loops.
pub struct Gateway {
    pub control: ControlState,
    pub workers: Vec<Forwarder>,
    links: Vec<WorkerEnd>,
}

/// Table sizes for tests, where the file does not set them: small, so that building a gateway
/// per test case stays cheap.
fn small_tables(v: &mut serde_json::Value) {
    let dp = &mut v["dataplane"];
    for (k, n) in [("max_tunnels", 256), ("max_sas", 512), ("route_tables", 64)] {
        if dp.get(k).is_none() {
            dp[k] = n.into();
        }
    }
}

impl Gateway {
    /// The gateway of a configuration in the file format, with one worker per lcore of
    /// `workers` (one anchor group unless the file groups them), ports whose MAC is `02:00:00:00:00:00` where an
    /// interface names none, and SA ciphers on `backend`.
    pub fn new(config: &str, workers: &[u32], backend: &Backend) -> Result<Gateway, String> {
        let mut v: serde_json::Value = serde_json::from_str(config).map_err(|e| e.to_string())?;
        small_tables(&mut v);
        let cfg = Config::parse(&v.to_string()).map_err(|e| e.to_string())?;
        let mut gw = Self::empty(&cfg, workers, backend)?;
        for c in config::changes(&cfg) {
            gw.control.apply(c).map_err(|e| e.to_string())?;
        }
        gw.sync();
        Ok(gw)
    }

    /// A gateway sized by `cfg` with nothing installed yet.
    pub fn empty(cfg: &Config, workers: &[u32], backend: &Backend) -> Result<Gateway, String> {
        let stats: Vec<Arc<StatBlock>> = workers.iter().map(|_| Arc::default()).collect();
        let cap = cfg.dataplane.capacity;
        let (control, links) = ControlState::new(Setup {
            workers: workers
                .iter()
                .map(|&lcore| WorkerInfo { lcore, socket: -1 })
                .collect(),
            groups: cfg
                .dataplane
                .anchor_groups
                .clone()
                .unwrap_or_else(|| vec![workers.to_vec()]),
            capacity: cap,
            memory: Memory::Heap,
            backend: backend.clone(),
            link_capacity: 64,
            port_mac: Box::new(|_| Mac([2, 0, 0, 0, 0, 0])),
            stats: stats.clone(),
        })?;
        let workers = stats
            .into_iter()
            .enumerate()
            .map(|(i, s)| Forwarder::new(i as u16, cap, Memory::Heap, -1, s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        Ok(Gateway {
            control,
            workers,
            links,
        })
    }

    /// Delivers every command waiting for the workers, and gives the main lcore what they
    /// sent back (retired SAs, events).
    pub fn sync(&mut self) {
        loop {
            let waiting = self.control.flush();
            for (w, l) in self.workers.iter_mut().zip(&mut self.links) {
                l.apply(w, usize::MAX);
                l.report(w);
            }
            self.control.poll(|_, _| {});
            if waiting == 0 {
                break;
            }
        }
    }

    /// Applies a change and delivers its commands.
    pub fn change(&mut self, c: Change) -> Result<u64, ChangeError> {
        let g = self.control.apply(c)?.generation;
        self.sync();
        Ok(g)
    }

    /// Applies a change, leaving its commands undelivered until `deliver`.
    pub fn change_later(&mut self, c: Change) -> Result<u64, ChangeError> {
        self.control.apply(c).map(|a| a.generation)
    }

    /// Delivers up to `max` waiting commands to worker `w` only.
    pub fn deliver(&mut self, w: usize, max: usize) -> usize {
        self.control.flush();
        match (self.workers.get_mut(w), self.links.get_mut(w)) {
            (Some(f), Some(l)) => {
                let n = l.apply(f, max);
                l.report(f);
                n
            }
            _ => 0,
        }
    }

    /// Worker 0 (a one-worker gateway's only one).
    pub fn fwd(&mut self) -> &mut Forwarder {
        &mut self.workers[0]
    }
}

/// A one-worker gateway that opens the ESP it seals: LAN 10.1.0.1/16 on port 0 (host
/// 10.1.0.10), WAN 192.0.2.1/24 on port 1 (MTU 9000, peer 192.0.2.2), and `tunnels` tunnels
/// to the peer. Tunnel t carries 10.2.t.0/24, with SPI 0x1000 + t both ways, key
/// `keymat(aes-128-gcm, t)`, and no replay window on the inbound SA, so that the same packets
/// can be replayed.
pub fn mirror_gateway(tunnels: u8, backend: &Backend) -> Result<Gateway, String> {
    let key = |t: u8| hex::encode(keymat(Algorithm::Aes128Gcm, t).bytes());
    let sas: Vec<_> = (0..tunnels)
        .flat_map(|t| {
            let sa = |d: &str| {
                serde_json::json!({"tunnel": format!("st0.{t}"), "direction": d,
                    "spi": 0x1000 + u32::from(t), "algorithm": "aes-128-gcm", "key": key(t)})
            };
            let mut inbound = sa("in");
            inbound["replay_window"] = 0.into();
            [sa("out"), inbound]
        })
        .collect();
    let cfg = serde_json::json!({
        "dataplane": {"workers": [1]},
        "interfaces": [{"name": "lan0", "port": 0, "address": "10.1.0.1/16", "mac": "02:00:00:00:01:01"},
                       {"name": "wan0", "port": 1, "address": "192.0.2.1/24", "mac": "02:00:00:00:0a:01", "mtu": 9000}],
        "neighbors": [{"address": "192.0.2.2", "mac": "02:00:00:00:0a:02"},
                      {"address": "10.1.0.10", "mac": "02:00:00:00:01:10"}],
        "tunnels": (0..tunnels).map(|t| serde_json::json!({"name": format!("st0.{t}"), "local": "192.0.2.1", "remote": "192.0.2.2"})).collect::<Vec<_>>(),
        "routes": (0..tunnels).map(|t| serde_json::json!({"prefix": format!("10.2.{t}.0/24"), "via": format!("st0.{t}")})).collect::<Vec<_>>(),
        "manual_sas": sas,
    });
    Gateway::new(&cfg.to_string(), &[1], backend)
}

/// A gateway reads as its first worker's forwarder (all of a one-worker gateway)...
impl std::ops::Deref for Gateway {
    type Target = Forwarder;
    fn deref(&self) -> &Forwarder {
        &self.workers[0]
    }
}

impl std::ops::DerefMut for Gateway {
    fn deref_mut(&mut self) -> &mut Forwarder {
        &mut self.workers[0]
    }
}

/// ...and as its workers' forwarders by index.
impl std::ops::Index<usize> for Gateway {
    type Output = Forwarder;
    fn index(&self, i: usize) -> &Forwarder {
        &self.workers[i]
    }
}

impl std::ops::IndexMut<usize> for Gateway {
    fn index_mut(&mut self, i: usize) -> &mut Forwarder {
        &mut self.workers[i]
    }
}
