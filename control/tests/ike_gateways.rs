//! IKEv2 end to end between two espgw gateways (control + dataplane each, in the namespaces
//! of scripts/topology.sh in mode `ike`): IKE is punted by one dataplane to its control and
//! injected back out, the children are installed over the channel, and hosts ping across.
//! gw1 offers ESN or not, gw2 only ESN: ESN is negotiated. Child rekeys every few seconds
//! under a bounded ping flood lose nothing; a dead peer is found by DPD and its SAs cleared;
//! the peer back again, the tunnel comes back.

#[path = "common/gateways.rs"]
mod gateways;
#[path = "../../dataplane/tests/common/host.rs"]
mod host;
use gateways::*;
use host::*;
use std::process::Command;
use std::time::{Duration, Instant};

/// Polls `f` every 200 ms until it holds or `limit` passes.
fn until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    f()
}

fn log_count(path: &std::path::Path, text: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .matches(text)
        .count()
}

#[test]
fn two_espgw_gateways_negotiate_rekey_and_survive_a_dead_peer() {
    if !require_root("IKE between two gateways in network namespaces") {
        return;
    }
    let name = format!("espgw-k{}", std::process::id() % 100_000);
    let dir = std::env::temp_dir().join(format!("espgw-ike-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let _topo = Topology {
        name: name.clone(),
        dir: dir.clone(),
    };
    let ok = Command::new(repo_root().join("scripts/topology.sh"))
        .args(["up", &name])
        .arg(&dir)
        .args(["ike", "1", "1"])
        .status()
        .unwrap();
    assert!(ok.success());
    let p = |f: &str| dir.join(f);
    let ns = |g: &str| format!("{name}-{g}");
    // Children rekeyed 6 s after they are made, or after 255-270 packets; DPD after 1 s of
    // silence, dead after 2 unanswered checks.
    for g in ["gw1", "gw2"] {
        let f = p(&format!("{g}.json"));
        let mut c: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        if g == "gw2" {
            // gw2 takes gw1 as a dial-up peer: from any address, known by its identity; its
            // tunnel's peer is learned by IKE.
            c["ike"]["gateways"][0]["remote_address"] = "%any".into();
            c["tunnels"][0]["remote"] = "%any".into();
        }
        c["ike"]["vpns"][0]["lifetime_s"] = 60.into();
        c["ike"]["vpns"][0]["rekey_margin_s"] = 54.into();
        // And by volume: a rekey every 255-270 packets (the soft limit), long before the
        // hard limit would stop the SA.
        c["ike"]["vpns"][0]["lifetime_packets"] = 300.into();
        c["ike"]["gateways"][0]["dpd"] =
            serde_json::json!({"interval_s": 1, "threshold": 2, "action": "clear"});
        std::fs::write(&f, c.to_string()).unwrap();
    }
    let start = |g: &str| -> (Proc, Proc) {
        let dp = spawn(
            &ns(g),
            &bin("espgw-dataplane"),
            &p(&format!("{g}.json")),
            &p(&format!("{g}.dp.log")),
        );
        wait_for(
            &p(&format!("{g}.dp.log")),
            "ready for the control process",
            g,
        );
        let ctl = spawn(
            &ns(g),
            &bin("espgw-control"),
            &p(&format!("{g}.json")),
            &p(&format!("{g}.ctl.log")),
        );
        (dp, ctl)
    };
    let gw2 = start("gw2");
    let mut gw1 = start("gw1");
    let ctl1 = p("gw1.ctl.log");
    assert!(
        until(Duration::from_secs(20), || log_count(
            &ctl1,
            "established with"
        ) > 0),
        "no IKE SA: {}",
        std::fs::read_to_string(&ctl1).unwrap_or_default()
    );
    // ARP both ways, then the tunnel.
    ping(&ns("a"), "10.1.0.10", "10.1.0.1", 1, "0.2");
    ping(&ns("b"), "10.2.0.10", "10.2.0.1", 1, "0.2");
    assert!(
        until(Duration::from_secs(5), || ping(
            &ns("a"),
            "10.1.0.10",
            "10.2.0.10",
            1,
            "0.2"
        ) == (1, 1)),
        "no traffic through the negotiated tunnel"
    );
    let token = p("token");
    let show_sas = || {
        cli(
            &ns("gw1"),
            &token,
            &["show", "security", "ipsec", "security-associations"],
        )
        .unwrap()
    };
    // The stats region is published every 250 ms.
    assert!(until(Duration::from_secs(2), || show_sas()
        .contains("Total IPsec SAs: 2")));
    let sas = show_sas();
    assert!(sas.contains("ESP:aes-256-gcm/ESN"), "{sas}");
    // Their lifetime by time (60 s): seconds left in the Life column (then packets, kB), and
    // over REST when the initiator's rekey (6 s after the child was made) comes.
    let lives: Vec<u64> = sas
        .lines()
        .filter(|l| l.contains("ESP:"))
        .filter_map(|l| {
            l.split_whitespace().find_map(|w| {
                // seconds/packets/kB
                let mut parts = w.split('/');
                let secs = parts.next()?.parse().ok()?;
                (parts.next()?.parse::<u64>().is_ok() && parts.next()? == "unlim").then_some(secs)
            })
        })
        .collect();
    assert!(
        lives.len() == 2 && lives.iter().all(|&s| (50..=60).contains(&s)),
        "{sas}"
    );
    let token_text = std::fs::read_to_string(&token).unwrap();
    let (code, body) = http(&ns("gw1"), "/v1/sas", Some(token_text.trim()));
    assert_eq!(code, 200);
    let rest: serde_json::Value = serde_json::from_str(&body).unwrap();
    for sa in rest.as_array().unwrap() {
        assert_eq!(sa["ike_sa"], 1, "{sa}");
        assert!(sa["rekey_in_s"].as_u64().is_some_and(|s| s <= 6), "{sa}");
        assert!(sa["expires_in_s"].as_u64().is_some_and(|s| s <= 60), "{sa}");
    }
    // The IKE SA as the operator sees it: CLI, detail, REST and /metrics.
    let show = |words: &[&str]| {
        let mut a = vec!["show", "security", "ike", "security-associations"];
        a.extend_from_slice(words);
        cli(&ns("gw1"), &token, &a).unwrap()
    };
    let ike = show(&[]);
    assert!(ike.contains("UP") && ike.contains("192.0.2.2:500"), "{ike}");
    let detail = show(&["detail"]);
    assert!(
        detail.contains("VPN vpn0") && detail.contains("role initiator"),
        "{detail}"
    );
    let (code, metrics) = http(&ns("gw1"), "/metrics", Some(token_text.trim()));
    assert_eq!(code, 200);
    assert!(
        metrics.contains("espgw_ike_established_total{gateway=\"peer\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("espgw_ike_security_associations{state=\"established\"} 1"),
        "{metrics}"
    );

    // A bounded flood across two child rekeys (every 6 s) and an IKE SA rekey asked for by
    // the operator 3 s in: nothing lost.
    let rekeys_before = log_count(&ctl1, "established with");
    let operator = {
        let (ns1, token) = (ns("gw1"), token.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(3));
            cli(
                &ns1,
                &token,
                &["request", "security", "ike", "rekey", "index", "1"],
            )
        })
    };
    let (sent, got) = ping(&ns("a"), "10.1.0.10", "10.2.0.10", 1400, "0.01");
    let out = operator.join().unwrap().unwrap();
    // The tunnel's traffic goes on across the rekeys: its SAs' past and present (the stats
    // region is published every 250 ms).
    let tunnel_out = || {
        let (_, m) = http(&ns("gw1"), "/metrics", Some(token_text.trim()));
        m.lines()
            .find(|l| {
                l.starts_with("espgw_tunnel_packets_total{")
                    && l.contains("tunnel=\"st0.0\"")
                    && l.contains("direction=\"out\"")
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert!(
        until(Duration::from_secs(2), || tunnel_out() >= 1400),
        "the tunnel counted {} packets out",
        tunnel_out()
    );
    assert!(out.contains("rekeying IKE SA 1"), "{out}");
    assert_eq!(log_count(&ctl1, "IKE SA rekeyed"), 1);
    assert_eq!(log_count(&p("gw2.ctl.log"), "IKE SA rekeyed"), 1);
    assert_eq!((sent, got), (1400, 1400), "lost packets across rekeys");
    // The volume rekeys came from soft limits (whichever side's came first: each child's is
    // random on each side, and a child rekeyed by the peer never reaches ours); no SA ever
    // reached its hard one.
    let mut soft = 0;
    for g in ["gw1", "gw2"] {
        let (_, body) = http(&ns(g), "/v1/statistics", Some(token_text.trim()));
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let e = &v["events"];
        soft += e["soft_lifetimes"].as_u64().unwrap_or(0);
        assert_eq!(e["hard_lifetimes"], 0, "{g}: {e}");
    }
    assert!(soft >= 2, "soft lifetime events: {soft}");
    let sas_after = cli(
        &ns("gw1"),
        &token,
        &["show", "security", "ipsec", "security-associations"],
    )
    .unwrap();
    assert_ne!(sas, sas_after, "the SPIs changed: rekeyed");
    assert_eq!(
        log_count(&ctl1, "established with"),
        rekeys_before,
        "the IKE SA stayed"
    );

    // The peer dies (both its processes): DPD finds it within interval x threshold (plus a
    // second for the liveness look), and the SAs are cleared from gw1's dataplane.
    drop(gw2);
    let died = Instant::now();
    assert!(
        until(Duration::from_secs(10), || log_count(&ctl1, "Timeout") > 0),
        "DPD did not find the dead peer: {}",
        std::fs::read_to_string(&ctl1).unwrap_or_default()
    );
    assert!(
        died.elapsed() < Duration::from_secs(6),
        "{:?}",
        died.elapsed()
    );
    assert!(until(Duration::from_secs(3), || {
        cli(
            &ns("gw1"),
            &token,
            &["show", "security", "ipsec", "security-associations"],
        )
        .is_ok_and(|s| s.contains("Total IPsec SAs: 0"))
    }));
    // Back again: gw1 tries again and the tunnel comes back.
    let _gw2 = start("gw2");
    ping(&ns("b"), "10.2.0.10", "10.2.0.1", 1, "0.2");
    assert!(
        until(Duration::from_secs(20), || ping(
            &ns("a"),
            "10.1.0.10",
            "10.2.0.10",
            1,
            "0.2"
        ) == (1, 1)),
        "the tunnel did not come back: {}",
        std::fs::read_to_string(&ctl1).unwrap_or_default()
    );
    // gw1's control dies and comes back: it knows no IKE SA, so it says INITIAL_CONTACT,
    // and gw2 drops the old IKE SA and its children without a word (no delete can reach a
    // peer that forgot them) for the new ones.
    let established2 = log_count(&p("gw2.ctl.log"), "established with");
    gw1.1.stop(libc::SIGKILL);
    gw1.1 = spawn(
        &ns("gw1"),
        &bin("espgw-control"),
        &p("gw1.json"),
        &p("gw1.ctl.log"),
    );
    assert!(
        until(Duration::from_secs(10), || log_count(
            &p("gw2.ctl.log"),
            "established with"
        ) > established2),
        "{}",
        std::fs::read_to_string(p("gw2.ctl.log")).unwrap_or_default()
    );
    let gw2_sas = || {
        cli(
            &ns("gw2"),
            &token,
            &["show", "security", "ipsec", "security-associations"],
        )
        .unwrap_or_default()
    };
    assert!(
        until(Duration::from_secs(3), || gw2_sas()
            .contains("Total IPsec SAs: 2")),
        "{}",
        gw2_sas()
    );
    // Replaced at once (not found dead by DPD later).
    assert_eq!(log_count(&p("gw2.ctl.log"), "DeletedByPeer"), 0);
    assert_eq!(log_count(&p("gw2.ctl.log"), "Timeout"), 0);
    assert!(until(Duration::from_secs(5), || ping(
        &ns("a"),
        "10.1.0.10",
        "10.2.0.10",
        1,
        "0.2"
    ) == (1, 1)));
    // The operator clears the IKE SA: the peer is told, the children go on both sides; a
    // request to initiate brings it back at once.
    let out = cli(
        &ns("gw1"),
        &token,
        &["clear", "security", "ike", "security-associations"],
    )
    .unwrap();
    assert!(out.contains("1 IKE SAs deleted"), "{out}");
    assert!(until(Duration::from_secs(3), || log_count(
        &p("gw2.ctl.log"),
        "DeletedByPeer"
    ) == 1));
    let out = cli(
        &ns("gw1"),
        &token,
        &["request", "security", "ike", "initiate", "vpn0"],
    )
    .unwrap();
    assert!(out.contains("negotiating vpn0"), "{out}");
    assert!(until(Duration::from_secs(3), || ping(
        &ns("a"),
        "10.1.0.10",
        "10.2.0.10",
        1,
        "0.2"
    ) == (1, 1)));
    // A commit makes the VPN start on traffic: its SAs go (the VPN changed), and the next
    // packet for the tunnel (the dataplane's ACQUIRE) negotiates them again.
    let mut c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p("gw1.json")).unwrap()).unwrap();
    c["ike"]["vpns"][0]["establish"] = "on-traffic".into();
    std::fs::write(p("on-traffic.json"), c.to_string()).unwrap();
    let out = cli(
        &ns("gw1"),
        &token,
        &["commit", p("on-traffic.json").to_str().unwrap()],
    )
    .unwrap();
    assert!(out.contains("commit complete"), "{out}");
    assert!(until(Duration::from_secs(5), || show_sas()
        .contains("Total IPsec SAs: 0")));
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        show_sas().contains("Total IPsec SAs: 0"),
        "nothing starts before traffic"
    );
    assert!(
        until(Duration::from_secs(5), || ping(
            &ns("a"),
            "10.1.0.10",
            "10.2.0.10",
            1,
            "0.2"
        ) == (1, 1)),
        "traffic did not start the VPN: {}",
        std::fs::read_to_string(&ctl1).unwrap_or_default()
    );
}
