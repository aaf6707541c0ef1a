//! IPv6 end to end in network namespaces: an espgw-dataplane between two Linux hosts on
//! net_af_packet ports. The hosts ping the gateway's global and link-local addresses
//! (`ping -6`), and each other through it: the gateway resolves host 1 by neighbor
//! solicitation (host 1's kernel counts the solicitation and keeps the gateway in its
//! neighbor table), reaches host 2 through a static neighbor (host 2 is never solicited),
//! and lowers the hop limit by one. The gateway's counters must say the same.
// The gateway on DPDK: only in builds with it.
#![cfg(feature = "dpdk")]

mod common;
use common::*;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The namespaces, deleted when dropped.
struct Namespaces(String);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in ["h1", "gw", "h2"] {
            let _ = Command::new("ip")
                .args(["netns", "del", &format!("{}-{n}", self.0)])
                .status();
        }
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.0));
    }
}

/// The gateway, stopped (SIGTERM, then waited for) when dropped.
struct Gateway(Child);

impl Gateway {
    fn stop(&mut self) {
        // SAFETY: kill on the PID of a child we spawned and have not yet reaped.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.stop();
        }
    }
}

fn ping6(ns: &str, to: &str, count: usize) -> String {
    let c = count.to_string();
    let out = in_ns(
        ns,
        &["ping", "-6", "-n", "-c", &c, "-i", "0.5", "-W", "2", to],
    )
    .output()
    .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A counter of a namespace's /proc/net/snmp6.
fn snmp6(ns: &str, name: &str) -> u64 {
    let text = sh(&mut in_ns(ns, &["cat", "/proc/net/snmp6"]));
    text.lines()
        .filter_map(|l| l.split_once(char::is_whitespace))
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {ns}'s snmp6"))
}

/// The EUI-64 link-local address of a MAC written as Linux shows it.
fn link_local(mac: &str) -> String {
    let m: Vec<u8> = mac
        .trim()
        .split(':')
        .map(|x| u8::from_str_radix(x, 16).unwrap())
        .collect();
    let ll = std::net::Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        m[0] ^ 2,
        m[1],
        m[2],
        0xff,
        0xfe,
        m[3],
        m[4],
        m[5],
    ]);
    ll.to_string()
}

