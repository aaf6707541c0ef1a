//! Every family combination of ESP tunnel mode (RFC 4303), decoded by two implementations
//! independent of ours, both ways, offline as tests/offline.rs runs: one gateway on net_pcap
//! ports with two tunnels, st0.0 with IPv4 endpoints and st0.1 with IPv6 endpoints, each carrying
//! IPv4 and IPv6. Outbound, tshark and scapy (knowing only the keys) decrypt what it sent and
//! find every inner packet, in order, its hop count lowered once, under the right outer header,
//! SPI, sequence number, next header (4 or 41) and padding; packets one byte over a tunnel's
//! MTU are dropped and their senders told the MTU. Inbound, the gateway decrypts what scapy
//! encrypted for each combination and forwards the inner packets byte for byte.
// The gateway on DPDK: only in builds with it.
#![cfg(feature = "dpdk")]

mod common;
use common::*;
use dataplane::wire::{checksum, ethernet, ipv4, ipv6};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;

const GW_LAN: [u8; 6] = [2, 0, 0, 0, 1, 1];
const GW_WAN: [u8; 6] = [2, 0, 0, 0, 0xa, 1];
const PEER: [u8; 6] = [2, 0, 0, 0, 0xa, 2];
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
    /// The prefixes behind the peer routed into the tunnel, and a host in each.
    nets: [&'static str; 2],
    far4: Ipv4Addr,
    far6: Ipv6Addr,
    out_spi: u32,
    in_spi: u32,
    algorithm: &'static str,
    out_key: &'static str,
    in_key: &'static str,
    /// The largest inner packet: 1500 less raw ESP with AES-GCM's overhead in this outer family.
    mtu: usize,
}

/// Each SA its own key (and each tunnel its own key size), so that an SA mixed up fails.
const TUNNELS: [Tunnel; 2] = [
    Tunnel {
        name: "st0.0",
        local: "192.0.2.1",
        remote: "192.0.2.2",
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
];

/// The four combinations: (tunnel, inner IPv6?).
const COMBOS: [(usize, bool); 4] = [(0, false), (0, true), (1, false), (1, true)];

fn is_v6(t: &Tunnel) -> bool {
    t.local.contains(':')
}

/// Inner total lengths: every padding (1..4 bytes of payload), two middling sizes, and the
/// tunnel's MTU less one, the MTU, and one over (dropped outbound; the last, `SIZES - 1`).
const SIZES: usize = 9;
fn total_len(mtu: usize, v6: bool, k: usize) -> usize {
    let min = if v6 { 48 } else { 28 };
    [
        min + 1,
        min + 2,
        min + 3,
        min + 4,
        200,
        777,
        mtu - 1,
        mtu,
        mtu + 1,
    ][k]
}

/// UDP 12345 -> 5678 (no dissector of tshark's claims them) from `src` to `dst`, `len` bytes in
/// all, hop count `HOPS`, the payload a pattern of `seed`. The IPv6 UDP checksum is set, as it
/// must be; the IPv4 one is left 0.
fn packet(src: IpAddr, dst: IpAddr, len: usize, seed: usize) -> Vec<u8> {
    let hl = if src.is_ipv6() { 40 } else { 20 };
    let payload: Vec<u8> = (0..len - hl - 8).map(|j| (seed * 7 + j) as u8).collect();
    let mut udp = vec![0x30, 0x39, 0x16, 0x2e];
    udp.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(&payload);
    let mut p = vec![0u8; hl];
    match (src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let h = ipv4::Repr {
                tos: 0,
                ident: seed as u16,
                dont_frag: true,
                ttl: HOPS,
                protocol: ipv4::PROTO_UDP,
                src,
                dst,
                payload_len: udp.len(),
            };
            h.emit((&mut p[..]).try_into().unwrap());
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let h = ipv6::Repr {
                traffic_class: 0,
                next_header: ipv6::NEXT_UDP,
                hop_limit: HOPS,
                src,
                dst,
                payload_len: udp.len(),
            };
            h.emit((&mut p[..]).try_into().unwrap());
            let c = !fold(
                ipv6::pseudo_header_sum(&src, &dst, udp.len() as u32, ipv6::NEXT_UDP)
                    + u64::from(checksum::sum(&udp)),
            );
            udp[6..8].copy_from_slice(&if c == 0 { 0xffff } else { c }.to_be_bytes());
        }
        _ => unreachable!("one family"),
    }
    p.extend_from_slice(&udp);
    assert_eq!(p.len(), len);
    p
}

