//! A tunnel with IPv6 endpoints end to end (RFC 4303 tunnel mode in IPv6, raw ESP), in the demo
//! topology (scripts/topology.sh: two espgw-dataplane gateways on net_af_packet ports, mirrored
//! manual SAs), the WAN link given IPv6 (2001:db8:ffff::1/64 on gw1, ::2/64 on gw2) and st0.0
//! moved onto those addresses; the hosts given IPv6 behind each gateway. `ping` (IPv4 in IPv6)
//! and `ping -6` (IPv6 in IPv6) pass host to host, the TTL and hop limit lowered twice.
// The gateway on DPDK: only in builds with it.
#![cfg(feature = "dpdk")]

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

/// `ping` (`family` "-4" or "-6") `count` times: what it printed.
fn ping(ns: &str, family: &str, to: &str, count: usize) -> String {
    let c = count.to_string();
    let args = ["ping", family, "-n", "-c", &c, "-i", "0.2", "-W", "2", to];
    let out = in_ns(ns, &args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Gives a gateway's configuration (written by topology.sh) IPv6 on both links, st0.0 on the
/// WAN's IPv6 addresses, and the far side's IPv6 routed into it.
fn outer6(path: &std::path::Path, lan: &str, wan: &str, me: &str, peer: &str, far: &str) {
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    cfg["interfaces"][0]["address6"] = lan.into();
    cfg["interfaces"][1]["address6"] = wan.into();
    cfg["tunnels"][0]["local"] = me.into();
    cfg["tunnels"][0]["remote"] = peer.into();
    let r = serde_json::json!({"prefix": far, "via": "st0.0"});
    cfg["routes"].as_array_mut().unwrap().push(r);
    std::fs::write(path, cfg.to_string()).unwrap();
}

#[test]
fn ipv4_and_ipv6_hosts_talk_through_an_ipv6_tunnel() {
    if !require_root("netns IPv6-outer tunnel") {
        return;
    }
    let name = format!("e6o{}", std::process::id() % 100_000);
    let dir = TempDir::new("netns-ipv6-outer");
    let _topo = Topology(name.clone());
    sh(Command::new(repo_root().join("scripts/topology.sh"))
        .args(["up", &name])
        .arg(&dir.0)
        .args(["raw", "1", "1"]));
    let ns = |n: &str| format!("{name}-{n}");
    ipv6_hosts(&name);
    let (w1, w2) = ("2001:db8:ffff::1", "2001:db8:ffff::2");
    let (net1, net2) = ("2001:db8:1::/48", "2001:db8:2::/48");
    let wan = |a: &str| format!("{a}/64");
    outer6(
        &dir.path("gw1.json"),
        "2001:db8:1::1/64",
        &wan(w1),
        w1,
        w2,
        net2,
    );
    outer6(
        &dir.path("gw2.json"),
        "2001:db8:2::1/64",
        &wan(w2),
        w2,
        w1,
        net1,
    );
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
    // Each host and its gateway learn each other first, so that nothing through the tunnel
    // waits for a resolution; the first packets through it wait for the peer's (ND on the WAN).
    for (h, gw6, gw4) in [
        ("a", "2001:db8:1::1", "10.1.0.1"),
        ("b", "2001:db8:2::1", "10.2.0.1"),
    ] {
        let own = ping(&ns(h), "-6", gw6, 2);
        assert!(own.contains("2 packets transmitted, 2 received"), "{own}");
        let own = ping(&ns(h), "-4", gw4, 2);
        assert!(own.contains("2 packets transmitted, 2 received"), "{own}");
    }
    let _ = ping(&ns("a"), "-4", "10.2.0.10", 2);

    let v4 = ping(&ns("a"), "-4", "10.2.0.10", 10);
    assert!(v4.contains("10 packets transmitted, 10 received"), "{v4}");
    assert!(v4.contains("ttl=62"), "two routers each way: {v4}");
    let v6 = ping(&ns("a"), "-6", "2001:db8:2::10", 10);
    assert!(v6.contains("10 packets transmitted, 10 received"), "{v6}");
    assert!(v6.contains("ttl=62"), "two routers each way: {v6}");

    std::thread::sleep(Duration::from_millis(300));
    for g in &mut gws {
        g.stop();
    }
    for s in ["gw1", "gw2"].map(|g| read_stats(&dir.path(&format!("{g}.stats.json")))) {
        assert!(counter(&s, "encrypted_packets") >= 20);
        assert!(counter(&s, "decrypted_packets") >= 20);
        assert_eq!(counter(&s, "esp_auth_failures"), 0);
        assert_eq!(counter(&s, "invalid_spi"), 0);
    }
}
