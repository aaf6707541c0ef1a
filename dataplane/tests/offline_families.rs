//! Every family combination of ESP tunnel mode (RFC 4303), raw and in UDP (RFC 3948), decoded
//! by two implementations independent of ours, both ways, offline as tests/offline.rs runs:
//! one gateway on net_pcap ports with four tunnels, st0.0 and st0.2 with IPv4 endpoints, st0.1
//! and st0.3 with IPv6 endpoints, the last two in UDP, each carrying IPv4 and IPv6. Outbound,
//! tshark (tshark.rs) and scapy (scapy.rs), knowing only the keys, decrypt what it sent and find
//! every inner packet, in order, its hop count lowered once, under the right outer header
//! (and UDP header: ports, length, checksum 0 over IPv4 and right over IPv6), SPI, sequence
//! number, next header (4 or 41) and padding; packets one byte over a tunnel's MTU are dropped
//! and their senders told the MTU. Inbound, the gateway decrypts what scapy encrypted for each
//! combination and forwards the inner packets byte for byte.
// The gateway on DPDK: only in builds with it.
#![cfg(feature = "dpdk")]

mod common;
// Its parts, in a directory of the test's name (a test crate's root looks for `mod`s beside it).
#[path = "offline_families/gateway.rs"]
mod gateway;
#[path = "offline_families/packets.rs"]
mod packets;
#[path = "offline_families/scapy.rs"]
mod scapy;
#[path = "offline_families/tshark.rs"]
mod tshark;
use common::*;
use dataplane::wire::{checksum, ethernet, ipv6};
use packets::{addr, eth, fold, hop, packet, total_len};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;

const GW_LAN: [u8; 6] = [2, 0, 0, 0, 1, 1];
const GW_WAN: [u8; 6] = [2, 0, 0, 0, 0xa, 1];
/// The two peers: one for the raw ESP tunnels, one for those in UDP.
const PEER: [u8; 6] = [2, 0, 0, 0, 0xa, 2];
const PEER_UDP: [u8; 6] = [2, 0, 0, 0, 0xa, 3];
const HOST: [u8; 6] = [2, 0, 0, 0, 1, 0x10];
const HOST4: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 10);
const HOST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x10);
/// The hop count packets leave their hosts with.
const HOPS: u8 = 50;
/// The outer headers': the tunnels' `ttl` by default.
const OUTER_HOPS: u8 = 64;