/// A ones'-complement sum folded to 16 bits.
fn fold(sum: u64) -> u16 {
    checksum::fold_words(&[
        (sum >> 48) as u16,
        (sum >> 32) as u16,
        (sum >> 16) as u16,
        sum as u16,
    ])
}

/// `p` as a router passes it on: TTL or hop limit one less (the IPv4 checksum recomputed
/// from scratch, not by the gateway's incremental update).
fn hop(p: &[u8]) -> Vec<u8> {
    let mut p = p.to_vec();
    if p[0] >> 4 == 4 {
        let mut h = ipv4::Packet::new_checked(&mut p[..]).unwrap();
        h.set_ttl(HOPS - 1);
        h.fill_checksum();
    } else {
        p[7] = HOPS - 1;
    }
    p
}

fn eth(dst: [u8; 6], src: [u8; 6], ip: &[u8]) -> Vec<u8> {
    let ethertype = if ip[0] >> 4 == 4 {
        ethernet::ETHERTYPE_IPV4
    } else {
        ethernet::ETHERTYPE_IPV6
    };
    let mut f = vec![0u8; 14];
    let e = ethernet::Repr {
        dst: ethernet::Mac(dst),
        src: ethernet::Mac(src),
        ethertype,
    };
    e.emit((&mut f[..]).try_into().unwrap());
    f.extend_from_slice(ip);
    f
}

fn addr(p: &[u8], dst: bool) -> IpAddr {
    if p[0] >> 4 == 4 {
        let at = if dst { 16 } else { 12 };
        IpAddr::from(<[u8; 4]>::try_from(&p[at..at + 4]).unwrap())
    } else {
        let at = if dst { 24 } else { 8 };
        IpAddr::from(<[u8; 16]>::try_from(&p[at..at + 16]).unwrap())
    }
}

/// The ESP padding RFC 4303 section 2.4 asks for: bytes 1, 2, 3, ..., the fewest that end the
/// trailer on a 4-byte boundary (AES-GCM has no block size of its own).
fn padding(inner_len: usize) -> Vec<u8> {
    (1..=((4 - (inner_len + 2) % 4) % 4) as u8).collect()
}

