//! Fixtures shared by the workspace's tests and benchmarks; the gateway itself uses none of
//! them. One way to build a test SA's keys, its tunnel, an inner packet and the EAL of a
//! process that only needs a crypto device, so that every test builds them alike.

use crate::esp::crypto::{Algorithm, Keymat};
use crate::sa::{DfPolicy, DscpPolicy, TunnelEncap};
use crate::wire::ipv4;
use std::net::Ipv4Addr;
use zeroize::Zeroizing;

/// Key material for `alg`; different seeds give different keys.
pub fn keymat(alg: Algorithm, seed: u8) -> Keymat {
    let bytes = (0..alg.keymat_len() as u8)
        .map(|b| b.wrapping_mul(31).wrapping_add(seed))
        .collect();
    // The length is the algorithm's own, so this cannot fail.
    Keymat::new(alg, Zeroizing::new(bytes)).expect("keymat of the algorithm's length")
}

/// A tunnel 192.0.2.1 -> 192.0.2.2, in UDP (NAT-T) between `udp`'s ports if given.
pub fn tunnel(udp: Option<(u16, u16)>) -> TunnelEncap {
    TunnelEncap {
        local: Ipv4Addr::new(192, 0, 2, 1),
        remote: Ipv4Addr::new(192, 0, 2, 2),
        udp,
        df: DfPolicy::Copy,
        dscp: DscpPolicy::Copy,
        ttl: 64,
    }
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

/// One provisioned `Forwarder` per worker lcore of `workers` (one anchor group), from a
/// configuration in the file format, with `port_mac` for interfaces that name no MAC: the
/// tables a running gateway's workers would hold, without DPDK ports.
pub fn forwarders(
    config: &str,
    workers: &[u32],
    port_mac: impl Fn(u16) -> crate::wire::ethernet::Mac,
    backend: &crate::esp::crypto::Backend,
) -> Result<Vec<crate::forward::Forwarder>, String> {
    let cfg = crate::config::Config::parse(config).map_err(|e| e.to_string())?;
    let mut anchors =
        crate::anchor::Anchors::new(&[workers.to_vec()]).map_err(|e| format!("{e:?}"))?;
    let p = crate::provision::build(&cfg, port_mac, &mut anchors, workers, backend)
        .map_err(|e| e.to_string())?;
    Ok(p.commands
        .into_iter()
        .enumerate()
        .map(|(i, cmds)| {
            let stats = std::sync::Arc::new(crate::counters::StatBlock::default());
            let mut f = crate::forward::Forwarder::new(i as u16, stats);
            for c in cmds {
                f.apply(c);
            }
            f
        })
        .collect())
}

/// A one-worker gateway that opens the ESP it seals, with batching on: LAN 10.1.0.1/16 on
/// port 0 (host 10.1.0.10), WAN 192.0.2.1/24 on port 1 (MTU 9000, peer 192.0.2.2), and
/// `tunnels` tunnels to the peer. Tunnel t carries 10.2.t.0/24, with SPI 0x1000 + t both ways,
/// key `keymat(aes-128-gcm, t)`, and no replay window on the inbound SA, so that the same
/// packets can be replayed.
pub fn mirror_gateway(
    tunnels: u8,
    backend: &crate::esp::crypto::Backend,
) -> Result<crate::forward::Forwarder, String> {
    let key = |t: u8| {
        let km = keymat(Algorithm::Aes128Gcm, t);
        hex::encode([km.key(), &km.salt()].concat())
    };
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
    let mut f = forwarders(&cfg.to_string(), &[1], |_| Default::default(), backend)?
        .pop()
        .ok_or("no worker")?;
    f.set_batching(true);
    Ok(f)
}