struct Tunnel {
    name: &'static str,
    local: &'static str,
    remote: &'static str,
    /// The remote's MAC.
    peer: [u8; 6],
    /// ESP in UDP, ports 4500 both sides.
    udp: bool,
    /// The prefixes behind the peer routed into the tunnel, and a host in each.
    nets: [&'static str; 2],
    far4: Ipv4Addr,
    far6: Ipv6Addr,
    out_spi: u32,
    in_spi: u32,
    algorithm: &'static str,
    out_key: &'static str,
    in_key: &'static str,
    /// The largest inner packet: 1500 less ESP with AES-GCM's overhead (and 8 for UDP) in this
    /// outer family.
    mtu: usize,
}

/// Each SA its own key (and neighbouring tunnels different key sizes), so that an SA mixed up
/// fails.
const TUNNELS: [Tunnel; 4] = [
    Tunnel {
        name: "st0.0",
        local: "192.0.2.1",
        remote: "192.0.2.2",
        peer: PEER,
        udp: false,
        nets: ["10.2.0.0/16", "2001:db8:2::/48"],
        far4: Ipv4Addr::new(10, 2, 0, 10),
        far6: Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 0x10),
        out_spi: 0x1001,
        in_spi: 0x2001,
        algorithm: "aes-256-gcm",
        out_key: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeff00dcafe",
        in_key: "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210cafef00d",
        mtu: 1446,
    },
    Tunnel {
        name: "st0.1",
        local: "2001:db8:ffff::1",
        remote: "2001:db8:ffff::2",
        peer: PEER,
        udp: false,
        nets: ["10.3.0.0/16", "2001:db8:3::/48"],
        far4: Ipv4Addr::new(10, 3, 0, 10),
        far6: Ipv6Addr::new(0x2001, 0xdb8, 3, 0, 0, 0, 0, 0x10),
        out_spi: 0x1002,
        in_spi: 0x2002,
        algorithm: "aes-128-gcm",
        out_key: "00112233445566778899aabbccddeeff0badc0de",
        in_key: "ffeeddccbbaa99887766554433221100deadbeef",
        mtu: 1426,
    },
    Tunnel {
        name: "st0.2",
        local: "192.0.2.1",
        remote: "192.0.2.3",
        peer: PEER_UDP,
        udp: true,
        nets: ["10.4.0.0/16", "2001:db8:4::/48"],
        far4: Ipv4Addr::new(10, 4, 0, 10),
        far6: Ipv6Addr::new(0x2001, 0xdb8, 4, 0, 0, 0, 0, 0x10),
        out_spi: 0x1003,
        in_spi: 0x2003,
        algorithm: "aes-128-gcm",
        out_key: "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf01020304",
        in_key: "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf05060708",
        mtu: 1438,
    },
    Tunnel {
        name: "st0.3",
        local: "2001:db8:ffff::1",
        remote: "2001:db8:ffff::3",
        peer: PEER_UDP,
        udp: true,
        nets: ["10.5.0.0/16", "2001:db8:5::/48"],
        far4: Ipv4Addr::new(10, 5, 0, 10),
        far6: Ipv6Addr::new(0x2001, 0xdb8, 5, 0, 0, 0, 0, 0x10),
        out_spi: 0x1004,
        in_spi: 0x2004,
        algorithm: "aes-256-gcm",
        out_key: "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf090a0b0c",
        in_key: "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff0d0e0f10",
        mtu: 1418,
    },
];

/// Packets by tunnel, in the order they went in (or came out).
type PerTunnel = [Vec<Vec<u8>>; TUNNELS.len()];

/// The eight combinations: (tunnel, inner IPv6?).
fn combos() -> impl Iterator<Item = (usize, bool)> {
    (0..TUNNELS.len()).flat_map(|t| [(t, false), (t, true)])
}

fn is_v6(t: &Tunnel) -> bool {
    t.local.contains(':')
}

/// Inner sizes per combination (`packets::total_len`); the last one over the MTU.
const SIZES: usize = 9;