fn config(dir: &TempDir, prefix: &str) {
    let mac = |m: [u8; 6]| ethernet::Mac(m).to_string();
    let d = |f: &str| dir.path(f).display().to_string();
    let vdev = |n: u8, port: &str| {
        format!(
            "net_pcap{n},rx_pcap={},tx_pcap={}",
            d(&format!("{port}-in.pcap")),
            d(&format!("{port}-out.pcap"))
        )
    };
    let mut routes = Vec::new();
    let mut sas = Vec::new();
    for t in &TUNNELS {
        for net in t.nets {
            routes.push(serde_json::json!({"prefix": net, "via": t.name}));
        }
        for (direction, spi, key) in [("out", t.out_spi, t.out_key), ("in", t.in_spi, t.in_key)] {
            let sa = serde_json::json!({"tunnel": t.name, "direction": direction, "spi": spi,
                                        "algorithm": t.algorithm, "key": key});
            sas.push(sa);
        }
    }
    let cfg = serde_json::json!({
        "dataplane": {
            "eal": ["-l", "0,1", "--no-huge", "-m", "256", "--no-pci", "--no-telemetry",
                    "--file-prefix", prefix, "--vdev", vdev(0, "lan"), "--vdev", vdev(1, "wan")],
            "workers": [1]
        },
        "interfaces": [
            {"name": "lan0", "port": 0, "address": "10.1.0.1/24", "address6": "2001:db8:1::1/64",
             "mac": mac(GW_LAN)},
            {"name": "wan0", "port": 1, "address": "192.0.2.1/24",
             "address6": "2001:db8:ffff::1/64", "mac": mac(GW_WAN)}],
        "neighbors": [{"address": "192.0.2.2", "mac": mac(PEER)},
                      {"address": "2001:db8:ffff::2", "mac": mac(PEER)},
                      {"address": HOST4.to_string(), "mac": mac(HOST)},
                      {"address": HOST6.to_string(), "mac": mac(HOST)}],
        "tunnels": TUNNELS.iter().map(|t| serde_json::json!({"name": t.name, "local": t.local,
                                                             "remote": t.remote}))
                          .collect::<Vec<_>>(),
        "routes": routes,
        "manual_sas": sas
    });
    std::fs::write(dir.path("gw.json"), cfg.to_string()).unwrap();
}

/// scapy's side: `encrypt` puts each given inner packet into ESP under the SA it names, as the
/// peer would send it (Ethernet to us); `decrypt` opens every ESP frame of a pcap with the SA
/// of its SPI (AES-GCM checking the ICV, which tshark does not) and prints, a JSON line each,
/// what was in it: the sequence number, trailer and inner packet.
const SCAPY: &str = r#"
import json, struct, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from scapy.all import Ether, IP, IPv6, rdpcap, wrpcap
from scapy.layers.ipsec import ESP, SecurityAssociation

mode, job = sys.argv[1], json.load(open(sys.argv[2]))
sas = {}
keys = {s["spi"]: s["key"] for s in job["sas"]}
for s in job["sas"]:
    outer = IPv6 if ":" in s["src"] else IP
    sas[s["spi"]] = SecurityAssociation(ESP, spi=s["spi"], crypt_algo="AES-GCM",
                                        crypt_key=bytes.fromhex(s["key"]),
                                        tunnel_header=outer(src=s["src"], dst=s["dst"]))
if mode == "encrypt":
    frames = []
    for spi, inner in job["packets"]:
        b = bytes.fromhex(inner)
        pkt = (IP if b[0] >> 4 == 4 else IPv6)(b)
        frames.append(Ether(dst=job["dst"], src=job["src"]) / sas[spi].encrypt(pkt))
    wrpcap(job["pcap"], frames)
else:
    for f in rdpcap(job["pcap"]):
        if ESP not in f:
            continue
        esp = f[ESP]
        sa = sas[esp.spi]
        inner = bytes(sa.decrypt(f.payload))
        # The trailer, which scapy 2.5 does not give right (_ESPPlain.padding is cut from the
        # data after the padding was taken off): the plaintext once more, from AES-GCM itself
        # (RFC 4106: nonce salt || IV, AAD SPI || sequence number).
        k = bytes.fromhex(keys[esp.spi])
        d = bytes(esp.data)
        pt = AESGCM(k[:-4]).decrypt(k[-4:] + d[:8], d[8:], struct.pack("!II", esp.spi, esp.seq))
        padlen, nh = pt[-2], pt[-1]
        assert inner == pt[:-2 - padlen], "scapy and AES-GCM disagree"
        print(json.dumps({"spi": esp.spi, "seq": esp.seq, "nh": nh,
                          "pad": pt[-2 - padlen:-2].hex(), "inner": inner.hex()}))
"#;

fn scapy(dir: &TempDir, python: &str, mode: &str, job: serde_json::Value) -> String {
    let file = dir.path(&format!("scapy-{mode}.json"));
    std::fs::write(&file, job.to_string()).unwrap();
    sh(Command::new(python)
        .arg(dir.path("esp.py"))
        .arg(mode)
        .arg(&file))
}

