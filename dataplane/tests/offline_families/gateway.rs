//! The gateway of the offline runs (offline_families, offline_fragments): net_pcap ports
//! reading `lan-in.pcap` and `wan-in.pcap` in the test's folder and writing `*-out.pcap`
//! beside them, and the crate's `TUNNELS` with their manual SAs, routes and peers.

use super::{TempDir, GW_LAN, GW_WAN, HOST, TUNNELS};
use dataplane::wire::ethernet;
use std::net::IpAddr;

/// Writes `gw.json` into `dir`: EAL file prefix `prefix`, `hosts` behind the LAN port as
/// static neighbors (HOST's MAC), IPv6 on both interfaces with `ipv6`.
pub fn write_config(dir: &TempDir, prefix: &str, hosts: &[IpAddr], ipv6: bool) {
    let mac = |m: [u8; 6]| ethernet::Mac(m).to_string();
    let d = |f: &str| dir.path(f).display().to_string();
    let vdev = |n: u8, port: &str| {
        format!(
            "net_pcap{n},rx_pcap={},tx_pcap={}",
            d(&format!("{port}-in.pcap")),
            d(&format!("{port}-out.pcap"))
        )
    };
    let mut neighbors: Vec<_> = hosts
        .iter()
        .map(|h| serde_json::json!({"address": h.to_string(), "mac": mac(HOST)}))
        .collect();
    let (mut tunnels, mut routes, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for t in &TUNNELS {
        let mut tunnel = serde_json::json!({"name": t.name, "local": t.local, "remote": t.remote});
        if t.udp {
            tunnel["udp_encap"] = serde_json::json!({"local_port": 4500, "remote_port": 4500});
        }
        tunnels.push(tunnel);
        neighbors.push(serde_json::json!({"address": t.remote, "mac": mac(t.peer)}));
        for net in t.nets {
            routes.push(serde_json::json!({"prefix": net, "via": t.name}));
        }
        for (direction, spi, key) in [("out", t.out_spi, t.out_key), ("in", t.in_spi, t.in_key)] {
            sas.push(
                serde_json::json!({"tunnel": t.name, "direction": direction, "spi": spi,
                                        "algorithm": t.algorithm, "key": key}),
            );
        }
    }
    let mut interfaces = serde_json::json!([
        {"name": "lan0", "port": 0, "address": "10.1.0.1/24", "mac": mac(GW_LAN)},
        {"name": "wan0", "port": 1, "address": "192.0.2.1/24", "mac": mac(GW_WAN)}]);
    if ipv6 {
        interfaces[0]["address6"] = "2001:db8:1::1/64".into();
        interfaces[1]["address6"] = "2001:db8:ffff::1/64".into();
    }
    let cfg = serde_json::json!({
        "dataplane": {
            "eal": ["-l", "0,1", "--no-huge", "-m", "256", "--no-pci", "--no-telemetry",
                    "--file-prefix", prefix, "--vdev", vdev(0, "lan"), "--vdev", vdev(1, "wan")],
            "workers": [1]
        },
        "interfaces": interfaces,
        "neighbors": neighbors,
        "tunnels": tunnels,
        "routes": routes,
        "manual_sas": sas
    });
    std::fs::write(dir.path("gw.json"), cfg.to_string()).unwrap();
}