#[test]
fn every_family_combination_decoded_by_tshark_and_scapy_both_ways() {
    let test = "offline ESP family combinations";
    if !require_root(test) {
        return;
    }
    let tshark = Command::new("tshark")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    if !require(test, "tshark", tshark) {
        return;
    }
    let Some(python) = scapy::scapy_python() else {
        require(test, "scapy (python3-scapy)", false);
        return;
    };
    let dir = TempDir::new("offline-families");

    // Outbound: every size of every combination, the combinations interleaved so that both
    // families and all tunnels share the gateway's bursts. `sent[t]`: what went into tunnel t,
    // in order, but for the packets over its MTU (`too_big`).
    let mut lan_in = Vec::new();
    let mut sent: PerTunnel = Default::default();
    let mut too_big = Vec::new();
    for k in 0..SIZES {
        for (c, (ti, v6)) in combos().enumerate() {
            let t = &TUNNELS[ti];
            let (src, dst) = if v6 {
                (IpAddr::V6(HOST6), IpAddr::V6(t.far6))
            } else {
                (IpAddr::V4(HOST4), IpAddr::V4(t.far4))
            };
            let p = packet(src, dst, total_len(t.mtu, v6, k), k * 8 + c);
            lan_in.push(eth(GW_LAN, HOST, &p));
            if k == SIZES - 1 {
                too_big.push((ti, p));
            } else {
                sent[ti].push(p);
            }
        }
    }
    write_pcap(&dir.path("lan-in.pcap"), &lan_in);

    // Inbound: scapy encrypts, as each peer would, the same sizes (but the one over the MTU)
    // from the hosts behind it to ours.
    let mut packets = Vec::new();
    let mut received: PerTunnel = Default::default();
    for k in 0..SIZES - 1 {
        for (c, (ti, v6)) in combos().enumerate() {
            let t = &TUNNELS[ti];
            let (src, dst) = if v6 {
                (IpAddr::V6(t.far6), IpAddr::V6(HOST6))
            } else {
                (IpAddr::V4(t.far4), IpAddr::V4(HOST4))
            };
            let p = packet(src, dst, total_len(t.mtu, v6, k), 100 + k * 8 + c);
            packets.push(serde_json::json!([t.in_spi, hex::encode(&p)]));
            received[ti].push(p);
        }
    }
    let mac = |m: [u8; 6]| ethernet::Mac(m).to_string();
    scapy::scapy(
        &dir,
        python,
        "encrypt",
        serde_json::json!({"sas": scapy::scapy_sas(true), "packets": packets,
                           "dst": mac(GW_WAN), "pcap": dir.path("wan-in.pcap")}),
    );

    // One run does both directions: the LAN port reads the cleartext, the WAN port scapy's ESP.
    let prefix = format!("espgw-offline-families-{}", std::process::id());
    gateway::write_config(&dir, &prefix, &[HOST4.into(), HOST6.into()], true);
    let stats = dir.path("gw.stats.json");
    let out = Command::new(dataplane_bin())
        .arg("--config")
        .arg(dir.path("gw.json"))
        .args(["--exit-when-idle", "500", "--stats-file"])
        .arg(&stats)
        .output()
        .unwrap();
    // The EAL leaves its runtime directory behind.
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
    assert!(
        out.status.success(),
        "gateway: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = read_stats(&stats);
    check_counters(&s, &sent, &received);

    let wan_out = dir.path("wan-out.pcap");
    let frames = read_pcap(&wan_out);
    assert_eq!(
        frames.len(),
        combos().count() * (SIZES - 1),
        "only ESP on the WAN"
    );
    tshark::tshark_decodes(&wan_out, &frames, &sent);
    scapy::scapy_decrypts(&dir, python, &wan_out, frames.len(), &sent);

    // On the LAN: what scapy encrypted, and the senders of the packets too big told the MTU.
    let lan_out = read_pcap(&dir.path("lan-out.pcap"));
    let (udp, icmp): (Vec<_>, Vec<_>) = lan_out.iter().partition(|f| {
        let v6 = f[12..14] == [0x86, 0xdd];
        (if v6 { f[14 + 6] } else { f[14 + 9] }) == 17
    });
    for (ti, t) in TUNNELS.iter().enumerate() {
        // The frames from the hosts behind this tunnel's peer, in the order they came.
        let got: Vec<&Vec<u8>> = udp
            .iter()
            .copied()
            .filter(|f| [IpAddr::V4(t.far4), IpAddr::V6(t.far6)].contains(&addr(&f[14..], false)))
            .collect();
        assert_eq!(
            got.len(),
            received[ti].len(),
            "{}: decrypted frames",
            t.name
        );
        for (i, (g, r)) in got.iter().zip(&received[ti]).enumerate() {
            assert_eq!(
                hex::encode(g),
                hex::encode(eth(HOST, GW_LAN, &hop(r))),
                "{} inbound packet {i}: scapy's inner packet, one hop on, to host a",
                t.name
            );
        }
    }
    assert_eq!(
        udp.len(),
        combos().count() * (SIZES - 1),
        "no other UDP on the LAN"
    );
    assert_eq!(icmp.len(), too_big.len());
    // The main lcore answers them in the order they came.
    for (f, (ti, p)) in icmp.iter().zip(&too_big) {
        check_too_big(f, &TUNNELS[*ti], p);
    }
}

/// The gateway's counters: every packet received, encrypted or decrypted and sent, each SA's
/// own, the eight over the MTU dropped and answered, nothing else dropped.
fn check_counters(s: &serde_json::Value, sent: &PerTunnel, received: &PerTunnel) {
    let bytes = |ps: &PerTunnel| ps.iter().flatten().map(Vec::len).sum::<usize>() as u64;
    let n = |ps: &PerTunnel| ps.iter().map(Vec::len).sum::<usize>() as u64;
    let (out, inb, big) = (n(sent), n(received), combos().count() as u64);
    let expect = [
        ("rx_packets", out + big + inb),
        ("tx_packets", out + inb + big),
        ("encrypted_packets", out),
        ("encrypted_bytes", bytes(sent)),
        ("decrypted_packets", inb),
        ("decrypted_bytes", bytes(received)),
        ("exceeds_tunnel_mtu", big),
        // The packets too big go to the main lcore, which answers them.
        ("punted", big),
    ];
    let global = s["global"].as_object().unwrap();
    for (name, v) in global {
        // What the forwarding path counts as forwarded, and how crypto batches, are not
        // this test's subject.
        if ["forwarded_packets", "crypto_queue_bursts"].contains(&name.as_str()) {
            continue;
        }
        let want = expect.iter().find(|e| e.0 == name).map_or(0, |e| e.1);
        assert_eq!(v.as_u64(), Some(want), "counter {name}: {s:#}");
    }
    let main = &s["main"];
    // One of each per tunnel: its IPv4 and its IPv6 packet too big.
    let each = Some(TUNNELS.len() as u64);
    assert_eq!(main["icmp_frag_needed_sent"].as_u64(), each, "{main}");
    assert_eq!(main["icmpv6_packet_too_big_sent"].as_u64(), each, "{main}");
    for (ti, t) in TUNNELS.iter().enumerate() {
        for (spi, packets) in [(t.out_spi, sent[ti].len()), (t.in_spi, received[ti].len())] {
            let sa = s["sas"]
                .as_array()
                .unwrap()
                .iter()
                .find(|sa| sa["spi"] == format!("{spi:#x}"))
                .unwrap_or_else(|| panic!("SA {spi:#x}: {s:#}"));
            assert_eq!(sa["tunnel"], t.name);
            assert_eq!(sa["packets"].as_u64(), Some(packets as u64), "{sa}");
        }
    }
}

/// An ICMP "fragmentation needed" or ICMPv6 Packet Too Big from our LAN address to host a, for
/// packet `p` sent into `t`, with `t`'s MTU and a valid checksum.
fn check_too_big(f: &[u8], t: &Tunnel, p: &[u8]) {
    assert_eq!(&f[..12], &[HOST, GW_LAN].concat()[..]);
    let ip = &f[14..];
    assert_eq!(ip[0] >> 4, p[0] >> 4, "answered in the packet's family");
    let (src, dst, msg, kind, mtu, quoted) = if p[0] >> 4 == 4 {
        let msg = &ip[20..];
        assert_eq!(checksum::sum(msg), 0xffff, "ICMP checksum");
        let mtu = u32::from(u16::from_be_bytes([msg[6], msg[7]]));
        (
            IpAddr::from([10, 1, 0, 1]),
            IpAddr::V4(HOST4),
            msg,
            (3, 4),
            mtu,
            &msg[8..],
        )
    } else {
        let (s, d) = (addr(ip, false), addr(ip, true));
        let msg = &ip[40..];
        let (IpAddr::V6(s6), IpAddr::V6(d6)) = (s, d) else {
            unreachable!()
        };
        let pseudo = ipv6::pseudo_header_sum(&s6, &d6, msg.len() as u32, ipv6::NEXT_ICMPV6);
        let sum = fold(pseudo + u64::from(checksum::sum(msg)));
        assert_eq!(sum, 0xffff, "ICMPv6 checksum");
        let mtu = u32::from_be_bytes([msg[4], msg[5], msg[6], msg[7]]);
        let lan = "2001:db8:1::1".parse::<Ipv6Addr>().unwrap();
        (
            IpAddr::V6(lan),
            IpAddr::V6(HOST6),
            msg,
            (2, 0),
            mtu,
            &msg[8..],
        )
    };
    assert_eq!(
        (addr(ip, false), addr(ip, true)),
        (src, dst),
        "from our LAN address to the sender"
    );
    assert_eq!((msg[0], msg[1]), kind, "type and code");
    assert_eq!(mtu as usize, t.mtu, "{}'s MTU", t.name);
    assert_eq!(addr(quoted, true), addr(p, true), "quotes the packet");
}