/// The SAs as scapy needs them: the peer's outbound ones (our `inbound`), or ours to open.
fn scapy_sas(inbound: bool) -> Vec<serde_json::Value> {
    TUNNELS
        .iter()
        .map(|t| {
            let (spi, key, src, dst) = if inbound {
                (t.in_spi, t.in_key, t.remote, t.local)
            } else {
                (t.out_spi, t.out_key, t.local, t.remote)
            };
            serde_json::json!({"spi": spi, "key": key, "src": src, "dst": dst})
        })
        .collect()
}

/// The interpreter that has scapy (and the `cryptography` it encrypts with): Debian's
/// python3-scapy is the system interpreter's, which a python3 first in PATH (pyenv, a venv)
/// may not see.
fn scapy_python() -> Option<&'static str> {
    ["/usr/bin/python3", "python3"].into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import scapy.layers.ipsec, cryptography"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// tshark's decode of an outbound ESP frame: these fields, in this order. The last three are
/// bytes.
const FIELDS: [&str; 18] = [
    "eth.dst",
    "eth.src",
    "frame.protocols",
    "ip.src",
    "ip.dst",
    "ip.ttl",
    "ip.flags.df",
    "ip.checksum.status",
    "ipv6.src",
    "ipv6.dst",
    "ipv6.hlim",
    "esp.spi",
    "esp.sequence",
    "esp.protocol",
    "esp.pad_len",
    "esp.pad",
    "esp.contained_data",
    "udp.payload",
];
const SPI_FIELD: usize = 11;

