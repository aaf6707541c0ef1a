//! espgw (control + dataplane on net_af_packet) against strongSwan 5.9's charon as the other
//! gateway, PSK, in the namespaces of scripts/topology.sh (mode `ike`): charon replaces gw2
//! (kernel addresses on its ports, IP forwarding, kernel-libipsec, which always carries ESP in
//! UDP 4500). Each case negotiates, then host a and host b talk through the tunnel (ping both
//! ways and a TCP transfer); the proposal sets are the issue's, espgw is initiator in some and
//! responder in others, and espgw's `esn-noesn` falls back to no ESN with charon.

#[path = "common/charon.rs"]
#[allow(dead_code)] // each strongswan_* test uses part of the lab
mod charon;
#[path = "common/gateways.rs"]
mod gateways;
#[path = "../../dataplane/tests/common/host.rs"]
#[allow(dead_code)]
mod host;
use charon::*;
use gateways::*;
use host::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One case: IKE `ike`, ESP `esp` on both sides (espgw adds `-esn-noesn`'s fallback), espgw
/// initiating or charon; with `rekey`, espgw rekeys the child every 8 s under a flood.
fn case(tag: &str, ike: &str, esp: &str, espgw_initiates: bool, rekey: bool) {
    let edit = move |c: &mut serde_json::Value| {
        if rekey {
            c["ike"]["vpns"][0]["lifetime_s"] = 60.into();
            c["ike"]["vpns"][0]["rekey_margin_s"] = 52.into();
        }
    };
    let Some(lab) = lab(&Setup {
        ike,
        esp,
        espgw_initiates,
        edit: &edit,
        // With `rekey`, charon rekeys the IKE SA after 12-13 s (10 % jitter).
        rekey_time: if rekey { "13s" } else { "4h" },
        ..Setup::new(tag)
    }) else {
        return;
    };
    let p = |f: &str| lab.p(f);
    let ns = |g: &str| lab.ns(g);
    let dir = lab.dir.clone();
    let logs = || lab.logs();
    assert!(
        until(Duration::from_secs(30), || std::fs::read_to_string(p(
            "charon.log"
        ))
        .unwrap_or_default()
        .contains("CHILD_SA net{1} established")),
        "no child SA: {}",
        logs()
    );
    let charon_log = std::fs::read_to_string(p("charon.log")).unwrap_or_default();
    assert!(
        charon_log.contains("selected proposal: ESP:") && charon_log.contains("/NO_EXT_SEQ"),
        "no ESN with libipsec: {charon_log}"
    );
    assert!(a_reaches_b(&ns("a")), "a -> b: {}", logs());
    assert_eq!(
        ping(&ns("a"), "10.1.0.10", "10.2.0.10", 50, "0.02"),
        (50, 50)
    );
    assert_eq!(
        ping(&ns("b"), "10.2.0.10", "10.1.0.10", 50, "0.02"),
        (50, 50)
    );
    // A TCP transfer b -> a: 4 MB through the tunnel, checked byte for byte by its digest.
    let data = p("blob");
    let blob: Vec<u8> = (0..4_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    std::fs::write(&data, &blob).unwrap();
    let mut server = Proc(
        Command::new("ip")
            .args(["netns", "exec", &ns("b"), "python3", "-m", "http.server"])
            .args(["--bind", "10.2.0.10", "8080", "--directory"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let fetched = p("fetched");
    assert!(until(Duration::from_secs(10), || {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns("a"),
                "curl",
                "-sf",
                "--max-time",
                "20",
                "-o",
            ])
            .arg(&fetched)
            .arg("http://10.2.0.10:8080/blob")
            .status()
            .is_ok_and(|s| s.success())
    }));
    assert!(
        std::fs::read(&fetched).unwrap() == blob,
        "the TCP transfer changed bytes"
    );
    server.stop(libc::SIGTERM);
    if !rekey {
        return;
    }
    // A bounded flood across child rekeys by espgw (with PFS: a new DH in CREATE_CHILD_SA,
    // which charon names in the proposal it selects) and an IKE SA rekey by charon: nothing
    // lost, and the new SAs carry it. The wire between the gateways is captured, for tshark.
    let pcap = p("wan.pcap");
    let mut cap = Proc(
        in_ns(&ns("gw2"))
            .args(["tshark", "-n", "-q", "-i", "wan", "-a", "duration:60", "-w"])
            .arg(&pcap)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(p("tshark.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_for(&p("tshark.log"), "Capturing on", "tshark");
    // dumpcap announces the capture a moment before its socket sees packets.
    std::thread::sleep(Duration::from_millis(500));
    let (sent, got) = ping(&ns("a"), "10.1.0.10", "10.2.0.10", 1400, "0.01");
    std::thread::sleep(Duration::from_millis(300));
    cap.stop(libc::SIGINT);
    let charon_log = std::fs::read_to_string(p("charon.log")).unwrap_or_default();
    assert_eq!(
        (sent, got),
        (1400, 1400),
        "lost across the rekeys: {}",
        logs()
    );
    let ours = std::fs::read_to_string(p("gw1.ctl.log")).unwrap_or_default();
    assert!(ours.contains("IKE SA rekeyed"), "{}", logs());
    assert!(
        !ours.contains("IKE SA rekey:"),
        "a failed IKE rekey: {}",
        logs()
    );
    assert!(
        charon_log.contains("CHILD_SA net{2} established with SPIs"),
        "no rekey: {}",
        logs()
    );
    // The newest child (there may have been two rekeys) is what our dataplane has.
    let line = charon_log
        .lines()
        .rev()
        .find(|l| l.contains("established with SPIs"))
        .unwrap_or_default();
    assert!(
        charon_log.contains("selected proposal: ESP:AES_GCM_16_256/CURVE_25519/NO_EXT_SEQ"),
        "{charon_log}"
    );
    let spis: Vec<&str> = line
        .split_whitespace()
        .filter(|w| w.ends_with("_i") || w.ends_with("_o"))
        .map(|w| &w[..8])
        .collect();
    let ours = cli(
        &ns("gw1"),
        &p("token"),
        &["show", "security", "ipsec", "security-associations"],
    )
    .unwrap();
    for spi in &spis {
        assert!(ours.contains(spi), "{spi} not in {ours}");
    }
    decrypted_by_tshark(&pcap, &charon_log);
}

/// The child SAs charon made, from its log (`chd = 4` prints their keys): for each, its
/// inbound and outbound SPIs and the keys of the initiator's and the responder's direction
/// (espgw initiated every child of these cases: its direction is charon's inbound).
fn charon_children(log: &str) -> Vec<(String, String, String, String)> {
    let lines: Vec<&str> = log.lines().collect();
    let key = |at: usize| -> String {
        // "... key => 36 bytes @ 0x...", then rows "   0: 7C 86 ...  ascii".
        let n: usize = lines[at]
            .split("=> ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        // Each line after charon's "12[CHD] " prefix.
        lines[at + 1..]
            .iter()
            .map(|l| l.split_once("] ").map_or(*l, |x| x.1))
            .take_while(|l| {
                l.split_once(':')
                    .is_some_and(|(o, _)| o.trim().parse::<u32>().is_ok())
            })
            .flat_map(|l| {
                l.split_once(':')
                    .map(|x| x.1)
                    .unwrap_or("")
                    .split_whitespace()
            })
            .filter(|t| t.len() == 2 && t.chars().all(|c| c.is_ascii_hexdigit()))
            .take(n)
            .collect::<String>()
            .to_lowercase()
    };
    let (mut init, mut resp) = (String::new(), String::new());
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if l.contains("encryption initiator key =>") {
            init = key(i);
        } else if l.contains("encryption responder key =>") {
            resp = key(i);
        } else if l.contains("established with SPIs") {
            let spis: Vec<&str> = l
                .split_whitespace()
                .filter(|w| w.ends_with("_i") || w.ends_with("_o"))
                .map(|w| &w[..8])
                .collect();
            if let [i_spi, o_spi] = spis[..] {
                // Logged twice (IKE and CHD): once is enough.
                if !out
                    .iter()
                    .any(|c: &(String, String, String, String)| c.0 == i_spi)
                {
                    out.push((
                        i_spi.to_string(),
                        o_spi.to_string(),
                        init.clone(),
                        resp.clone(),
                    ));
                }
            }
        }
    }
    out
}

/// tshark, an ESP implementation independent of ours and charon's, decrypts every ESP packet
/// of the capture with the keys charon logged: the echo requests and replies are inside, and
/// both directions used more than one SA (the rekeys' new SPIs carried traffic).
fn decrypted_by_tshark(pcap: &Path, charon_log: &str) {
    let children = charon_children(charon_log);
    let sample: Vec<&str> = charon_log
        .lines()
        .skip_while(|l| !l.contains("encryption initiator key"))
        .take(6)
        .collect();
    assert!(
        children.len() >= 2,
        "children with keys: {children:?} {sample:#?}"
    );
    assert!(
        children.iter().all(|c| c.2.len() == 72),
        "{children:?} {sample:#?}"
    );
    let mut args = vec![
        "-n".to_string(),
        "-r".to_string(),
        pcap.display().to_string(),
    ];
    args.extend(["-o".into(), "esp.enable_encryption_decode:TRUE".into()]);
    for (i_spi, o_spi, init, resp) in &children {
        assert_eq!(
            (init.len(), resp.len()),
            (72, 72),
            "AES-256-GCM key and salt"
        );
        for (src, dst, spi, k) in [
            ("192.0.2.1", "192.0.2.2", i_spi, init),
            ("192.0.2.2", "192.0.2.1", o_spi, resp),
        ] {
            args.push("-o".into());
            args.push(format!(
                "uat:esp_sa:\"IPv4\",\"{src}\",\"{dst}\",\"0x{spi}\",\"AES-GCM with 16 octet ICV [RFC4106]\",\"0x{k}\",\"NULL\",\"\""
            ));
        }
    }
    args.extend(
        [
            "-Y",
            "esp",
            "-T",
            "fields",
            "-e",
            "esp.spi",
            "-e",
            "icmp.type",
        ]
        .map(String::from),
    );
    let out = Command::new("tshark").args(&args).output().unwrap();
    let rows = String::from_utf8_lossy(&out.stdout);
    let mut spis: std::collections::BTreeMap<String, usize> = Default::default();
    let mut undecrypted = 0;
    for row in rows.lines() {
        let mut f = row.split('\t');
        let (spi, icmp) = (f.next().unwrap_or(""), f.next().unwrap_or(""));
        if icmp != "8" && icmp != "0" {
            undecrypted += 1;
        }
        *spis.entry(spi.to_string()).or_default() += 1;
    }
    let total: usize = spis.values().sum();
    // The echoes and replies of the flood (ping counted them all), give or take what the
    // capture's start missed.
    assert!(total >= 2790, "ESP packets captured: {spis:?}");
    assert_eq!(
        undecrypted, 0,
        "not decrypted to an echo: {undecrypted} of {total}"
    );
    assert!(
        spis.len() >= 4,
        "the rekeyed SAs carried no traffic: {spis:?}"
    );
}

#[test]
fn espgw_initiates_aes128gcm16_prfsha256_modp2048() {
    case(
        "m",
        "aes128gcm16-prfsha256-modp2048",
        "aes128gcm16",
        true,
        false,
    );
}

#[test]
fn strongswan_initiates_aes256gcm16_prfsha384_ecp384() {
    case(
        "e",
        "aes256gcm16-prfsha384-ecp384",
        "aes256gcm16",
        false,
        false,
    );
}

#[test]
fn espgw_initiates_aes256_sha256_x25519_and_rekeys_its_child_with_pfs_under_a_flood() {
    case(
        "x",
        "aes256-sha256-x25519",
        "aes256gcm16-x25519",
        true,
        true,
    );
}

/// IKE fragmentation (RFC 7383) both ways: fragments of at most 256 bytes on both sides, and
/// MODP-2048 PFS so that every child rekey (a 256-byte KE each way) is too big for one:
/// espgw's IKE_AUTH and rekeys leave in fragments that charon puts back together, and
/// charon's answers come in fragments that espgw does; traffic flows across the rekeys.
#[test]
fn ike_fragments_both_ways_across_pfs_rekeys() {
    let edit = |c: &mut serde_json::Value| {
        c["ike"]["gateways"][0]["fragment_size"] = 256.into();
        c["ike"]["vpns"][0]["lifetime_s"] = 60.into();
        c["ike"]["vpns"][0]["rekey_margin_s"] = 52.into();
    };
    let Some(lab) = lab(&Setup {
        ike: "aes256gcm16-prfsha256-modp2048",
        esp: "aes256gcm16-modp2048",
        edit: &edit,
        charon_extra: "fragment_size = 256",
        ..Setup::new("f")
    }) else {
        return;
    };
    let ns = |g: &str| lab.ns(g);
    lab.wait_child_up();
    assert!(a_reaches_b(&ns("a")), "a -> b: {}", lab.logs());
    // Across the first rekey (8 s after the child was made): nothing lost.
    assert_eq!(
        ping(&ns("a"), "10.1.0.10", "10.2.0.10", 1000, "0.01"),
        (1000, 1000),
        "{}",
        lab.logs()
    );
    assert!(
        until(Duration::from_secs(10), || lab
            .charon_log()
            .contains("CHILD_SA net{2} established")),
        "no rekey: {}",
        lab.logs()
    );
    let charon = lab.charon_log();
    assert!(
        charon.contains("reassembled fragmented IKE message"),
        "charon got no fragments: {charon}"
    );
    assert!(
        charon.contains("splitting IKE message"),
        "charon sent no fragments: {charon}"
    );
    assert!(
        charon.contains("selected proposal: ESP:AES_GCM_16_256/MODP_2048/NO_EXT_SEQ"),
        "{charon}"
    );
    let token = std::fs::read_to_string(lab.p("token")).unwrap();
    let (code, body) = http(&ns("gw1"), "/v1/ike", Some(token.trim()));
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let sa = &v["security_associations"][0];
    assert_eq!(sa["fragmentation"], true, "{v}");
    assert!(sa["fragmented"].as_u64() >= Some(1), "{v}");
    assert!(sa["reassembled"].as_u64() >= Some(1), "{v}");
    assert_eq!(
        ping(&ns("b"), "10.2.0.10", "10.1.0.10", 20, "0.02"),
        (20, 20)
    );
}

/// charon is killed: espgw's DPD (2 s x 2) finds it dead within 2 x 2 s (plus a second for
/// the dataplane's counters), and the SAs leave espgw's dataplane at once; charon started
/// again (with nothing of the old SAs), espgw's next try brings the tunnel back.
#[test]
fn a_dead_strongswan_is_found_by_dpd_and_the_tunnel_comes_back_with_it() {
    let edit = |c: &mut serde_json::Value| {
        c["ike"]["gateways"][0]["dpd"] =
            serde_json::json!({"interval_s": 2, "threshold": 2, "action": "clear"});
    };
    let Some(mut lab) = lab(&Setup {
        ike: "aes256gcm16-prfsha384-ecp384",
        edit: &edit,
        ..Setup::new("d")
    }) else {
        return;
    };
    let name = lab.name.clone();
    let ns = move |g: &str| format!("{name}-{g}");
    assert!(
        until(Duration::from_secs(30), || ike_up(&lab).len() == 1),
        "no IKE SA: {}",
        lab.logs()
    );
    assert!(a_reaches_b(&ns("a")), "a -> b: {}", lab.logs());
    lab.kill_charon(false);
    let died = Instant::now();
    assert!(
        until(Duration::from_secs(10), || lab
            .ctl_log()
            .contains(": Timeout")),
        "DPD did not find charon dead: {}",
        lab.logs()
    );
    let found = died.elapsed();
    // interval x threshold, plus the second between two looks at the inbound counters and
    // some slack for a loaded machine.
    assert!(found < Duration::from_secs(7), "found dead after {found:?}");
    assert!(
        until(Duration::from_secs(2), || lab
            .cli(&["show", "security", "ipsec", "security-associations"])
            .contains("Total IPsec SAs: 0")),
        "the dead peer's SAs stayed: {}",
        lab.cli(&["show", "security", "ipsec", "security-associations"])
    );
    let (code, metrics) = http(
        &ns("gw1"),
        "/metrics",
        Some(std::fs::read_to_string(lab.p("token")).unwrap().trim()),
    );
    assert_eq!(code, 200);
    assert!(
        metrics.contains("espgw_ike_dpd_timeouts_total{gateway=\"peer\"} 1"),
        "{metrics}"
    );
    // charon back, knowing nothing: espgw negotiates again (its IKE_SA_INIT retransmitted).
    lab.kill_charon(true);
    assert!(
        until(Duration::from_secs(30), || ike_up(&lab).len() == 1),
        "the tunnel did not come back: {}",
        lab.logs()
    );
    assert!(
        a_reaches_b(&ns("a")),
        "a -> b after charon's restart: {}",
        lab.logs()
    );
}

/// charon initiates, is killed and started again: its new IKE SA says INITIAL_CONTACT, and
/// espgw replaces the old IKE SA and its child at once (long before DPD, left at its 30 s
/// default, could notice), leaving exactly the new SAs; traffic flows on them.
#[test]
fn a_restarted_strongswan_says_initial_contact_and_replaces_the_old_sas() {
    let Some(mut lab) = lab(&Setup {
        ike: "aes256gcm16-prfsha384-ecp384",
        espgw_initiates: false,
        ..Setup::new("c")
    }) else {
        return;
    };
    let name = lab.name.clone();
    let ns = move |g: &str| format!("{name}-{g}");
    assert!(
        until(Duration::from_secs(30), || ike_up(&lab).len() == 1),
        "no IKE SA: {}",
        lab.logs()
    );
    let old = ike_up(&lab);
    lab.kill_charon(true);
    let restarted = Instant::now();
    assert!(
        until(Duration::from_secs(20), || {
            let now = ike_up(&lab);
            now.len() == 1 && now != old
        }),
        "not replaced: {:?} -> {:?}: {}",
        old,
        ike_up(&lab),
        lab.logs()
    );
    assert!(restarted.elapsed() < Duration::from_secs(20));
    let ctl = lab.ctl_log();
    assert!(
        !ctl.contains(": Timeout"),
        "DPD, not INITIAL_CONTACT: {ctl}"
    );
    assert!(
        until(Duration::from_secs(2), || lab
            .cli(&["show", "security", "ipsec", "security-associations"])
            .contains("Total IPsec SAs: 2")),
        "{}",
        lab.cli(&["show", "security", "ipsec", "security-associations"])
    );
    // Everything IKE knows is the new SA.
    let all = lab.cli(&["show", "security", "ike", "security-associations"]);
    assert_eq!(all.lines().count(), 2, "{all}");
    assert!(
        a_reaches_b(&ns("a")),
        "a -> b on the new SAs: {}",
        lab.logs()
    );
}

#[test]
fn a_wrong_psk_fails_with_authentication_failed_both_ways() {
    let wrong = |c: &mut serde_json::Value| {
        let f = std::path::PathBuf::from(c["ike"]["gateways"][0]["psk_file"].as_str().unwrap());
        let other = f.with_file_name("wrong-psk");
        std::fs::write(&other, "not the shared key\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o600)).unwrap();
        c["ike"]["gateways"][0]["psk_file"] = other.to_str().unwrap().into();
    };
    // espgw initiates: charon refuses our AUTH.
    failure(
        "p",
        true,
        &wrong,
        None,
        "AUTHENTICATION_FAILED",
        "N(AUTH_FAILED)",
    );
    // charon initiates: we refuse its AUTH, and it hears why.
    failure(
        "q",
        false,
        &wrong,
        None,
        "AUTHENTICATION_FAILED",
        "received AUTHENTICATION_FAILED notify error",
    );
}

#[test]
fn a_proposal_mismatch_fails_with_no_proposal_chosen() {
    let other = |c: &mut serde_json::Value| {
        c["ike"]["gateways"][0]["proposals"] = serde_json::json!(["aes128gcm16-prfsha256-ecp256"]);
    };
    failure("n", true, &other, None, "NO_PROPOSAL_CHOSEN", "N(NO_PROP)");
}

#[test]
fn a_traffic_selector_mismatch_fails_with_ts_unacceptable_and_leaves_no_ike_sa() {
    let elsewhere = |c: &mut serde_json::Value| {
        c["ike"]["vpns"][0]["remote_ts"] = serde_json::json!(["10.9.0.0/24"]);
    };
    failure(
        "t",
        true,
        &elsewhere,
        None,
        "child SA: TS_UNACCEPTABLE",
        "N(TS_UNACCEPT)",
    );
}
