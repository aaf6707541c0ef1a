//! Fragmented ESP from an implementation independent of ours (issue 18): scapy encrypts inner
//! packets under the gateway's inbound SAs, raw and in UDP (offline_families' scapy_esp.py),
//! then cuts the outer datagrams with its own `fragment()` (offline_fragments/
//! scapy_fragments.py), as a router on the way would. One gateway, on net_pcap ports as
//! tests/offline.rs runs it, reads them: every set fed in order, reversed, shuffled, with a copy
//! of a fragment or interleaved with another is put back together on the main lcore and
//! decrypted, the inner packets forwarded byte for byte; an overlapping, an incomplete, an
//! oversize and a malformed set, crafted by hand in scapy from datagrams that would otherwise
//! decrypt, are dropped and each counted once, the incomplete one when its time runs out.
// The gateway on DPDK: only in builds with it.
#![cfg(feature = "dpdk")]

mod common;
// offline_families' packets and its scapy runner (interpreter, SA table, scapy_esp.py), which
// read this crate's `TUNNELS`, `PerTunnel`, `is_v6`, `HOPS` and `SIZES`; what this test does not
// use of them (the outbound checks) is left unused.
#[path = "offline_families/gateway.rs"]
mod gateway;
#[path = "offline_families/packets.rs"]
#[allow(dead_code)]
mod packets;
#[path = "offline_families/scapy.rs"]
#[allow(dead_code)]
mod scapy;
use common::*;
use dataplane::wire::ethernet;
use packets::{eth, hop, packet};
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::{Duration, Instant};

const SCRIPT: &str = include_str!("offline_fragments/scapy_fragments.py");

const GW_LAN: [u8; 6] = [2, 0, 0, 0, 1, 1];
const GW_WAN: [u8; 6] = [2, 0, 0, 0, 0xa, 1];
const PEER: [u8; 6] = [2, 0, 0, 0, 0xa, 2];
const PEER_UDP: [u8; 6] = [2, 0, 0, 0, 0xa, 3];
const HOST: [u8; 6] = [2, 0, 0, 0, 1, 0x10];
const HOST4: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 10);
/// The TTL the inner packets leave their hosts with (packets.rs).
const HOPS: u8 = 50;
/// The length of packets.rs's table of sizes (`total_len`, unused here).
const SIZES: usize = 9;