/// What tshark must show for `inner` (as the gateway received it) sent through `t` as ESP
/// sequence number `seq`. A field of a protocol present twice (IPv4 in IPv4) lists the outer
/// header's value first.
fn expected_row(t: &Tunnel, inner: &[u8], seq: usize) -> Vec<String> {
    let out = hop(inner);
    let (outer6, inner6) = (is_v6(t), inner[0] >> 4 == 6);
    // (src, dst, hops) of the IPv4 headers, and of the IPv6 ones, outer first.
    let mut v4: Vec<[String; 3]> = Vec::new();
    let mut v6: Vec<[String; 3]> = Vec::new();
    let outer = [
        t.local.to_string(),
        t.remote.to_string(),
        OUTER_HOPS.to_string(),
    ];
    if outer6 { &mut v6 } else { &mut v4 }.push(outer);
    let (src, dst) = (addr(inner, false), addr(inner, true));
    let fields = [src.to_string(), dst.to_string(), (HOPS - 1).to_string()];
    if inner6 { &mut v6 } else { &mut v4 }.push(fields);
    let col = |hs: &[[String; 3]], i: usize| {
        hs.iter()
            .map(|h| h[i].as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    // Every IPv4 header has DF (the inner one as sent; the outer one copied from it, or set
    // for IPv6, which nothing on the way may fragment) and a good checksum (1).
    let each_v4 = |v: &str| vec![v; v4.len()].join(",");
    let name = |v6: bool| if v6 { "ipv6" } else { "ip" };
    let hl = if inner6 { 40 } else { 20 };
    let pad = padding(inner.len());
    vec![
        ethernet::Mac(PEER).to_string(),
        ethernet::Mac(GW_WAN).to_string(),
        format!(
            "eth:ethertype:{}:esp:{}:udp:data",
            name(outer6),
            name(inner6)
        ),
        col(&v4, 0),
        col(&v4, 1),
        col(&v4, 2),
        each_v4("1"),
        each_v4("1"),
        col(&v6, 0),
        col(&v6, 1),
        col(&v6, 2),
        format!("0x{:08x}", t.out_spi),
        seq.to_string(),
        // RFC 4303 next header: IP-in-IP (4) or IPv6 (41).
        if inner6 { "0x29" } else { "0x04" }.to_string(),
        pad.len().to_string(),
        hex::encode(&pad),
        hex::encode(&out),
        hex::encode(&out[hl + 8..]),
    ]
}

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
    let Some(python) = scapy_python() else {
        require(test, "scapy (python3-scapy)", false);
        return;
    };
    let dir = TempDir::new("offline-families");
    std::fs::write(dir.path("esp.py"), SCAPY).unwrap();

    // Outbound: every size of every combination, the combinations interleaved so that both
    // families and both tunnels share the gateway's bursts. `sent[t]`: what went into tunnel t,
    // in order, but for the packets over its MTU (`too_big`).
    let mut lan_in = Vec::new();
    let mut sent: [Vec<Vec<u8>>; 2] = Default::default();
    let mut too_big = Vec::new();
    for k in 0..SIZES {
        for (c, &(ti, v6)) in COMBOS.iter().enumerate() {
            let t = &TUNNELS[ti];
            let (src, dst) = if v6 {
                (IpAddr::V6(HOST6), IpAddr::V6(t.far6))
            } else {
                (IpAddr::V4(HOST4), IpAddr::V4(t.far4))
            };
            let p = packet(src, dst, total_len(t.mtu, v6, k), k * 4 + c);
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
    let mut received: [Vec<Vec<u8>>; 2] = Default::default();
    for k in 0..SIZES - 1 {
        for (c, &(ti, v6)) in COMBOS.iter().enumerate() {
            let t = &TUNNELS[ti];
            let (src, dst) = if v6 {
                (IpAddr::V6(t.far6), IpAddr::V6(HOST6))
            } else {
                (IpAddr::V4(t.far4), IpAddr::V4(HOST4))
            };
            let p = packet(src, dst, total_len(t.mtu, v6, k), 100 + k * 4 + c);
            packets.push(serde_json::json!([t.in_spi, hex::encode(&p)]));
            received[ti].push(p);
        }
    }
    let mac = |m: [u8; 6]| ethernet::Mac(m).to_string();
    scapy(
        &dir,
        python,
        "encrypt",
        serde_json::json!({"sas": scapy_sas(true), "packets": packets, "dst": mac(GW_WAN),
                           "src": mac(PEER), "pcap": dir.path("wan-in.pcap")}),
    );

    // One run does both directions: the LAN port reads the cleartext, the WAN port scapy's ESP.
    let prefix = format!("espgw-offline-families-{}", std::process::id());
    config(&dir, &prefix);
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
    assert_eq!(frames.len(), 4 * (SIZES - 1), "only ESP on the WAN");
    tshark_decodes(&wan_out, &sent);
    scapy_decrypts(&dir, python, &wan_out, &sent);

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
    assert_eq!(udp.len(), 4 * (SIZES - 1), "no other UDP on the LAN");
    assert_eq!(icmp.len(), too_big.len());
    // The main lcore answers them in the order they came.
    for (f, (ti, p)) in icmp.iter().zip(&too_big) {
        check_too_big(f, &TUNNELS[*ti], p);
    }
}

/// The gateway's counters: every packet received, encrypted or decrypted and sent, each SA's
/// own, the four over the MTU dropped and answered, nothing else dropped.
fn check_counters(s: &serde_json::Value, sent: &[Vec<Vec<u8>>; 2], received: &[Vec<Vec<u8>>; 2]) {
    let bytes = |ps: &[Vec<Vec<u8>>; 2]| ps.iter().flatten().map(Vec::len).sum::<usize>() as u64;
    let n = |ps: &[Vec<Vec<u8>>; 2]| ps.iter().map(Vec::len).sum::<usize>() as u64;
    let (out, inb, big) = (n(sent), n(received), 4);
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
    assert_eq!(main["icmp_frag_needed_sent"].as_u64(), Some(2), "{main}");
    assert_eq!(
        main["icmpv6_packet_too_big_sent"].as_u64(),
        Some(2),
        "{main}"
    );
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

/// tshark, knowing only the outbound SAs' keys, finds every packet sent into each tunnel, in
/// order, with sequence numbers 1, 2, 3, ...
fn tshark_decodes(wan_out: &std::path::Path, sent: &[Vec<Vec<u8>>; 2]) {
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"])
        .arg(wan_out)
        .args(["-o", "esp.enable_encryption_decode:TRUE"])
        .args(["-o", "ip.check_checksum:TRUE"]);
    for t in &TUNNELS {
        let family = if is_v6(t) { "IPv6" } else { "IPv4" };
        cmd.arg("-o").arg(format!(
            "uat:esp_sa:\"{family}\",\"{}\",\"{}\",\"0x{:08x}\",\"AES-GCM with 16 octet ICV [RFC4106]\",\"0x{}\",\"NULL\",\"\"",
            t.local, t.remote, t.out_spi, t.out_key
        ));
    }
    cmd.args(["-Y", "esp", "-T", "fields", "-E", "separator=/t"]);
    for f in FIELDS {
        cmd.args(["-e", f]);
    }
    let decoded = sh(&mut cmd);
    let rows: Vec<Vec<String>> = decoded
        .lines()
        .map(|l| {
            l.split('\t')
                .enumerate()
                // Older tsharks print bytes with colons.
                .map(|(i, c)| {
                    if i >= FIELDS.len() - 3 {
                        c.replace(':', "")
                    } else {
                        c.to_string()
                    }
                })
                .collect()
        })
        .collect();
    for (ti, t) in TUNNELS.iter().enumerate() {
        let spi = format!("0x{:08x}", t.out_spi);
        let got: Vec<&Vec<String>> = rows
            .iter()
            .filter(|r| r.get(SPI_FIELD) == Some(&spi))
            .collect();
        assert_eq!(got.len(), sent[ti].len(), "{} in tshark: {decoded}", t.name);
        for (i, (row, p)) in got.iter().zip(&sent[ti]).enumerate() {
            let want = expected_row(t, p, i + 1);
            for (f, (g, w)) in FIELDS.iter().zip(row.iter().zip(&want)) {
                assert_eq!(g, w, "{} outbound packet {i}, tshark's {f}", t.name);
            }
            assert_eq!(row.len(), FIELDS.len());
        }
    }
    assert_eq!(rows.len(), 4 * (SIZES - 1), "{decoded}");
}

/// scapy decrypts the same frames (checking the ICV) and finds the same.
fn scapy_decrypts(
    dir: &TempDir,
    python: &str,
    wan_out: &std::path::Path,
    sent: &[Vec<Vec<u8>>; 2],
) {
    let out = scapy(
        dir,
        python,
        "decrypt",
        serde_json::json!({"sas": scapy_sas(false), "pcap": wan_out}),
    );
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 4 * (SIZES - 1), "{out}");
    for (ti, t) in TUNNELS.iter().enumerate() {
        let got: Vec<_> = rows.iter().filter(|r| r["spi"] == t.out_spi).collect();
        assert_eq!(got.len(), sent[ti].len(), "{} in scapy: {out}", t.name);
        for (i, (r, p)) in got.iter().zip(&sent[ti]).enumerate() {
            let nh = if p[0] >> 4 == 6 { 41 } else { 4 };
            assert_eq!(
                (r["seq"].as_u64(), r["nh"].as_u64(), r["pad"].as_str()),
                (
                    Some(i as u64 + 1),
                    Some(nh),
                    Some(hex::encode(padding(p.len())).as_str())
                ),
                "{} outbound packet {i} in scapy: sequence, next header, padding",
                t.name
            );
            assert_eq!(
                r["inner"],
                hex::encode(hop(p)),
                "{} outbound packet {i} in scapy",
                t.name
            );
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
