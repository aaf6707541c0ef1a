//! End to end in network namespaces (the demo topology, scripts/topology.sh): kernel hosts
//! ping each other through two espgw-dataplane gateways on net_af_packet ports. tshark,
//! capturing between the gateways, decrypts the ESP with the SA keys and must find exactly
//! the packets that were sent, under strictly consecutive ESP sequence numbers.

mod common;
use common::*;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

fn wait_for(path: &std::path::Path, text: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::fs::read_to_string(path).is_ok_and(|s| s.contains(text)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{what} did not start: {}",
        std::fs::read_to_string(path).unwrap_or_default()
    );
}

fn in_ns(ns: &str, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).args(args);
    c
}

fn ping(ns: &str, to: &str, count: usize, size: usize) -> String {
    let (c, s) = (count.to_string(), size.to_string());
    let out = in_ns(
        ns,
        &[
            "ping", "-n", "-q", "-c", &c, "-s", &s, "-i", "0.02", "-W", "2", to,
        ],
    )
    .output()
    .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn e2e(mode: &str) {
    if !require_root(&format!("netns e2e ({mode})")) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let name = format!("espgw-t{}{}", std::process::id() % 100_000, &mode[..1]);
    let dir = TempDir::new(&format!("netns-{mode}"));
    let scripts = repo_root().join("scripts");
    let _topo = Topology { name: name.clone() };
    sh(Command::new(scripts.join("topology.sh"))
        .args(["up", &name])
        .arg(&dir.0)
        .arg(mode));

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

    // Hosts talk to their own gateways first (ARP both ways, ICMP answered by the main lcore).
    assert!(ping(&format!("{name}-a"), "10.1.0.1", 2, 56).contains(" 0% packet loss"));
    assert!(ping(&format!("{name}-b"), "10.2.0.1", 2, 56).contains(" 0% packet loss"));
    // Then across the tunnel, small and large packets.
    let small = ping(&format!("{name}-a"), "10.2.0.10", 40, 56);
    assert!(
        small.contains("40 packets transmitted, 40 received"),
        "{small}"
    );
    let large = ping(&format!("{name}-a"), "10.2.0.10", 20, 1300);
    assert!(
        large.contains("20 packets transmitted, 20 received"),
        "{large}"
    );
    // Host b pings gw1's LAN address: the reply is originated by gw1 and goes into the tunnel.
    let far = ping(&format!("{name}-b"), "10.1.0.1", 3, 56);
    assert!(far.contains("3 packets transmitted, 3 received"), "{far}");

    std::thread::sleep(Duration::from_millis(300));
    cap.stop(libc::SIGINT);
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
        .args(["-e", "icmp.seq", "-e", "data.len"])
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
    let mut requests = Vec::new();
    let mut replies = Vec::new();
    let mut to_gw1 = (0, 0);
    for row in fields.lines() {
        let c: Vec<&str> = row.split('\t').collect();
        assert!(c.len() >= 5, "undecoded row {row:?}");
        seqs.entry(c[0].to_string())
            .or_default()
            .push(c[1].parse().unwrap());
        let inner_dst = c[2].rsplit(',').next().unwrap_or("");
        match (c[3], inner_dst) {
            ("8", "10.2.0.10") => requests.push(c[4].parse::<u32>().unwrap()),
            ("0", "10.1.0.10") => replies.push(c[4].parse::<u32>().unwrap()),
            ("8", "10.1.0.1") => to_gw1.0 += 1, // host b pinging gw1's LAN address
            ("0", "10.2.0.10") => to_gw1.1 += 1, // and gw1's replies
            other => panic!("unexpected inner packet {other:?} in {row}"),
        }
    }
    let expect: Vec<u32> = (1..=40).chain(1..=20).collect();
    assert_eq!(
        requests, expect,
        "tshark found exactly the echo requests host a sent"
    );
    assert_eq!(replies, expect, "and exactly host b's replies");
    assert_eq!(to_gw1, (3, 3));
    for (spi, s) in &seqs {
        let want: Vec<u64> = (1..=s.len() as u64).collect();
        assert_eq!(
            s, &want,
            "SA {spi}: sequence numbers on the wire 1, 2, 3, ... without gap or repeat"
        );
    }
    assert_eq!(seqs.len(), 2, "{seqs:?}");

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
        assert!(counter(&st, "encrypted_packets") >= 60, "{g}");
        assert!(counter(&st, "decrypted_packets") >= 60, "{g}");
    }
    let s1 = read_stats(&dir.path("gw1.stats.json"));
    assert_eq!(
        s1["main"]["icmp_echo_replies"].as_u64(),
        Some(5),
        "2 from host a, 3 from host b through the tunnel"
    );
}

#[test]
fn raw_esp_between_namespaces() {
    e2e("raw");
}

#[test]
fn nat_t_between_namespaces() {
    e2e("natt");
}