/// What scapy.rs needs of a tunnel, and the addresses behind it.
struct Tunnel {
    name: &'static str,
    local: &'static str,
    remote: &'static str,
    peer: [u8; 6],
    udp: bool,
    /// The prefix behind the peer, routed into the tunnel, and a host in it.
    nets: [&'static str; 1],
    far: Ipv4Addr,
    out_spi: u32,
    in_spi: u32,
    algorithm: &'static str,
    out_key: &'static str,
    in_key: &'static str,
}

/// Raw ESP from one peer, ESP in UDP (RFC 3948) from another.
const TUNNELS: [Tunnel; 2] = [
    Tunnel {
        name: "st0.0",
        local: "192.0.2.1",
        remote: "192.0.2.2",
        peer: PEER,
        udp: false,
        nets: ["10.2.0.0/16"],
        far: Ipv4Addr::new(10, 2, 0, 10),
        out_spi: 0x1001,
        in_spi: 0x2001,
        algorithm: "aes-256-gcm",
        out_key: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeff00dcafe",
        in_key: "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210cafef00d",
    },
    Tunnel {
        name: "st0.1",
        local: "192.0.2.1",
        remote: "192.0.2.3",
        peer: PEER_UDP,
        udp: true,
        nets: ["10.3.0.0/16"],
        far: Ipv4Addr::new(10, 3, 0, 10),
        out_spi: 0x1002,
        in_spi: 0x2002,
        algorithm: "aes-128-gcm",
        out_key: "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf01020304",
        in_key: "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf05060708",
    },
];

type PerTunnel = [Vec<Vec<u8>>; TUNNELS.len()];

fn is_v6(t: &Tunnel) -> bool {
    t.local.contains(':')
}

/// One datagram scapy encrypts and cuts: through `tunnel`, an inner packet of `len` bytes,
/// fragments of `fragsize` data bytes (scapy's `fragment(pkt, fragsize=...)`). `kind`: "good",
/// or the fault of a bad set (scapy_fragments.py).
struct Set {
    tunnel: usize,
    len: usize,
    fragsize: usize,
    kind: &'static str,
    /// Good sets: "in", "reversed" or "shuffled".
    order: &'static str,
    /// An exact copy of the first fragment fed comes again right after it.
    duplicate: bool,
    /// Fed alternately with the previous set's fragments.
    interleave: bool,
}

const fn good(tunnel: usize, len: usize, fragsize: usize, order: &'static str) -> Set {
    Set {
        tunnel,
        len,
        fragsize,
        kind: "good",
        order,
        duplicate: false,
        interleave: false,
    }
}

const fn dup(s: Set) -> Set {
    Set {
        duplicate: true,
        ..s
    }
}

const fn mixed(s: Set) -> Set {
    Set {
        interleave: true,
        ..s
    }
}

/// A bad set: a 1000-byte inner packet cut into pieces of 200, one of them left out or
/// replaced (scapy_fragments.py).
const fn bad(tunnel: usize, kind: &'static str) -> Set {
    Set {
        kind,
        ..good(tunnel, 1000, 200, "in")
    }
}

/// Every fragment size with every order, through both tunnels, the bad sets among them.
const SETS: [Set; 18] = [
    good(0, 100, 64, "in"),
    good(0, 1400, 64, "reversed"),
    good(0, 777, 200, "shuffled"),
    bad(0, "overlap"),
    dup(good(0, 1400, 576, "in")),
    good(0, 600, 200, "reversed"),
    good(0, 1399, 576, "shuffled"),
    bad(1, "incomplete"),
    good(1, 200, 64, "in"),
    dup(good(1, 333, 64, "shuffled")),
    good(1, 1400, 200, "in"),
    bad(0, "oversize"),
    good(1, 1001, 200, "reversed"),
    // Whole before the set it is mixed with: decrypted out of sequence-number order.
    mixed(good(1, 900, 576, "reversed")),
    good(1, 1400, 576, "shuffled"),
    bad(1, "malformed"),
    dup(good(0, 1000, 200, "shuffled")),
    good(1, 1400, 64, "reversed"),
];

/// Runs the gateway until it has been idle for `idle`; its stats, and how long it ran.
fn run_gateway(dir: &TempDir, idle: Duration) -> (serde_json::Value, Duration) {
    let prefix = format!("espgw-offline-fragments-{}", std::process::id());
    gateway::write_config(dir, &prefix, &[HOST4.into()], false);
    let stats = dir.path("gw.stats.json");
    let start = Instant::now();
    let out = Command::new(dataplane_bin())
        .arg("--config")
        .arg(dir.path("gw.json"))
        .arg("--exit-when-idle")
        .arg(idle.as_millis().to_string())
        .arg("--stats-file")
        .arg(&stats)
        .output()
        .unwrap();
    let ran = start.elapsed();
    // The EAL leaves its runtime directory behind.
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
    assert!(
        out.status.success(),
        "gateway: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (read_stats(&stats), ran)
}

#[test]
fn fragmented_esp_from_scapy_reassembled_and_bad_sets_dropped_and_counted() {
    let test = "offline fragmented ESP from scapy";
    if !require_root(test) {
        return;
    }
    let Some(python) = scapy::scapy_python() else {
        require(test, "scapy (python3-scapy)", false);
        return;
    };
    let dir = TempDir::new("offline-fragments");

    // scapy encrypts each set's inner packet, as the tunnel's peer would send it.
    let inner: Vec<Vec<u8>> = SETS
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let far = IpAddr::V4(TUNNELS[s.tunnel].far);
            packet(far, IpAddr::V4(HOST4), s.len, k)
        })
        .collect();
    let packets: Vec<_> = SETS
        .iter()
        .zip(&inner)
        .map(|(s, p)| serde_json::json!([TUNNELS[s.tunnel].in_spi, hex::encode(p)]))
        .collect();
    let esp = dir.path("esp.pcap");
    scapy::scapy(
        &dir,
        python,
        "encrypt",
        serde_json::json!({"sas": scapy::scapy_sas(true), "packets": packets,
                           "dst": ethernet::Mac(GW_WAN).to_string(), "pcap": esp}),
    );

