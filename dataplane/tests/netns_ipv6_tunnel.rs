//! IPv6 through the IPv4 ESP tunnel end to end (next header 41; raw ESP and NAT-T), in the demo
//! topology (scripts/topology.sh: two espgw-dataplane gateways on net_af_packet ports, mirrored
//! manual SAs), the hosts given IPv6 (2001:db8:1::10 behind gw1, 2001:db8:2::10 behind gw2) and
//! each gateway an IPv6 LAN address, a route for the far side's /48 into st0.0 and the two /48s as
//! the tunnel's selectors. `ping -6` passes host to host with the hop limit lowered twice, and from
//! host b to gw1's LAN address (gw1 answering into the tunnel); packets too big for the tunnel get
//! their senders an ICMPv6 Packet Too Big, which the hosts' kernels act on (a TCP transfer with
//! 1500-byte segments, then a big ping, complete through the tunnel).
// The gateway on DPDK: only in builds with it.
#![cfg(feature = "dpdk")]

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

fn ping6(ns: &str, to: &str, count: usize, size: usize) -> String {
    let (c, s) = (count.to_string(), size.to_string());
    let args = [
        "ping", "-6", "-n", "-c", &c, "-s", &s, "-i", "0.2", "-W", "2", to,
    ];
    let out = in_ns(ns, &args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Gives a gateway's configuration (written by topology.sh) its IPv6 LAN address, the far
/// side's IPv6 routed into the tunnel, and the tunnel IPv6 selectors (its /48s).
fn add_ipv6(path: &std::path::Path, lan: &str, near: &str, far: &str) {
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    cfg["interfaces"][0]["address6"] = lan.into();
    let r = serde_json::json!({"prefix": far, "via": "st0.0"});
    cfg["routes"].as_array_mut().unwrap().push(r);
    cfg["tunnels"][0]["traffic_selectors"] = serde_json::json!({"local": [near], "remote": [far]});
    std::fs::write(path, cfg.to_string()).unwrap();
}

#[test]
fn ipv6_hosts_talk_through_the_ipv4_tunnel_raw_esp() {
    through_the_tunnel("raw");
}

#[test]
fn ipv6_hosts_talk_through_the_ipv4_tunnel_natt() {
    through_the_tunnel("natt");
}

/// The gateways of both tests would share the same two CPUs: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The whole run, the tunnel in raw ESP or NAT-T (`mode`, as topology.sh takes it).
fn through_the_tunnel(mode: &str) {
    if !require_root(&format!("netns IPv6 through the tunnel ({mode})")) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let name = format!("e6x{}{}", std::process::id() % 100_000, &mode[..1]);
    let dir = TempDir::new(&format!("netns-ipv6-tunnel-{mode}"));
    let _topo = Topology(name.clone());
    sh(Command::new(repo_root().join("scripts/topology.sh"))
        .args(["up", &name])
        .arg(&dir.0)
        .args([mode, "1", "1"]));
    let ns = |n: &str| format!("{name}-{n}");
    ipv6_hosts(&name);
    let (net1, net2) = ("2001:db8:1::/48", "2001:db8:2::/48");
    add_ipv6(&dir.path("gw1.json"), "2001:db8:1::1/64", net1, net2);
    add_ipv6(&dir.path("gw2.json"), "2001:db8:2::1/64", net2, net1);
    let mut gws = Vec::new();
    for g in ["gw1", "gw2"] {
        let log = std::fs::File::create(dir.path(&format!("{g}.log"))).unwrap();
        let child = in_ns(&ns(g), &[])
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
    // Each host and its gateway learn each other first (neighbor discovery), so that nothing
    // through the tunnel waits for a resolution.
    let own = ping6(&ns("a"), "2001:db8:1::1", 2, 56);
    assert!(own.contains("2 packets transmitted, 2 received"), "{own}");
    let own = ping6(&ns("b"), "2001:db8:2::1", 2, 56);
    assert!(own.contains("2 packets transmitted, 2 received"), "{own}");

    let through = ping6(&ns("a"), "2001:db8:2::10", 10, 56);
    assert!(
        through.contains("10 packets transmitted, 10 received"),
        "{through}"
    );
    assert!(
        through.contains("ttl=62"),
        "two routers each way: {through}"
    );

    // Host b pings gw1's LAN address: gw1 answers what the tunnel brought, into the tunnel.
    let far = ping6(&ns("b"), "2001:db8:1::1", 3, 56);
    assert!(far.contains("3 packets transmitted, 3 received"), "{far}");
    assert!(far.contains("ttl=63"), "gw2 routed the reply once: {far}");

    // TCP: host b serves 2 MB, host a fetches it; b's full-size segments are too big for the
    // tunnel until b's kernel has learned the tunnel's MTU from gw2.
    let www = dir.path("www");
    std::fs::create_dir_all(&www).unwrap();
    let blob: Vec<u8> = (0..2_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(www.join("blob"), &blob).unwrap();
    // http.server's own HTTPServer looks its name up in DNS, which hangs in a namespace: a
    // plain TCP server with its request handler.
    let serve = "import functools, http.server, socket, socketserver, sys\n\
class S(socketserver.TCPServer):\n    address_family = socket.AF_INET6\n\
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])\n\
S(('2001:db8:2::10', 8080), handler).serve_forever()\n";
    let _server = Proc(
        in_ns(&ns("b"), &["python3", "-c", serve])
            .arg(&www)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let got = dir.path("got");
    sh(in_ns(
        &ns("a"),
        &[
            "curl",
            "-6",
            "-sS",
            "-g",
            "--retry",
            "10",
            "--retry-connrefused",
            "--retry-delay",
            "1",
            "--max-time",
            "60",
            "-o",
        ],
    )
    .arg(&got)
    .arg("http://[2001:db8:2::10]:8080/blob"));
    assert!(
        std::fs::read(&got).unwrap() == blob,
        "the file arrived whole"
    );

    // 1500-byte packets from host a: the first request gets host a a Packet Too Big from gw1
    // and is lost; host a then fragments. Host b has known the tunnel's MTU since the
    // transfer, and fragments its replies.
    let big = ping6(&ns("a"), "2001:db8:2::10", 5, 1452);
    assert!(big.contains("5 packets transmitted, 4 received"), "{big}");

    std::thread::sleep(Duration::from_millis(300));
    for g in &mut gws {
        g.stop();
    }
    let s1 = read_stats(&dir.path("gw1.stats.json"));
    let s2 = read_stats(&dir.path("gw2.stats.json"));
    let main = |s: &serde_json::Value, k: &str| {
        s["main"][k]
            .as_u64()
            .unwrap_or_else(|| panic!("no main counter {k}"))
    };
    assert_eq!(
        main(&s1, "icmpv6_echo_replies"),
        2 + 3,
        "host a's, host b's"
    );
    assert_eq!(main(&s2, "icmpv6_echo_replies"), 2);
    assert_eq!(main(&s1, "icmpv6_packet_too_big_sent"), 1, "the big ping");
    assert!(main(&s2, "icmpv6_packet_too_big_sent") >= 1, "TCP");
    assert_eq!(
        counter(&s1, "exceeds_tunnel_mtu"),
        main(&s1, "icmpv6_packet_too_big_sent")
    );
    // The blob alone is over a thousand segments, all through the tunnel.
    assert!(counter(&s1, "decrypted_packets") > 1000);
    assert!(counter(&s2, "encrypted_packets") > 1000);
    for s in [&s1, &s2] {
        assert_eq!(counter(s, "ts_check_fail"), 0);
        assert_eq!(counter(s, "hop_limit_exceeded"), 0);
        assert_eq!(counter(s, "esp_auth_failures"), 0);
    }
}
