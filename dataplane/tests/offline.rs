//! Offline run through both gateways, as DPDK's ipsec-secgw is run on pcaps: gw1 encrypts a pcap
//! of cleartext frames (net_pcap), tshark decrypts its output independently, gw2 decrypts it
//! back; malformed, replayed, forged and unknown-SPI packets are dropped and counted.
// The gateway on DPDK: only in builds with it.
#![cfg(feature = "dpdk")]

mod common;
use common::*;
use dataplane::wire::{ethernet, ipv4};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

const GW1_LAN: [u8; 6] = [2, 0, 0, 0, 1, 1];
const GW1_WAN: [u8; 6] = [2, 0, 0, 0, 0xa, 1];
const GW2_WAN: [u8; 6] = [2, 0, 0, 0, 0xa, 2];
const GW2_LAN: [u8; 6] = [2, 0, 0, 0, 2, 1];
const HOST_A: [u8; 6] = [2, 0, 0, 0, 1, 0x10];
const HOST_B: [u8; 6] = [2, 0, 0, 0, 2, 0x10];
const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeff00dcafe";
const N: usize = 200;

fn frame(
    dst: [u8; 6],
    src: [u8; 6],
    from: Ipv4Addr,
    to: Ipv4Addr,
    ttl: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = vec![0u8; 34];
    let eth = ethernet::Repr {
        dst: ethernet::Mac(dst),
        src: ethernet::Mac(src),
        ethertype: ethernet::ETHERTYPE_IPV4,
    };
    eth.emit((&mut f[..14]).try_into().unwrap());
    let mut udp = vec![0x30, 0x39, 0x16, 0x2e, 0, 0, 0, 0];
    udp[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    udp.extend_from_slice(payload);
    let ip = ipv4::Repr {
        tos: 0,
        ident: 1,
        dont_frag: true,
        ttl,
        protocol: ipv4::PROTO_UDP,
        src: from,
        dst: to,
        payload_len: udp.len(),
    };
    ip.emit((&mut f[14..34]).try_into().unwrap());
    f.extend_from_slice(&udp);
    f
}

/// Payload i: a recognisable pattern of a size that walks over all paddings and up to 1400 B.
fn payload(i: usize) -> Vec<u8> {
    let len = [18, 19, 20, 21, 100, 472, 1372][i % 7] + i % 3;
    (0..len).map(|j| (i * 7 + j) as u8).collect()
}

fn config(path: &Path, dir: &Path, gw: u8, rx_lan: &str, rx_wan: &str) {
    let (lan, wan, lan_mac, wan_mac, peer, peer_mac, remote_net, host, host_mac, out_spi, in_spi) =
        if gw == 1 {
            (
                "10.1.0.1/24",
                "192.0.2.1",
                GW1_LAN,
                GW1_WAN,
                "192.0.2.2",
                GW2_WAN,
                "10.2.0.0/16",
                "10.1.0.10",
                HOST_A,
                0x1001,
                0x2001,
            )
        } else {
            (
                "10.2.0.1/24",
                "192.0.2.2",
                GW2_LAN,
                GW2_WAN,
                "192.0.2.1",
                GW1_WAN,
                "10.1.0.0/16",
                "10.2.0.10",
                HOST_B,
                0x2001,
                0x1001,
            )
        };
    let mac = |m: [u8; 6]| ethernet::Mac(m).to_string();
    let d = |f: &str| dir.join(f).display().to_string();
    let cfg = serde_json::json!({
        "dataplane": {
            "eal": ["-l", "0,1", "--no-huge", "-m", "256", "--no-pci", "--no-telemetry",
                    "--file-prefix", format!("espgw-offline-{}-{gw}", std::process::id()),
                    "--vdev", format!("net_pcap0,rx_pcap={},tx_pcap={}", d(rx_lan), d(&format!("gw{gw}-lan-out.pcap"))),
                    "--vdev", format!("net_pcap1,rx_pcap={},tx_pcap={}", d(rx_wan), d(&format!("gw{gw}-wan-out.pcap")))],
            "workers": [1]
        },
        "interfaces": [{"name": "lan0", "port": 0, "address": lan, "mac": mac(lan_mac)},
                       {"name": "wan0", "port": 1, "address": format!("{wan}/24"), "mac": mac(wan_mac)}],
        "neighbors": [{"address": peer, "mac": mac(peer_mac)}, {"address": host, "mac": mac(host_mac)}],
        "tunnels": [{"name": "st0.0", "local": wan, "remote": peer}],
        "routes": [{"prefix": remote_net, "via": "st0.0"}],
        "manual_sas": [
            {"tunnel": "st0.0", "direction": "out", "spi": out_spi, "algorithm": "aes-256-gcm", "key": KEY},
            {"tunnel": "st0.0", "direction": "in", "spi": in_spi, "algorithm": "aes-256-gcm", "key": KEY, "replay_window": 64}
        ]
    });
    std::fs::write(path, cfg.to_string()).unwrap();
}

fn run_gateway(dir: &TempDir, gw: u8) -> serde_json::Value {
    let stats = dir.path(&format!("gw{gw}.stats.json"));
    let out = Command::new(dataplane_bin())
        .arg("--config")
        .arg(dir.path(&format!("gw{gw}.json")))
        .args(["--exit-when-idle", "500", "--stats-file"])
        .arg(&stats)
        .output()
        .unwrap();
    // The EAL leaves its runtime directory behind.
    let _ = std::fs::remove_dir_all(format!(
        "/var/run/dpdk/espgw-offline-{}-{gw}",
        std::process::id()
    ));
    assert!(
        out.status.success(),
        "gw{gw}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    read_stats(&stats)
}

#[test]
fn encrypt_decode_with_tshark_and_decrypt_back() {
    if !require_root("offline pcap run") {
        return;
    }
    let dir = TempDir::new("offline");
    let a = Ipv4Addr::new(10, 1, 0, 10);
    let b = Ipv4Addr::new(10, 2, 0, 10);
    let sent: Vec<Vec<u8>> = (0..N)
        .map(|i| frame(GW1_LAN, HOST_A, a, b, 64, &payload(i)))
        .collect();
    let mut lan_in = sent.clone();
    // Malformed or unroutable: each dropped and counted by gw1.
    let mut bad_csum = sent[0].clone();
    bad_csum[24] ^= 0xff;
    lan_in.push(bad_csum);
    lan_in.push(sent[0][..30].to_vec());
    lan_in.push(frame(GW1_LAN, HOST_A, a, b, 1, b"ttl"));
    lan_in.push(frame(
        GW1_LAN,
        HOST_A,
        a,
        Ipv4Addr::new(172, 16, 0, 1),
        64,
        b"nowhere",
    ));
    lan_in.push(frame([2, 0, 0, 0, 9, 9], HOST_A, a, b, 64, b"not for us"));
    write_pcap(&dir.path("lan-in.pcap"), &lan_in);
    write_pcap(&dir.path("empty.pcap"), &[]);

    config(
        &dir.path("gw1.json"),
        &dir.0,
        1,
        "lan-in.pcap",
        "empty.pcap",
    );
    let s1 = run_gateway(&dir, 1);
    assert_eq!(counter(&s1, "rx_packets"), (N + 5) as u64);
    assert_eq!(counter(&s1, "encrypted_packets"), N as u64);
    assert_eq!(counter(&s1, "bad_ip_checksum"), 1);
    assert_eq!(counter(&s1, "malformed"), 1);
    assert_eq!(counter(&s1, "ttl_exceeded"), 1);
    assert_eq!(counter(&s1, "no_route"), 1);
    assert_eq!(counter(&s1, "not_for_us"), 1);
    assert!(s1["active_seconds"].as_f64().unwrap() > 0.0);

    // tshark, knowing only the key, finds every inner packet in order, sequence numbers 1..N.
    let wan = dir.path("gw1-wan-out.pcap");
    let sa = format!(
        "uat:esp_sa:\"IPv4\",\"192.0.2.1\",\"192.0.2.2\",\"0x00001001\",\"AES-GCM with 16 octet ICV [RFC4106]\",\"0x{KEY}\",\"NULL\",\"\""
    );
    let fields = sh(Command::new("tshark")
        .args(["-n", "-r"])
        .arg(&wan)
        .args([
            "-o",
            "esp.enable_encryption_decode:TRUE",
            "-o",
            &sa,
            "-Y",
            "esp",
            "-T",
            "fields",
        ])
        .args([
            "-e",
            "esp.spi",
            "-e",
            "esp.sequence",
            "-e",
            "ip.src",
            "-e",
            "ip.dst",
            "-e",
            "udp.payload",
        ]));
    let rows: Vec<&str> = fields.lines().collect();
    assert_eq!(rows.len(), N, "{fields}");
    for (i, row) in rows.iter().enumerate() {
        let cols: Vec<&str> = row.split('\t').collect();
        assert_eq!(cols[0], "0x00001001");
        assert_eq!(
            cols[1],
            (i + 1).to_string(),
            "sequence numbers 1, 2, 3, ..."
        );
        assert_eq!(cols[2], "192.0.2.1,10.1.0.10");
        assert_eq!(cols[3], "192.0.2.2,10.2.0.10");
        assert_eq!(
            cols[4].replace(':', ""),
            hex::encode(payload(i)),
            "inner payload {i}"
        );
    }

    // gw2 decrypts it back, with a replay, a forgery and an unknown SPI mixed in.
    let mut esp_in = read_pcap(&wan);
    assert_eq!(esp_in.len(), N);
    // A fresh sequence number passes the replay pre-check, then fails the ICV (it is in the AAD).
    let mut forged = esp_in[3].clone();
    forged[38..42].copy_from_slice(&(N as u32 + 10).to_be_bytes());
    let mut unknown = esp_in[4].clone();
    unknown[34..38].copy_from_slice(&0xdeadu32.to_be_bytes());
    esp_in.extend([esp_in[5].clone(), forged, unknown]);
    // The last ten arrive fragmented, as a router on the way with a 76-byte MTU would cut
    // them, their fragments in reverse order: gw2 puts them back together (`reassembly`)
    // before it decrypts them. A copy of packet 7, cut too, has an overlapping piece: that set
    // is dropped and counted.
    let cut = |frame: &[u8], ident: Option<u16>| -> Vec<Vec<u8>> {
        let mut ip = frame[14..].to_vec();
        // gw1 copied the inner DF; a path that fragments had it clear (`df: "clear"`).
        ip[6] &= !0x40;
        if let Some(id) = ident {
            ip[4..6].copy_from_slice(&id.to_be_bytes());
        }
        ipv4::Packet::new_checked(&mut ip[..])
            .unwrap()
            .fill_checksum();
        let mut out = Vec::new();
        ipv4::fragment(&ip, 76, |f| out.push([&frame[..14], f].concat())).unwrap();
        assert!(out.len() >= 2);
        out
    };
    let mut fragments = 0;
    for i in N - 10..N {
        let mut f = cut(&esp_in[i], None);
        f.reverse();
        fragments += f.len();
        esp_in.extend(f);
    }
    let mut overlapping = cut(&esp_in[7], Some(0x5151));
    let second = &mut overlapping[1];
    let off = u16::from_be_bytes([second[20], second[21]]);
    second[20..22].copy_from_slice(&(off - 1).to_be_bytes());
    ipv4::Packet::new_checked(&mut second[14..])
        .unwrap()
        .fill_checksum();
    fragments += 2;
    esp_in.extend(overlapping.into_iter().take(2));
    esp_in.drain(N - 10..N);
    write_pcap(&dir.path("wan-in.pcap"), &esp_in);
    config(
        &dir.path("gw2.json"),
        &dir.0,
        2,
        "empty.pcap",
        "wan-in.pcap",
    );
    let s2 = run_gateway(&dir, 2);
    assert_eq!(counter(&s2, "decrypted_packets"), N as u64);
    let main = &s2["main"];
    assert_eq!(
        main["reassembly_fragments"].as_u64(),
        Some(fragments as u64),
        "{main}"
    );
    assert_eq!(main["reassembled"].as_u64(), Some(10), "{main}");
    assert_eq!(main["reassembly_overlaps"].as_u64(), Some(1), "{main}");
    assert_eq!(counter(&s2, "replay_errors"), 1);
    assert_eq!(counter(&s2, "esp_auth_failures"), 1);
    assert_eq!(counter(&s2, "invalid_spi"), 1);
    let sa_in = &s2["sas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["direction"] == "in")
        .unwrap()
        .clone();
    assert_eq!(
        (
            sa_in["packets"].as_u64(),
            sa_in["replay_errors"].as_u64(),
            sa_in["auth_failures"].as_u64()
        ),
        (Some(N as u64), Some(1), Some(1))
    );

    let got = read_pcap(&dir.path("gw2-lan-out.pcap"));
    assert_eq!(got.len(), N);
    for (i, (g, s)) in got.iter().zip(&sent).enumerate() {
        assert_eq!(
            &g[..12],
            &[HOST_B, GW2_LAN].concat()[..],
            "frame {i} addressed to host b"
        );
        assert_eq!(g[14 + 8], 62, "two router hops");
        assert_eq!(
            (&g[12..22], &g[26..]),
            (&s[12..22], &s[26..]),
            "frame {i} otherwise as sent"
        );
    }
}
