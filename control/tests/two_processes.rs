//! espgw-control and espgw-dataplane as two real processes on each of two gateways, in the
//! network namespaces of scripts/topology.sh (CONTROL=1): the control pushes the configuration
//! over the channel, hosts ping across the tunnel, a commit changes a route live and a
//! rollback puts it back, and a `kill -9` of a control during a bounded ping flood loses
//! nothing; the restarted control changes nothing the dataplane already has.

#[path = "common/gateways.rs"]
mod gateways;
#[path = "../../dataplane/tests/common/host.rs"]
mod host;
use gateways::*;
use host::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The REST port's largest body.
fn api_limit() -> usize {
    control::api::MAX_BODY
}

#[test]
fn control_and_dataplane_as_two_processes() {
    if !require_root("two processes in network namespaces") {
        return;
    }
    let name = format!("espgw-c{}", std::process::id() % 100_000);
    let dir = std::env::temp_dir().join(format!("espgw-ctl-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let topo = Topology {
        name: name.clone(),
        dir: dir.clone(),
    };
    let ok = Command::new(repo_root().join("scripts/topology.sh"))
        .env("CONTROL", "1")
        .args(["up", &name])
        .arg(&dir)
        .args(["raw", "1", "1"])
        .status()
        .unwrap();
    assert!(ok.success());
    let p = |f: &str| dir.join(f);
    let token_file = p("token");
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_string();
    let ns = |g: &str| format!("{name}-{g}");

    let mut dps = Vec::new();
    for g in ["gw1", "gw2"] {
        dps.push(spawn(
            &ns(g),
            &bin("espgw-dataplane"),
            &p(&format!("{g}.json")),
            &p(&format!("{g}.dp.log")),
        ));
    }
    for g in ["gw1", "gw2"] {
        wait_for(
            &p(&format!("{g}.dp.log")),
            "ready for the control process",
            g,
        );
    }
    // Nothing is installed before the control comes: no route into the tunnel yet.
    let (_, got) = ping(&ns("a"), "10.1.0.10", "10.2.0.10", 2, "0.2");
    assert_eq!(got, 0, "no tunnel before the control pushes it");

    let mut ctls = Vec::new();
    for g in ["gw1", "gw2"] {
        ctls.push(spawn(
            &ns(g),
            &bin("espgw-control"),
            &p(&format!("{g}.json")),
            &p(&format!("{g}.ctl.log")),
        ));
    }
    for g in ["gw1", "gw2"] {
        wait_for(&p(&format!("{g}.ctl.log")), "espgw-control: resync:", g);
    }
    let log = std::fs::read_to_string(p("gw1.ctl.log")).unwrap();
    assert!(log.contains("6 changes, 6 installed, 0 stale"), "{log}");

    // ARP both ways first, then the tunnel loses nothing.
    ping(&ns("a"), "10.1.0.10", "10.1.0.1", 2, "0.2");
    ping(&ns("b"), "10.2.0.10", "10.2.0.1", 2, "0.2");
    ping(&ns("a"), "10.1.0.10", "10.2.0.10", 2, "0.2");
    assert_eq!(
        ping(&ns("a"), "10.1.0.10", "10.2.0.10", 20, "0.05"),
        (20, 20)
    );

    // REST: health without a token, everything else only with it; no key in any answer.
    let (code, body) = http(&ns("gw1"), "/v1/health", None);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"attached\":true"), "{body}");
    assert_eq!(http(&ns("gw1"), "/v1/status", None).0, 401);
    assert_eq!(
        http(&ns("gw1"), "/v1/config", Some("wrong-token-wrong-token")).0,
        401
    );
    let (code, body) = http(&ns("gw1"), "/v1/config", Some(&token));
    assert_eq!(code, 200, "{body}");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p("gw1.json")).unwrap()).unwrap();
    for sa in cfg["manual_sas"].as_array().unwrap() {
        let key = sa["key"].as_str().unwrap();
        assert!(!body.contains(key), "a key in /v1/config");
    }
    assert!(body.contains("<redacted>"));
    let (code, body) = http(&ns("gw1"), "/openapi.json", Some(&token));
    assert_eq!(code, 200);
    assert!(body.contains("/v1/config/commit"), "{body}");
    let (code, body) = http(&ns("gw1"), "/metrics", Some(&token));
    assert_eq!(code, 200);
    assert!(body.contains("espgw_control_dataplane_alive 1"), "{body}");

    // A bad candidate changes nothing and names the field.
    let mut bad = cfg.clone();
    bad["routes"][0]["via"] = serde_json::json!("st0.7");
    std::fs::write(p("bad.json"), bad.to_string()).unwrap();
    let e = cli(
        &ns("gw1"),
        &token_file,
        &["commit", "check", p("bad.json").to_str().unwrap()],
    )
    .unwrap_err();
    assert!(e.contains("routes[0]"), "{e}");
    // A live route change: the route into the tunnel goes, and traffic stops (dropped and
    // counted as no route); rollback 1 brings it back. The SAs are not touched.
    let mut no_route = cfg.clone();
    no_route["routes"] = serde_json::json!([]);
    std::fs::write(p("no-route.json"), no_route.to_string()).unwrap();
    let out = cli(
        &ns("gw1"),
        &token_file,
        &["commit", p("no-route.json").to_str().unwrap()],
    )
    .unwrap();
    assert!(out.contains("commit complete (1 changes"), "{out}");
    assert_eq!(ping(&ns("a"), "10.1.0.10", "10.2.0.10", 3, "0.1").1, 0);
    // Back through the candidate: loaded, then committed with no file.
    let out = cli(
        &ns("gw1"),
        &token_file,
        &["load", "override", p("gw1.json").to_str().unwrap()],
    )
    .unwrap();
    assert!(out.contains("load complete"), "{out}");
    let (code, body) = http(&ns("gw1"), "/v1/config/candidate", Some(&token));
    assert_eq!(code, 200);
    assert!(
        body.contains("<redacted>") && body.contains("10.2.0.0/24"),
        "{body}"
    );
    let out = cli(&ns("gw1"), &token_file, &["commit"]).unwrap();
    assert!(out.contains("commit complete (1 changes"), "{out}");
    assert_eq!(
        http(&ns("gw1"), "/v1/config/candidate", Some(&token)).0,
        404,
        "committed"
    );
    assert_eq!(ping(&ns("a"), "10.1.0.10", "10.2.0.10", 5, "0.05"), (5, 5));
    // And rollback: 1 is the configuration before (without the route), then 1 again is the
    // one before that (with it).
    let out = cli(&ns("gw1"), &token_file, &["rollback", "1"]).unwrap();
    assert!(out.contains("rollback 1 complete (1 changes"), "{out}");
    assert_eq!(ping(&ns("a"), "10.1.0.10", "10.2.0.10", 3, "0.1").1, 0);
    let out = cli(&ns("gw1"), &token_file, &["rollback", "1"]).unwrap();
    assert!(out.contains("rollback 1 complete (1 changes"), "{out}");
    assert_eq!(
        ping(&ns("a"), "10.1.0.10", "10.2.0.10", 10, "0.05"),
        (10, 10)
    );
    let out = cli(&ns("gw1"), &token_file, &["show", "route"]).unwrap();
    assert!(
        out.contains("10.2.0.0/24") && out.contains("st0.0"),
        "{out}"
    );

    // IKE from the wire reaches the control: UDP 500 to gw1's address is punted to it.
    let sent = in_ns(&ns("a"))
        .args([
            "bash",
            "-c",
            "for i in 1 2 3; do echo -n ike$i > /dev/udp/10.1.0.1/500; done",
        ])
        .status()
        .unwrap();
    assert!(sent.success());
    std::thread::sleep(Duration::from_millis(300));
    let (_, body) = http(&ns("gw1"), "/v1/status", Some(&token));
    let st: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(st["link"]["punted"], 3, "{body}");

    // Operational state through the CLI, from the dataplane's stats region.
    std::thread::sleep(Duration::from_millis(400));
    let out = cli(
        &ns("gw1"),
        &token_file,
        &[
            "show",
            "security",
            "ipsec",
            "security-associations",
            "detail",
        ],
    )
    .unwrap();
    assert!(
        out.contains("Total active tunnels: 1     Total IPsec SAs: 2"),
        "{out}"
    );
    assert!(
        out.contains(" >0 ")
            && out.contains(" <0 ")
            && out.contains("st0.0")
            && out.contains("00001001"),
        "{out}"
    );
    assert!(out.contains("192.0.2.2"), "{out}");
    let one = cli(
        &ns("gw1"),
        &token_file,
        &[
            "show",
            "security",
            "ipsec",
            "security-associations",
            "index",
            "0",
        ],
    )
    .unwrap();
    assert!(one.contains("Total IPsec SAs: 2"), "{one}");
    let none = cli(
        &ns("gw1"),
        &token_file,
        &[
            "show",
            "security",
            "ipsec",
            "security-associations",
            "index",
            "7",
        ],
    )
    .unwrap();
    assert!(none.contains("Total IPsec SAs: 0"), "{none}");
    let per = cli(
        &ns("gw1"),
        &token_file,
        &["show", "security", "ipsec", "statistics", "index", "0"],
    )
    .unwrap();
    assert!(
        per.contains("ESP Statistics (index 0, tunnel st0.0)"),
        "{per}"
    );
    let out = cli(
        &ns("gw1"),
        &token_file,
        &["show", "security", "ipsec", "statistics"],
    )
    .unwrap();
    assert!(out.contains("Encrypted packets:"), "{out}");
    let enc: u64 = out
        .lines()
        .find(|l| l.contains("Encrypted packets:"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(enc >= 30, "{out}");
    let out = cli(
        &ns("gw1"),
        &token_file,
        &["show", "security", "ike", "tunnel-map"],
    )
    .unwrap();
    assert!(out.contains("Load factor") && out.contains("1.00"), "{out}");
    let (code, body) = http(&ns("gw1"), "/metrics", Some(&token));
    assert_eq!(code, 200);
    assert!(
        body.contains("espgw_sa_packets_total{spi=\"0x1001\",direction=\"out\",tunnel=\"st0.0\"}"),
        "{body}"
    );
    // Clearing gw2's inbound SA: gw1's packets are dropped there and counted as invalid SPI.
    cli(
        &ns("gw2"),
        &token_file,
        &[
            "clear",
            "security",
            "ipsec",
            "security-associations",
            "spi",
            "0x1001",
        ],
    )
    .unwrap();
    assert_eq!(ping(&ns("a"), "10.1.0.10", "10.2.0.10", 5, "0.05").1, 0);
    std::thread::sleep(Duration::from_millis(400));
    let (_, body) = http(&ns("gw2"), "/v1/statistics", Some(&token));
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        stats["global"]["invalid_spi"].as_u64().unwrap() >= 5,
        "{body}"
    );
    assert_eq!(http(&ns("gw2"), "/v1/sas/0x1001", Some(&token)).0, 404);
    assert_eq!(http(&ns("gw2"), "/v1/sas/zz", Some(&token)).0, 400);
    // A rollback to the running configuration installs it again.
    let out = cli(&ns("gw2"), &token_file, &["rollback", "0"]).unwrap();
    assert!(out.contains("rollback 0 complete (0 changes"), "{out}");
    // The running configuration did not change, so the commit sends nothing: a resync does.
    // (Restarting the control resyncs.)
    ctls[1].stop(libc::SIGTERM);
    ctls[1] = spawn(
        &ns("gw2"),
        &bin("espgw-control"),
        &p("gw2.json"),
        &p("gw2.ctl2.log"),
    );
    wait_for(
        &p("gw2.ctl2.log"),
        "espgw-control: resync:",
        "gw2's control again",
    );
    assert!(std::fs::read_to_string(p("gw2.ctl2.log"))
        .unwrap()
        .contains("6 changes, 1 installed"));
    assert_eq!(
        ping(&ns("a"), "10.1.0.10", "10.2.0.10", 10, "0.05"),
        (10, 10)
    );

    // kill -9 of gw1's control during a bounded flood: not one packet lost.
    let flood = {
        let a = ns("a");
        std::thread::spawn(move || ping(&a, "10.1.0.10", "10.2.0.10", 2000, "0.002"))
    };
    std::thread::sleep(Duration::from_millis(500));
    ctls[0].stop(libc::SIGKILL);
    std::thread::sleep(Duration::from_millis(500));
    ctls[0] = spawn(
        &ns("gw1"),
        &bin("espgw-control"),
        &p("gw1.json"),
        &p("gw1.ctl2.log"),
    );
    let sent = flood.join().unwrap();
    assert_eq!(
        sent,
        (2000, 2000),
        "packets lost while the control was killed"
    );
    wait_for(
        &p("gw1.ctl2.log"),
        "espgw-control: resync:",
        "restarted control",
    );
    // The restarted control installed nothing again and removed nothing.
    let log = std::fs::read_to_string(p("gw1.ctl2.log")).unwrap();
    assert!(
        log.contains("6 changes, 0 installed, 0 stale objects deleted"),
        "{log}"
    );
    assert_eq!(
        ping(&ns("a"), "10.1.0.10", "10.2.0.10", 10, "0.05"),
        (10, 10)
    );

    // The dataplane of gw1 killed during a bounded flood and started again: its control
    // pushes everything back, traffic flows again soon after its ports are up, and no
    // (SPI, sequence number) pair on the wire ever repeats.
    let pcap = p("wan.pcap");
    let mut cap = Proc(
        in_ns(&ns("gw2"))
            .args([
                "tshark",
                "-n",
                "-q",
                "-i",
                "wan",
                "-a",
                "duration:120",
                "-w",
            ])
            .arg(&pcap)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(p("tshark.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_for(&p("tshark.log"), "Capturing on", "tshark");
    std::thread::sleep(Duration::from_millis(500));
    let flood = {
        let a = ns("a");
        std::thread::spawn(move || ping(&a, "10.1.0.10", "10.2.0.10", 1500, "0.002"))
    };
    std::thread::sleep(Duration::from_millis(800));
    dps[0].stop(libc::SIGKILL);
    dps[0] = spawn(
        &ns("gw1"),
        &bin("espgw-dataplane"),
        &p("gw1.json"),
        &p("gw1.dp2.log"),
    );
    wait_for(
        &p("gw1.dp2.log"),
        "ready for the control process",
        "restarted dataplane",
    );
    let up = std::time::Instant::now();
    let mut flowing = None;
    while up.elapsed() < Duration::from_secs(10) {
        // One echo, waited for 100 ms: the first may go while the restarted gateway still
        // resolves host a's MAC (it queues nothing meanwhile).
        let ok = in_ns(&ns("a"))
            .args([
                "ping",
                "-n",
                "-q",
                "-I",
                "10.1.0.10",
                "-c",
                "1",
                "-W",
                "0.1",
                "10.2.0.10",
            ])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            flowing = Some(up.elapsed());
            break;
        }
    }
    let flowing = flowing.expect("traffic never flowed again after the dataplane restarted");
    println!(
        "traffic again {} ms after the restarted dataplane's ports were up",
        flowing.as_millis()
    );
    assert!(flowing < Duration::from_secs(1), "{flowing:?}");
    let _ = flood.join().unwrap();
    assert_eq!(
        ping(&ns("a"), "10.1.0.10", "10.2.0.10", 20, "0.02"),
        (20, 20)
    );
    std::thread::sleep(Duration::from_millis(300));
    cap.stop(libc::SIGINT);
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(&pcap)
        .args([
            "-Y",
            "esp",
            "-T",
            "fields",
            "-e",
            "esp.spi",
            "-e",
            "esp.sequence",
        ])
        .output()
        .unwrap();
    let fields = String::from_utf8_lossy(&out.stdout);
    let mut seen = std::collections::HashSet::new();
    let mut after_restart = 0;
    for row in fields.lines() {
        assert!(
            seen.insert(row.to_string()),
            "(SPI, sequence number) sent twice: {row}"
        );
        if row.starts_with("0x00001001") {
            after_restart += 1;
        }
    }
    assert!(
        after_restart > 100,
        "{after_restart} ESP packets from gw1 captured"
    );
    let log = std::fs::read_to_string(p("gw1.ctl2.log")).unwrap();
    assert!(log.matches("attached; resync").count() >= 2, "{log}");
    // tshark, an ESP implementation independent of ours, decrypts what both gateways sent
    // with the keys the controls pushed, on both sides of the restart.
    let out = Command::new(repo_root().join("scripts/decode.sh"))
        .arg(&pcap)
        .arg(&dir)
        .args(["-Y", "icmp", "-T", "fields", "-e", "icmp.type"])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let types = String::from_utf8_lossy(&out.stdout);
    let requests = types.lines().filter(|t| *t == "8").count();
    let replies = types.lines().filter(|t| *t == "0").count();
    assert!(
        requests > 100 && replies > 100,
        "{requests} requests, {replies} replies decoded"
    );

    // A body over the limit is refused with a 4xx, in JSON.
    let big = p("big.json");
    std::fs::write(&big, vec![b' '; api_limit() + 1]).unwrap();
    let out = in_ns(&ns("gw1"))
        .args(["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg("--data-binary")
        .arg(format!("@{}", big.display()))
        .arg("http://127.0.0.1:8443/v1/config/check")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.trim_end().ends_with("413") && text.contains("\"error\""),
        "{text}"
    );
    std::fs::remove_file(&big).unwrap();

    // Inject end to end: with gw1's control stopped, the test takes its place on gw1's inject
    // ring and sends an IKE datagram from gw1's address to gw2's; gw1's dataplane builds and
    // routes it, gw2's punts it to gw2's control.
    ctls[0].stop(libc::SIGTERM);
    let punted = |ns: &str| -> u64 {
        let (_, body) = http(ns, "/v1/status", Some(&token));
        let st: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        st["link"]["punted"].as_u64().unwrap_or(0)
    };
    let before = punted(&ns("gw2"));
    let seg = channel::Segment::attach(Path::new(&format!("/dev/shm/{name}-gw1"))).unwrap();
    let mut inject = seg.producer(channel::RingId::Inject).unwrap();
    inject
        .send(&channel::Datagram {
            port: 0,
            src: "192.0.2.1".parse().unwrap(),
            dst: "192.0.2.2".parse().unwrap(),
            sport: 500,
            dport: 500,
            payload: b"IKE_SA_INIT from gw1",
        })
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while punted(&ns("gw2")) == before && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        punted(&ns("gw2")),
        before + 1,
        "gw1's injected datagram reached gw2's control"
    );

    for c in &mut ctls {
        c.stop(libc::SIGTERM);
    }
    for d in &mut dps {
        d.stop(libc::SIGTERM);
    }
    // No key in any log line of either process.
    let keys: Vec<String> = cfg["manual_sas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|sa| sa["key"].as_str().unwrap().to_string())
        .collect();
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "log") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for k in &keys {
                assert!(!text.contains(k.as_str()), "a key in {}", path.display());
            }
        }
    }
    drop(topo);
}
