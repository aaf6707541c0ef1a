//! End to end in network namespaces (the demo topology, scripts/topology.sh): kernel hosts
//! ping each other through two espgw-dataplane gateways on net_af_packet ports, with one or
//! several tunnels and workers. tshark, capturing between the gateways, decrypts the ESP with
//! the SA keys and must find exactly the packets that were sent, under strictly consecutive
//! ESP sequence numbers per SA.
// The gateway on DPDK: only in builds with it.
#![cfg(feature = "dpdk")]

mod common;
use common::*;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// The gateways of both tests would share the same two CPUs: run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

struct Topology {
    name: String,
}

impl Drop for Topology {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts/topology.sh"))
            .args(["down", &self.name])
            .status();
    }
}

/// A process we started, stopped by PID (SIGTERM, then waited for) when dropped.
struct Proc(Child);

impl Proc {
    fn stop(&mut self, sig: i32) {
        // SAFETY: kill on the PID of a child we spawned and have not yet reaped.
        unsafe { libc::kill(self.0.id() as i32, sig) };
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.stop(libc::SIGTERM);
        }
    }
}

fn in_ns(ns: &str, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).args(args);
    c
}

fn ping_from(ns: &str, from: &str, to: &str, count: usize, size: usize) -> String {
    let (c, s) = (count.to_string(), size.to_string());
    let args = [
        "ping", "-n", "-q", "-I", from, "-c", &c, "-s", &s, "-i", "0.02", "-W", "2", to,
    ];
    let out = in_ns(ns, &args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the topology with `tunnels` tunnels and `workers` workers per gateway, pings across
/// every tunnel and checks what tshark decrypts, the sequence numbers and the counters.
fn e2e(mode: &str, tunnels: usize, workers: usize) {
    if !require_root(&format!(
        "netns e2e ({mode}, {tunnels} tunnels, {workers} workers)"
    )) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let name = format!(
        "espgw-t{}{}{tunnels}{workers}",
        std::process::id() % 100_000,
        &mode[..1]
    );
    let dir = TempDir::new(&format!("netns-{mode}-{tunnels}-{workers}"));
    let scripts = repo_root().join("scripts");
    let _topo = Topology { name: name.clone() };
    sh(Command::new(scripts.join("topology.sh"))
        .args(["up", &name])
        .arg(&dir.0)
        .args([mode, &tunnels.to_string(), &workers.to_string()]));

    let mut gws = Vec::new();
    for g in ["gw1", "gw2"] {
        let log = std::fs::File::create(dir.path(&format!("{g}.log"))).unwrap();
        let child = in_ns(&format!("{name}-{g}"), &[])
            .arg(dataplane_bin())
            .arg("--config")
            .arg(dir.path(&format!("{g}.json")))
            .arg("--stats-file")
            .arg(dir.path(&format!("{g}.stats.json")))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        gws.push(Proc(child));
    }
    for g in ["gw1", "gw2"] {
        wait_for(&dir.path(&format!("{g}.log")), "forwarding on", g);
    }
    let (a, b) = (format!("{name}-a"), format!("{name}-b"));
    // Every host address talks to its own gateway first, without crossing a tunnel: ARP is
    // resolved both ways, so the tunnel traffic below loses nothing.
    for i in 0..tunnels {
        ping_from(&a, &format!("10.1.{i}.10"), "10.1.0.1", 2, 56);
        ping_from(&b, &format!("10.2.{i}.10"), "10.2.0.1", 2, 56);
    }
    let cap_log = std::fs::File::create(dir.path("tshark.log")).unwrap();
    let pcap = dir.path("wan.pcap");
    let mut cap = Proc(
        in_ns(
            &format!("{name}-gw2"),
            &[
                "tshark",
                "-n",
                "-q",
                "-i",
                "wan",
                "-a",
                "duration:120",
                "-w",
            ],
        )
        .arg(&pcap)
        .stdout(Stdio::null())
        .stderr(cap_log)
        .spawn()
        .unwrap(),
    );
    wait_for(&dir.path("tshark.log"), "Capturing on", "tshark");
    // dumpcap announces the capture a moment before its socket sees packets.
    std::thread::sleep(Duration::from_millis(500));

    // Across every tunnel, small and large packets.
    for i in 0..tunnels {
        let (src, dst) = (format!("10.1.{i}.10"), format!("10.2.{i}.10"));
        let small = ping_from(&a, &src, &dst, 40, 56);
        assert!(
            small.contains("40 packets transmitted, 40 received"),
            "tunnel {i}: {small}"
        );
        let large = ping_from(&a, &src, &dst, 20, 1300);
        assert!(
            large.contains("20 packets transmitted, 20 received"),
            "tunnel {i}: {large}"
        );
    }
    // Host b pings gw1's LAN address: the reply is originated by gw1 and goes into the tunnel.
    let far = ping_from(&b, "10.2.0.10", "10.1.0.1", 3, 56);
    assert!(far.contains("3 packets transmitted, 3 received"), "{far}");

    std::thread::sleep(Duration::from_millis(300));
    cap.stop(libc::SIGINT);
    if tunnels == 1 {
        path_mtu_discovery(&dir, &a, &b, if mode == "natt" { 1438 } else { 1446 });
        if mode == "raw" {
            fragmented_esp_is_reassembled(&dir, &name);
        }
    }
    for g in &mut gws {
        g.stop(libc::SIGTERM);
    }

    let mut fields = String::new();
    let mut dec = Command::new(scripts.join("decode.sh"))
        .arg(&pcap)
        .arg(&dir.0)
        .args([
            "-Y",
            "esp",
            "-T",
            "fields",
            "-e",
            "esp.spi",
            "-e",
            "esp.sequence",
            "-e",
            "ip.dst",
            "-e",
            "icmp.type",
        ])
        .args(["-e", "icmp.seq"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    dec.stdout
        .take()
        .unwrap()
        .read_to_string(&mut fields)
        .unwrap();
    assert!(dec.wait().unwrap().success());

    let mut seqs: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    let mut requests: std::collections::BTreeMap<String, Vec<u32>> = Default::default();
    let mut replies: std::collections::BTreeMap<String, Vec<u32>> = Default::default();
    let mut to_gw1 = (0, 0);
    for row in fields.lines() {
        let c: Vec<&str> = row.split('\t').collect();
        assert!(c.len() >= 5, "undecoded row {row:?}");
        seqs.entry(c[0].to_string())
            .or_default()
            .push(c[1].parse().unwrap());
        let inner_dst = c[2].rsplit(',').next().unwrap_or("").to_string();
        let icmp_seq = c[4].parse::<u32>().unwrap();
        match (c[3], inner_dst.as_str()) {
            ("8", "10.1.0.1") => to_gw1.0 += 1, // host b pinging gw1's LAN address
            ("0", "10.2.0.10") => to_gw1.1 += 1, // and gw1's replies: the only echo replies towards b
            ("8", d) if d.starts_with("10.2.") => requests
                .entry(inner_dst.clone())
                .or_default()
                .push(icmp_seq),
            ("0", d) if d.starts_with("10.1.") => {
                replies.entry(inner_dst.clone()).or_default().push(icmp_seq)
            }
            other => panic!("unexpected inner packet {other:?} in {row}"),
        }
    }
    let expect: Vec<u32> = (1..=40).chain(1..=20).collect();
    for i in 0..tunnels {
        assert_eq!(
            requests.get(&format!("10.2.{i}.10")),
            Some(&expect),
            "tunnel {i}: exactly the echo requests sent"
        );
        assert_eq!(
            replies.get(&format!("10.1.{i}.10")),
            Some(&expect),
            "tunnel {i}: exactly the replies"
        );
    }
    assert_eq!(to_gw1, (3, 3));
    assert_eq!(
        seqs.len(),
        2 * tunnels,
        "every SA carried traffic: {seqs:?}"
    );
    for (spi, s) in &seqs {
        let want: Vec<u64> = (1..=s.len() as u64).collect();
        assert_eq!(
            s, &want,
            "SA {spi}: sequence numbers on the wire 1, 2, 3, ... without gap or repeat"
        );
    }

    let mut handed_off = 0;
    for g in ["gw1", "gw2"] {
        let st = read_stats(&dir.path(&format!("{g}.stats.json")));
        for bad in [
            "esp_auth_failures",
            "replay_errors",
            "invalid_spi",
            "bad_trailers",
            "bad_headers",
            "tx_drops",
        ] {
            assert_eq!(counter(&st, bad), 0, "{g} {bad}");
        }
        assert!(
            counter(&st, "encrypted_packets") >= 60 * tunnels as u64,
            "{g}"
        );
        assert!(
            counter(&st, "decrypted_packets") >= 60 * tunnels as u64,
            "{g}"
        );
        // The tunnel map follows the anchoring rules: one gateway pair, so one group (the
        // default, one per socket) with the tunnels spread evenly over its workers.
        let map = st["tunnel_map"].as_array().unwrap();
        assert_eq!(map.len(), 1, "{g}: {map:?}");
        assert_eq!(map[0]["tunnels"].as_u64(), Some(tunnels as u64));
        assert_eq!(
            map[0]["load_factor"].as_f64(),
            Some(tunnels as f64 / workers as f64)
        );
        let per_worker: Vec<u64> = map[0]["workers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["tunnels"].as_u64().unwrap())
            .collect();
        assert_eq!(per_worker.len(), workers);
        assert!(
            per_worker.iter().max().unwrap() - per_worker.iter().min().unwrap() <= 1,
            "{g}: {per_worker:?}"
        );
        for w in map[0]["workers"].as_array().unwrap() {
            assert_eq!(
                w["sas"].as_u64(),
                Some(2 * w["tunnels"].as_u64().unwrap()),
                "in and out SAs on one worker"
            );
        }
        for w in st["workers"].as_array().unwrap() {
            assert!(
                w["handoff"]["congestion_drops"]
                    .as_object()
                    .unwrap()
                    .is_empty(),
                "{g}: {w}"
            );
            handed_off += w["handoff"]["received"].as_u64().unwrap();
        }
    }
    if workers > 1 {
        // All ESP between the gateways shares one outer flow, so it lands on one queue: the
        // tunnels anchored on the other worker must have been handed off.
        assert!(handed_off > 0, "no packet was handed off");
    }
    let s1 = read_stats(&dir.path("gw1.stats.json"));
    assert!(s1["main"]["icmp_echo_replies"].as_u64().unwrap() >= 3);
    if tunnels == 1 {
        assert!(s1["main"]["icmp_frag_needed_sent"].as_u64().unwrap() >= 1);
        assert!(s1["main"]["prefragmented"].as_u64().unwrap() >= 3);
        assert_eq!(s1["main"]["prefragment_drops"].as_u64(), Some(0));
        assert!(counter(&s1, "exceeds_tunnel_mtu") >= 1);
    }
}

/// The ones'-complement checksum (RFC 1071) of `data`.
fn inet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 header (no options) for `payload_len` bytes, checksum filled.
fn ipv4_header(src: [u8; 4], dst: [u8; 4], proto: u8, ident: u16, payload_len: usize) -> Vec<u8> {
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&((20 + payload_len) as u16).to_be_bytes());
    h.extend_from_slice(&ident.to_be_bytes());
    h.extend_from_slice(&[0, 0, 64, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    let c = inet_checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h
}

/// Host b's count of ICMP echo requests received.
fn echos_received(b: &str) -> u64 {
    let out = in_ns(b, &["cat", "/proc/net/snmp"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines().filter(|l| l.starts_with("Icmp:"));
    let (names, values) = (lines.next().unwrap_or(""), lines.next().unwrap_or(""));
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "InEchos")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// ESP fragmented on the way (here: made with gw2's inbound SA by the aes-gcm crate, the outer
/// packet cut into 576-byte fragments with `ipv4::fragment`, sent in reverse order onto gw2's
/// WAN from gw1's side): gw2 decrypts it and host b gets the echo request inside. On
/// `net_af_packet` the kernel puts fragments back together before DPDK's socket sees them
/// (the PMD asks for PACKET_FANOUT_FLAG_DEFRAG): the dataplane's own reassembly, what a NIC
/// needs, is exercised by the offline test (net_pcap) instead.
fn fragmented_esp_is_reassembled(dir: &TempDir, name: &str) {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path("gw2.json")).unwrap()).unwrap();
    let sa = cfg["manual_sas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["direction"] == "in" && s["algorithm"] == "aes-128-gcm")
        .unwrap();
    let spi =
        u32::from_str_radix(sa["spi"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    let key = hex::decode(sa["key"].as_str().unwrap()).unwrap();
    // The inner packet: an echo request a -> b with 1200 bytes of data.
    let mut icmp = vec![8u8, 0, 0, 0, 0x42, 0x42, 0, 1];
    icmp.extend((0..1200u32).map(|i| i as u8));
    let c = inet_checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut inner = ipv4_header([10, 1, 0, 10], [10, 2, 0, 10], 1, 0x4242, icmp.len());
    inner.extend_from_slice(&icmp);
    // ESP (RFC 4303, RFC 4106): SPI, sequence number, IV, then the padded inner packet sealed.
    let seq: u32 = 3_000_000_000;
    let iv = u64::from(seq).to_be_bytes();
    let mut plain = inner;
    let pad = (4 - (plain.len() + 2) % 4) % 4;
    plain.extend((1..=pad as u8).collect::<Vec<u8>>());
    plain.extend_from_slice(&[pad as u8, 4]);
    let mut aad = spi.to_be_bytes().to_vec();
    aad.extend_from_slice(&seq.to_be_bytes());
    let mut nonce = key[16..20].to_vec();
    nonce.extend_from_slice(&iv);
    let sealed = aes_gcm::Aes128Gcm::new_from_slice(&key[..16])
        .unwrap()
        .encrypt(
            aes_gcm::Nonce::from_slice(&nonce),
            Payload {
                msg: &plain,
                aad: &aad,
            },
        )
        .unwrap();
    let mut esp = aad.clone();
    esp.extend_from_slice(&iv);
    esp.extend_from_slice(&sealed);
    let mut outer = ipv4_header([192, 0, 2, 1], [192, 0, 2, 2], 50, 0x7777, esp.len());
    outer.extend_from_slice(&esp);
    let mut frags = Vec::new();
    dataplane::wire::ipv4::fragment(&outer, 576, |f| frags.push(f.to_vec())).unwrap();
    assert_eq!(frags.len(), 3);
    frags.reverse();
    // Frames to gw2's WAN port, sent from gw1's side of the link.
    let gw2_mac = sh(&mut in_ns(
        &format!("{name}-gw2"),
        &["cat", "/sys/class/net/wan/address"],
    ));
    let mac: Vec<u8> = gw2_mac
        .trim()
        .split(':')
        .map(|x| u8::from_str_radix(x, 16).unwrap())
        .collect();
    let frames: Vec<String> = frags
        .iter()
        .map(|f| {
            let mut fr = mac.clone();
            fr.extend_from_slice(&[2, 0, 0, 0, 0xee, 1, 8, 0]);
            fr.extend_from_slice(f);
            hex::encode(fr)
        })
        .collect();
    std::fs::write(dir.path("frames.hex"), frames.join("\n")).unwrap();
    let before = echos_received(&format!("{name}-b"));
    sh(in_ns(
        &format!("{name}-gw1"),
        &[
            "python3",
            "-c",
            "import socket,sys\ns=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\ns.bind(('wan',0))\nfor l in open(sys.argv[1]):\n    s.send(bytes.fromhex(l.strip()))",
        ],
    )
    .arg(dir.path("frames.hex")));
    let mut after = before;
    for _ in 0..50 {
        after = echos_received(&format!("{name}-b"));
        if after > before {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        after,
        before + 1,
        "the reassembled ESP did not reach host b"
    );
}

/// Hosts with MTU 1500 across the tunnel: a 1500-byte packet with DF is too big for it, and
/// the gateway answers ICMP "fragmentation needed" with the tunnel's MTU (RFC 1191), which
/// the sender's kernel then keeps for the path; a TCP transfer (whose segments carry DF) goes
/// through by path MTU discovery.
fn path_mtu_discovery(dir: &TempDir, a: &str, b: &str, mtu: usize) {
    let out = in_ns(
        a,
        &[
            "ping",
            "-n",
            "-M",
            "do",
            "-s",
            "1472",
            "-c",
            "1",
            "-W",
            "2",
            "-I",
            "10.1.0.10",
            "10.2.0.10",
        ],
    )
    .output()
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("Frag needed and DF set (mtu = {mtu})")),
        "{text}"
    );
    let route = in_ns(a, &["ip", "route", "get", "10.2.0.10", "from", "10.1.0.10"])
        .output()
        .unwrap();
    let route = String::from_utf8_lossy(&route.stdout);
    assert!(route.contains(&format!("mtu {mtu}")), "{route}");
    // DF clear: gw1 cuts the 1500-byte echoes before encryption; b puts them back together.
    let out = in_ns(
        a,
        &[
            "ping",
            "-n",
            "-M",
            "dont",
            "-s",
            "1472",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "2",
            "-I",
            "10.1.0.10",
            "10.2.0.10",
        ],
    )
    .output()
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("3 packets transmitted, 3 received"), "{text}");
    // Two router hops, whether the echo replies were cut on the way back or not: a packet cut
    // before encryption is not counted as routed twice.
    assert!(
        text.contains("ttl=62") && !text.contains("ttl=61"),
        "{text}"
    );
    // 2 MB over TCP, b -> a, checked byte for byte.
    let blob: Vec<u8> = (0..2_000_000u32)
        .map(|i| (i * 13 + i / 509) as u8)
        .collect();
    std::fs::write(dir.path("blob"), &blob).unwrap();
    let _server = Proc(
        in_ns(
            b,
            &[
                "python3",
                "-m",
                "http.server",
                "--bind",
                "10.2.0.10",
                "8080",
                "--directory",
            ],
        )
        .arg(&dir.0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    );
    // The gateways' pollers keep both CPUs busy: the server may take seconds to listen.
    let listening = || {
        in_ns(b, &["ss", "-ltn", "sport", "= :8080"])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("LISTEN"))
    };
    for _ in 0..200 {
        if listening() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let fetched = dir.path("fetched");
    let mut ok = false;
    for _ in 0..5 {
        let s = in_ns(a, &["curl", "-sf", "--max-time", "20", "-o"])
            .arg(&fetched)
            .arg("http://10.2.0.10:8080/blob")
            .status()
            .unwrap();
        if s.success() {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(ok, "no TCP transfer across the tunnel");
    assert!(
        std::fs::read(&fetched).unwrap() == blob,
        "the TCP transfer changed bytes"
    );
}

#[test]
fn raw_esp_between_namespaces() {
    e2e("raw", 1, 1);
}

#[test]
fn nat_t_between_namespaces() {
    e2e("natt", 1, 1);
}

/// Several tunnels anchored over two workers per gateway, on two-queue ports: packets that
/// arrive on the worker not owning their SA are handed off, and nothing is lost, duplicated
/// or reordered within an SA.
#[test]
fn four_tunnels_over_two_workers_with_handoff() {
    e2e("natt", 4, 2);
}