    // Then cuts them into fragments: what the gateway's WAN port reads.
    let sets: Vec<_> = SETS
        .iter()
        .enumerate()
        .map(|(k, s)| {
            serde_json::json!({"kind": s.kind, "fragsize": s.fragsize, "order": s.order,
                               "duplicate": s.duplicate, "interleave": s.interleave,
                               "ident": 0x4000 + k})
        })
        .collect();
    let job = dir.path("scapy-fragments.json");
    let wan_in = dir.path("wan-in.pcap");
    std::fs::write(
        &job,
        serde_json::json!({"esp": esp, "pcap": wan_in, "seed": 18, "sets": sets}).to_string(),
    )
    .unwrap();
    let script = dir.path("fragments.py");
    std::fs::write(&script, SCRIPT).unwrap();
    let out = sh(Command::new(python).arg(&script).arg(&job));
    let fed: serde_json::Value = serde_json::from_str(&out).unwrap();
    let fed: Vec<(u64, u64)> = fed["sets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["fragments"].as_u64().unwrap(),
                s["last"].as_u64().unwrap(),
            )
        })
        .collect();
    let frames = read_pcap(&wan_in);
    let fragments: u64 = fed.iter().map(|f| f.0).sum();
    assert_eq!(frames.len() as u64, fragments, "{out}");
    write_pcap(&dir.path("lan-in.pcap"), &[]);

    // The incomplete set is forgotten once reassembly::TIMEOUT has passed, when the main lcore
    // next looks (every CHECK_EVERY): the run lasts that long, and a second more, after the
    // last fragment came.
    let idle = dataplane::reassembly::TIMEOUT
        + dataplane::control_state::idle::CHECK_EVERY
        + Duration::from_secs(1);
    let (s, ran) = run_gateway(&dir, idle);
    assert!(ran >= idle, "ran {ran:?}");

    let good: Vec<usize> = (0..SETS.len())
        .filter(|&k| SETS[k].kind == "good")
        .collect();
    let n = |k: &[usize]| k.len() as u64;

    // The reassembly: every fragment taken, every good set whole, each fault counted once,
    // nothing else (all compared at once, so that a miscount shows where it went).
    let main = &s["main"];
    let faults = |kind: &str| SETS.iter().filter(|s| s.kind == kind).count() as u64;
    let want = [
        ("reassembly_fragments", fragments),
        ("reassembled", n(&good)),
        ("reassembly_overlaps", faults("overlap")),
        ("reassembly_timeouts", faults("incomplete")),
        ("reassembly_oversize", faults("oversize")),
        ("reassembly_malformed", faults("malformed")),
        ("reassembly_table_full", 0),
    ];
    let got = want.map(|(name, _)| (name, main[name].as_u64().unwrap_or(u64::MAX)));
    assert_eq!(got, want, "{main}");

    // Every good set decrypted once, under its tunnel's SA; no bad one; nothing else dropped.
    let bytes: u64 = good.iter().map(|&k| inner[k].len() as u64).sum();
    let expect = [
        ("rx_packets", fragments),
        // Every fragment goes to the main lcore.
        ("punted", fragments),
        ("decrypted_packets", n(&good)),
        ("decrypted_bytes", bytes),
        ("tx_packets", n(&good)),
    ];
    for (name, v) in s["global"].as_object().unwrap() {
        // What the forwarding path counts as forwarded, and how crypto batches, are not this
        // test's subject.
        if ["forwarded_packets", "crypto_queue_bursts"].contains(&name.as_str()) {
            continue;
        }
        let want = expect.iter().find(|e| e.0 == name).map_or(0, |e| e.1);
        assert_eq!(v.as_u64(), Some(want), "counter {name}: {s:#}");
    }
    for (ti, t) in TUNNELS.iter().enumerate() {
        let packets = good.iter().filter(|&&k| SETS[k].tunnel == ti).count() as u64;
        let sa = s["sas"]
            .as_array()
            .unwrap()
            .iter()
            .find(|sa| sa["spi"] == format!("{:#x}", t.in_spi))
            .unwrap_or_else(|| panic!("SA {:#x}: {s:#}", t.in_spi));
        assert_eq!(sa["packets"].as_u64(), Some(packets), "{}: {sa}", t.name);
    }

    // On the LAN, each good set's inner packet, sent to the host when its last fragment came,
    // one hop on (its TTL lower and its checksum right); nothing back to the peers.
    let mut order = good.clone();
    order.sort_by_key(|&k| fed[k].1);
    let lan = read_pcap(&dir.path("lan-out.pcap"));
    assert_eq!(
        lan.len(),
        good.len(),
        "one frame per good set, none of a bad one"
    );
    for (i, (g, &k)) in lan.iter().zip(&order).enumerate() {
        assert_eq!(
            hex::encode(g),
            hex::encode(eth(HOST, GW_LAN, &hop(&inner[k]))),
            "LAN frame {i}: set {k}'s inner packet, one hop on, to the host"
        );
    }
    assert!(
        read_pcap(&dir.path("wan-out.pcap")).is_empty(),
        "nothing back to the peers"
    );
}