#[test]
fn hosts_ping_the_gateway_and_each_other_over_ipv6() {
    if !require_root("netns IPv6") {
        return;
    }
    let name = format!("e6t{}", std::process::id() % 100_000);
    let ns = |n: &str| format!("{name}-{n}");
    let _guard = Namespaces(name.clone());
    for n in ["h1", "gw", "h2"] {
        sh(Command::new("ip").args(["netns", "add", &ns(n)]));
        sh(&mut in_ns(&ns(n), &["ip", "link", "set", "lo", "up"]));
    }
    sh(Command::new("ip").args([
        "link",
        "add",
        "eth0",
        "netns",
        &ns("h1"),
        "type",
        "veth",
        "peer",
        "name",
        "lan",
        "netns",
        &ns("gw"),
    ]));
    sh(Command::new("ip").args([
        "link",
        "add",
        "wan",
        "netns",
        &ns("gw"),
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        &ns("h2"),
    ]));
    // The gateway's kernel keeps out of IPv6: the dataplane answers on those links.
    for i in ["lan", "wan"] {
        let s = format!("net.ipv6.conf.{i}.disable_ipv6=1");
        sh(&mut in_ns(&ns("gw"), &["sysctl", "-qw", &s]));
        sh(&mut in_ns(&ns("gw"), &["ip", "link", "set", i, "up"]));
        let _ = in_ns(&ns("gw"), &["ethtool", "-K", i, "gro", "off"]).output();
    }
    // Hosts without duplicate address detection: their addresses are usable at once.
    for (h, addr, gw) in [
        ("h1", "2001:db8:1::10/64", "2001:db8:1::1"),
        ("h2", "2001:db8:2::10/64", "2001:db8:2::1"),
    ] {
        for conf in ["all", "default", "eth0"] {
            let s = format!("net.ipv6.conf.{conf}.accept_dad=0");
            sh(&mut in_ns(&ns(h), &["sysctl", "-qw", &s]));
        }
        sh(&mut in_ns(&ns(h), &["ip", "link", "set", "eth0", "up"]));
        sh(&mut in_ns(
            &ns(h),
            &["ip", "-6", "addr", "add", addr, "dev", "eth0"],
        ));
        sh(&mut in_ns(
            &ns(h),
            &["ip", "-6", "route", "add", "default", "via", gw],
        ));
        let _ = in_ns(&ns(h), &["ethtool", "-K", "eth0", "tx", "off"]).output();
    }
    let mac = |n: &str, dev: &str| {
        sh(&mut in_ns(
            &ns(n),
            &["cat", &format!("/sys/class/net/{dev}/address")],
        ))
    };
    let (gw_lan_mac, h2_mac) = (mac("gw", "lan"), mac("h2", "eth0"));
    let gw_lan_ll = link_local(&gw_lan_mac);

    let dir = TempDir::new("netns-ipv6");
    let mut eal: Vec<String> = [
        "--lcores",
        "0@0,1@1",
        "--main-lcore",
        "0",
        "--no-pci",
        "--no-huge",
        "-m",
        "256",
        "--no-telemetry",
        "--file-prefix",
        &name,
    ]
    .map(String::from)
    .to_vec();
    for (port, iface) in ["lan", "wan"].iter().enumerate() {
        eal.push("--vdev".into());
        eal.push(format!("net_af_packet{port},iface={iface},qdisc_bypass=0"));
    }
    let cfg = serde_json::json!({
        "dataplane": {"eal": eal, "workers": [1], "poll_sleep_us": 20},
        "interfaces": [
            {"name": "lan0", "port": 0, "address": "10.9.1.1/24", "address6": "2001:db8:1::1/64"},
            {"name": "wan0", "port": 1, "address": "10.9.2.1/24", "address6": "2001:db8:2::1/64"}],
        "neighbors": [{"address": "2001:db8:2::10", "mac": h2_mac.trim()}],
    });
    std::fs::write(dir.path("gw.json"), cfg.to_string()).unwrap();
    let log = std::fs::File::create(dir.path("gw.log")).unwrap();
    let mut gw = Gateway(
        in_ns(&ns("gw"), &[])
            .arg(dataplane_bin())
            .arg("--config")
            .arg(dir.path("gw.json"))
            .arg("--stats-file")
            .arg(dir.path("stats.json"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    wait_for(&dir.path("gw.log"), "forwarding on", "the gateway");

    // Host 2 pings host 1 through the gateway. The gateway does not know host 1 yet: the
    // first request is dropped while it solicits host 1; the others go through, their hop
    // limit lowered once each way.
    let through = ping6(&ns("h2"), "2001:db8:1::10", 3);
    assert!(
        through.contains("3 packets transmitted, 2 received"),
        "{through}"
    );
    assert!(through.contains("ttl=63"), "{through}");
    assert_eq!(
        snmp6(&ns("h2"), "Icmp6InNeighborSolicits"),
        0,
        "host 2 is static"
    );
    assert!(snmp6(&ns("h1"), "Icmp6InNeighborSolicits") >= 1);
    // Host 1 learned the gateway from its solicitation.
    let neigh = sh(&mut in_ns(
        &ns("h1"),
        &["ip", "-6", "neigh", "show", "dev", "eth0"],
    ));
    assert!(
        neigh.contains(&format!("2001:db8:1::1 lladdr {}", gw_lan_mac.trim())),
        "{neigh}"
    );

    // The gateway's own addresses, global and link-local, from both sides.
    let global = ping6(&ns("h1"), "2001:db8:1::1", 3);
    assert!(
        global.contains("3 packets transmitted, 3 received"),
        "{global}"
    );
    assert!(global.contains("ttl=64"), "{global}");
    let ll = ping6(&ns("h1"), &format!("{gw_lan_ll}%eth0"), 3);
    assert!(ll.contains("3 packets transmitted, 3 received"), "{ll}");
    let wan = ping6(&ns("h2"), "2001:db8:2::1", 2);
    assert!(wan.contains("2 packets transmitted, 2 received"), "{wan}");
    std::thread::sleep(Duration::from_millis(300));
    gw.stop();

    let st = read_stats(&dir.path("stats.json"));
    let main = |k: &str| st["main"][k].as_u64().unwrap_or_else(|| panic!("no {k}"));
    assert_eq!(main("icmpv6_echo_replies"), 8);
    assert_eq!(main("icmp_echo_replies"), 0);
    assert_eq!(main("nd_invalid"), 0);
    assert!(main("nd_solicitations_sent") >= 1, "host 1 resolved");
    assert!(main("nd_advertisements_received") >= 1);
    assert!(
        main("neighbors_learned") >= 2,
        "host 1, by its answer and its asking"
    );
    // Both hosts asked for the gateway's addresses (host 2 for its WAN address, host 1 for
    // its link-local one; host 1 had the global one from the gateway's own solicitation).
    assert!(main("nd_solicitations_received") >= 2);
    assert!(main("nd_advertisements_sent") >= 2);
    assert_eq!(counter(&st, "no_neighbor"), 1, "the first request only");
    // Two echoes and their replies through; the gateway's own replies to global addresses
    // routed (3 + 2), those to a link-local address sent straight back.
    assert_eq!(counter(&st, "forwarded_packets"), 4 + 5);
    assert_eq!(counter(&st, "hop_limit_exceeded"), 0);
    assert_eq!(counter(&st, "ipv6_not_forwarded"), 0);
}
