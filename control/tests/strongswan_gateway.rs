//! espgw (control + dataplane on net_af_packet) against strongSwan 5.9's charon as the other
//! gateway, PSK, in the namespaces of scripts/topology.sh (mode `ike`): charon replaces gw2
//! (kernel addresses on its ports, IP forwarding, kernel-libipsec, which always carries ESP in
//! UDP 4500). Each case negotiates, then host a and host b talk through the tunnel (ping both
//! ways and a TCP transfer); the proposal sets are the issue's, espgw is initiator in some and
//! responder in others, and espgw's `esn-noesn` falls back to no ESN with charon.

#[path = "common/gateways.rs"]
mod gateways;
#[path = "../../dataplane/tests/common/host.rs"]
mod host;
use gateways::*;
use host::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// charon and the shell that started it, stopped by the PID charon wrote, then the shell.
struct Charon {
    shell: Child,
    pid_file: std::path::PathBuf,
}

impl Charon {
    /// charon in gw2's namespace `ns` and a mount namespace of its own, run by `dir`'s
    /// charon.sh.
    fn start(ns: &str, dir: &Path) -> Charon {
        Charon {
            shell: Command::new("ip")
                .args(["netns", "exec", ns, "unshare", "-m", "sh"])
                .arg(dir.join("charon.sh"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
            pid_file: dir.join("charon.pid"),
        }
    }

    /// Ends charon with `signal` (by the PID it wrote), then its shell.
    fn stop(&mut self, signal: i32) {
        if let Some(pid) = std::fs::read_to_string(&self.pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            let _ = std::fs::remove_file(&self.pid_file);
            // SAFETY: kill on the PID of the charon this test started (from its pid file).
            unsafe { libc::kill(pid, signal) };
            for _ in 0..50 {
                // SAFETY: signal 0 only checks that the process exists.
                if unsafe { libc::kill(pid, 0) } != 0 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        // SAFETY: kill on the PID of a child we spawned and have not yet reaped.
        unsafe { libc::kill(self.shell.id() as i32, libc::SIGTERM) };
        let _ = self.shell.wait();
    }
}

impl Drop for Charon {
    fn drop(&mut self) {
        self.stop(libc::SIGTERM);
    }
}

/// Host a (ARP resolved first) reaches host b through the tunnel within 5 s.
fn a_reaches_b(a: &str) -> bool {
    ping(a, "10.1.0.10", "10.1.0.1", 1, "0.2");
    until(Duration::from_secs(5), || {
        ping(a, "10.1.0.10", "10.2.0.10", 1, "0.2") == (1, 1)
    })
}

fn until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    f()
}

fn sh(ns: &str, cmd: &str) {
    let ok = Command::new("ip")
        .args(["netns", "exec", ns, "sh", "-c", cmd])
        .status()
        .unwrap();
    assert!(ok.success(), "{cmd}");
}

/// The lab of one case: topology, charon on gw2, espgw on gw1.
struct Lab {
    name: String,
    dir: std::path::PathBuf,
    _ctl: Proc,
    _dp: Proc,
    charon: Charon,
    _topo: Topology,
}

impl Lab {
    fn p(&self, f: &str) -> std::path::PathBuf {
        self.dir.join(f)
    }

    fn ns(&self, g: &str) -> String {
        format!("{}-{g}", self.name)
    }

    fn logs(&self) -> String {
        format!(
            "espgw:\n{}\ncharon:\n{}",
            std::fs::read_to_string(self.p("gw1.ctl.log")).unwrap_or_default(),
            std::fs::read_to_string(self.p("charon.log")).unwrap_or_default()
        )
    }

    fn charon_log(&self) -> String {
        std::fs::read_to_string(self.p("charon.log")).unwrap_or_default()
    }

    fn ctl_log(&self) -> String {
        std::fs::read_to_string(self.p("gw1.ctl.log")).unwrap_or_default()
    }

    /// charon killed (`SIGKILL`: no delete reaches espgw) and, with `again`, started anew
    /// with none of its old SAs (it initiates again if it did at first).
    fn kill_charon(&mut self, again: bool) {
        self.charon.stop(libc::SIGKILL);
        if again {
            self.charon = Charon::start(&self.ns("gw2"), &self.dir);
        }
    }

    fn cli(&self, words: &[&str]) -> String {
        cli(&self.ns("gw1"), &self.p("token"), words).unwrap_or_else(|e| e)
    }
}

/// What a case sets up: charon's IKE and ESP proposals and selectors, and espgw's
/// configuration edited by `edit` (its proposals start as charon's).
struct Setup<'a> {
    tag: &'a str,
    ike: &'a str,
    esp: &'a str,
    espgw_initiates: bool,
    edit: &'a dyn Fn(&mut serde_json::Value),
    /// charon's IKE SA rekey time (swanctl.conf syntax).
    rekey_time: &'a str,
    /// More settings in strongswan.conf's `charon` section.
    charon_extra: &'a str,
    /// Certificates instead of the PSK.
    certs: Option<Certs<'a>>,
    /// A second child under the IKE SA: 10.1.0.0/24 <-> 10.2.1.0/24, espgw's tunnel st0.1,
    /// charon's child `net2` (host b gets 10.2.1.10).
    second_child: bool,
}

/// Certificate authentication, from a test PKI made for the case (scripts/make-test-pki.sh):
/// which of its certificates each side uses, and identities.
#[derive(Clone, Copy)]
struct Certs<'a> {
    /// espgw's certificate (its chain and key), e.g. `gw1`; its ID is the subject's DN.
    espgw: &'a str,
    /// charon's certificate; charon also knows the intermediate CA, to send it.
    charon: &'a str,
    /// The ID charon uses, and the one espgw expects of its peer.
    charon_id: &'a str,
    espgw_expects: &'a str,
}

/// espgw's configuration with certificates from `pki` in place of the PSK.
fn use_certs(c: &mut serde_json::Value, pki: &Path, k: &Certs<'_>) {
    let g = &mut c["ike"]["gateways"][0];
    if let Some(o) = g.as_object_mut() {
        o.remove("psk_file");
        o.remove("local_id");
    }
    let f = |n: &str| pki.join(n).to_str().unwrap().to_string();
    g["certificate"] = f(&format!("{}.pem", k.espgw)).into();
    g["private_key"] = f(&format!("{}.key", k.espgw)).into();
    g["ca_certificates"] = serde_json::json!([f("root.crt")]);
    g["remote_id"] = k.espgw_expects.into();
}

/// charon's `local`/`remote` sections and the credentials they need (swanctl.conf), by PSK
/// or by `certs` (swanctl loads private keys only from the `private` folder beside its
/// configuration: `lab` puts charon's there).
fn charon_auth(certs: Option<&Certs<'_>>, pki: &Path, psk: &str) -> (String, String) {
    let Some(k) = certs else {
        return (
            "local { auth = psk\n            id = gw2.example }\n    remote { auth = psk\n             id = gw1.example }".into(),
            format!("secrets {{ ike-1 {{ id-1 = gw1.example\n                  id-2 = gw2.example\n                  secret = \"{psk}\" }} }}\n"),
        );
    };
    let p = |n: &str| pki.join(n).display().to_string();
    (
        format!(
            "local {{ auth = pubkey\n            certs = {}\n            id = {} }}\n    remote {{ auth = pubkey\n             id = \"C=CH, O=espgw test, CN={}.example\"\n             cacerts = {} }}",
            p(&format!("{}.crt", k.charon)),
            k.charon_id,
            k.espgw,
            p("root.crt")
        ),
        format!("authorities {{ int {{ cacert = {} }} }}\n", p("int.crt")),
    )
}

fn lab(s: &Setup<'_>) -> Option<Lab> {
    let Setup {
        tag,
        ike,
        esp,
        espgw_initiates,
        edit,
        rekey_time,
        charon_extra,
        certs,
        second_child,
    } = *s;
    if !require_root("strongSwan as the peer gateway") {
        return None;
    }
    assert!(
        Path::new("/usr/lib/ipsec/charon").exists(),
        "strongSwan's charon is not installed (scripts/setup.sh)"
    );
    let name = format!("espgw-s{tag}{}", std::process::id() % 10_000);
    let dir = std::env::temp_dir().join(format!("espgw-sw-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let topo = Topology {
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
    let psk = std::fs::read_to_string(p("psk"))
        .unwrap()
        .trim()
        .to_string();

    // gw1: espgw with this case's proposals.
    let f = p("gw1.json");
    let mut c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
    c["ike"]["gateways"][0]["proposals"] = serde_json::json!([ike]);
    c["ike"]["vpns"][0]["esp_proposals"] = serde_json::json!([format!("{esp}-esn-noesn")]);
    c["ike"]["vpns"][0]["establish"] = serde_json::json!(if espgw_initiates {
        "immediately"
    } else {
        "responder-only"
    });
    let pki = p("pki");
    if let Some(k) = &certs {
        let ok = Command::new(repo_root().join("scripts/make-test-pki.sh"))
            .arg(&pki)
            .arg("30")
            .status()
            .unwrap();
        assert!(ok.success(), "make-test-pki.sh");
        use_certs(&mut c, &pki, k);
        std::fs::create_dir_all(p("private")).unwrap();
        std::fs::copy(
            pki.join(format!("{}.key", k.charon)),
            p("private").join(format!("{}.key", k.charon)),
        )
        .unwrap();
    }
    if second_child {
        c["tunnels"].as_array_mut().unwrap().push(
            serde_json::json!({"name": "st0.1", "local": "192.0.2.1", "remote": "192.0.2.2"}),
        );
        c["routes"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"prefix": "10.2.1.0/24", "via": "st0.1"}));
        c["ike"]["vpns"][0]["children"] = serde_json::json!([{"bind_interface": "st0.1",
            "local_ts": ["10.1.0.0/24"], "remote_ts": ["10.2.1.0/24"]}]);
    }
    edit(&mut c);
    std::fs::write(&f, c.to_string()).unwrap();
    let (charon_ends, charon_secrets) = charon_auth(certs.as_ref(), &pki, &psk);
    let net2 = if second_child {
        sh(&ns("gw2"), "ip addr add 10.2.1.1/24 dev lan");
        sh(&ns("b"), "ip addr add 10.2.1.10/16 dev eth0");
        format!("\n      net2 {{ local_ts = 10.2.1.0/24\n            remote_ts = 10.1.0.0/24\n            esp_proposals = {esp}\n            start_action = none }}")
    } else {
        String::new()
    };
    // gw2: a Linux router with charon. The hosts keep MTU 1500: path MTU discovery finds each
    // tunnel's (espgw sends ICMP "fragmentation needed", as the kernel does for libipsec's
    // TUN device).
    let gw2 = ns("gw2");
    sh(
        &gw2,
        "ip addr add 192.0.2.2/24 dev wan && ip addr add 10.2.0.1/16 dev lan && sysctl -qw net.ipv4.ip_forward=1",
    );
    std::fs::write(
        p("strongswan.conf"),
        format!(
            "charon {{\n  {charon_extra}\n  load_modular = yes\n  plugins {{\n    include /etc/strongswan.d/charon/*.conf\n    kernel-libipsec {{ load = yes }}\n  }}\n  filelog {{\n    log {{ path = {}/charon.log\n          flush_line = yes\n          default = 1\n          ike = 2\n          chd = 4\n          cfg = 2 }}\n  }}\n}}\n",
            dir.display()
        ),
    )
    .unwrap();
    std::fs::write(
        p("swanctl.conf"),
        format!(
            "connections {{\n  gw1 {{\n    version = 2\n    encap = yes\n    local_addrs = 192.0.2.2\n    remote_addrs = 192.0.2.1\n    proposals = {ike}\n    rekey_time = {rekey_time}\n    {charon_ends}\n    children {{\n      net {{ local_ts = 10.2.0.0/24\n            remote_ts = 10.1.0.0/24\n            esp_proposals = {esp}\n            start_action = none }}{net2}\n    }}\n  }}\n}}\n{charon_secrets}"
        ),
    )
    .unwrap();
    let initiate = if espgw_initiates {
        String::new()
    } else {
        let more = if second_child {
            format!(
                "swanctl --initiate --child net2 --timeout 15 >> {d}/swanctl.log 2>&1\n",
                d = dir.display()
            )
        } else {
            String::new()
        };
        format!(
            "sleep 2\nswanctl --initiate --child net --timeout 15 >> {d}/swanctl.log 2>&1\n{more}",
            d = dir.display()
        )
    };
    std::fs::write(
        p("charon.sh"),
        format!(
            "#!/bin/sh\nmount -t tmpfs tmpfs /run\nexport STRONGSWAN_CONF={d}/strongswan.conf\n/usr/lib/ipsec/charon &\necho $! > {d}/charon.pid\nfor i in $(seq 100); do [ -S /run/charon.vici ] && break; sleep 0.1; done\nswanctl --load-all --file {d}/swanctl.conf > {d}/swanctl.log 2>&1\n{initiate}wait\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let charon = Charon::start(&gw2, &dir);
    let dp = spawn(
        &ns("gw1"),
        &bin("espgw-dataplane"),
        &p("gw1.json"),
        &p("gw1.dp.log"),
    );
    wait_for(&p("gw1.dp.log"), "ready for the control process", "gw1");
    let ctl = spawn(
        &ns("gw1"),
        &bin("espgw-control"),
        &p("gw1.json"),
        &p("gw1.ctl.log"),
    );
    Some(Lab {
        name,
        dir,
        _ctl: ctl,
        _dp: dp,
        charon,
        _topo: topo,
    })
}

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
        tag,
        ike,
        esp,
        espgw_initiates,
        edit: &edit,
        // With `rekey`, charon rekeys the IKE SA after 12-13 s (10 % jitter).
        rekey_time: if rekey { "13s" } else { "4h" },
        charon_extra: "",
        certs: None,
        second_child: false,
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
        tag: "f",
        ike: "aes256gcm16-prfsha256-modp2048",
        esp: "aes256gcm16-modp2048",
        espgw_initiates: true,
        edit: &edit,
        rekey_time: "4h",
        charon_extra: "fragment_size = 256",
        certs: None,
        second_child: false,
    }) else {
        return;
    };
    let ns = |g: &str| lab.ns(g);
    assert!(
        until(Duration::from_secs(30), || lab
            .charon_log()
            .contains("CHILD_SA net{1} established")),
        "no child SA: {}",
        lab.logs()
    );
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

/// The index and SPIs of every IKE SA espgw has UP (`show security ike
/// security-associations`).
fn ike_up(lab: &Lab) -> Vec<String> {
    lab.cli(&["show", "security", "ike", "security-associations"])
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("UP"))
        .map(|l| l.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
        .collect()
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
        tag: "d",
        ike: "aes256gcm16-prfsha384-ecp384",
        esp: "aes256gcm16",
        espgw_initiates: true,
        edit: &edit,
        rekey_time: "4h",
        charon_extra: "",
        certs: None,
        second_child: false,
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
        tag: "c",
        ike: "aes256gcm16-prfsha384-ecp384",
        esp: "aes256gcm16",
        espgw_initiates: false,
        edit: &|_| {},
        rekey_time: "4h",
        charon_extra: "",
        certs: None,
        second_child: false,
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

/// A negotiation that must fail: espgw's configuration edited by `edit`, with `certs` or
/// the PSK. espgw counts the failure under `reason`, charon's log says `charon_says`, and no
/// SA is left on either side. Returns espgw's log.
fn failure(
    tag: &str,
    espgw_initiates: bool,
    edit: &dyn Fn(&mut serde_json::Value),
    certs: Option<Certs<'_>>,
    reason: &str,
    charon_says: &str,
) -> String {
    let Some(lab) = lab(&Setup {
        tag,
        ike: "aes256gcm16-prfsha384-ecp384",
        esp: "aes256gcm16",
        espgw_initiates,
        edit,
        rekey_time: "4h",
        charon_extra: "",
        certs,
        second_child: false,
    }) else {
        return String::new();
    };
    let token = lab.p("token");
    let show = |what: &[&str]| {
        let mut a = vec!["show", "security"];
        a.extend_from_slice(what);
        cli(&lab.ns("gw1"), &token, &a).unwrap_or_default()
    };
    assert!(
        until(Duration::from_secs(20), || show(&[
            "ike",
            "security-associations",
            "detail"
        ])
        .contains(reason)),
        "{reason} not counted: {}",
        lab.logs()
    );
    assert!(
        until(Duration::from_secs(5), || lab
            .charon_log()
            .contains(charon_says)),
        "charon did not say {charon_says}: {}",
        lab.logs()
    );
    assert!(
        show(&["ipsec", "security-associations"]).contains("Total IPsec SAs: 0"),
        "{}",
        lab.logs()
    );
    assert!(!lab.charon_log().contains("CHILD_SA net{1} established"));
    let (code, metrics) = http(
        &lab.ns("gw1"),
        "/metrics",
        Some(std::fs::read_to_string(&token).unwrap_or_default().trim()),
    );
    assert_eq!(code, 200);
    assert!(
        metrics.contains(&format!("reason=\"{reason}\"")),
        "{metrics}"
    );
    lab.ctl_log()
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

/// Certificates both ways, espgw initiating: espgw's RSA certificate and the intermediate CA
/// it was issued by (its ID: the subject's DN), charon's ECDSA P-256 one from the root. The
/// chain makes espgw's IKE_AUTH bigger than an IKE fragment (1280 bytes): charon puts it back
/// together; espgw's CERTREQ names the root, RFC 7427 signatures both ways; then traffic.
#[test]
fn certificates_espgw_initiates_with_an_rsa_chain_in_ike_fragments() {
    let certs = Certs {
        espgw: "gw1",
        charon: "gw2",
        charon_id: "gw2.example",
        espgw_expects: "gw2.example",
    };
    let Some(lab) = certificate_case("c", true, certs, "") else {
        return;
    };
    let charon = lab.charon_log();
    for said in [
        "received cert request for \"C=CH, O=espgw test, CN=espgw test root\"",
        "received end entity cert \"C=CH, O=espgw test, CN=gw1.example\"",
        "received issuer cert \"C=CH, O=espgw test, CN=espgw test intermediate\"",
        "authentication of 'C=CH, O=espgw test, CN=gw1.example' with RSA_EMSA_PKCS1_SHA2_256 successful",
        "reassembled fragmented IKE message",
    ] {
        assert!(charon.contains(said), "charon did not say {said}: {charon}");
    }
    let token = std::fs::read_to_string(lab.p("token")).unwrap();
    let (code, body) = http(&lab.ns("gw1"), "/v1/ike", Some(token.trim()));
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        v["security_associations"][0]["fragmented"].as_u64() >= Some(1),
        "{v}"
    );
}

/// charon initiating with an ECDSA P-384 certificate under the intermediate (which it sends),
/// espgw answering with an RSA-3072 certificate whose key is PKCS#1 ("RSA PRIVATE KEY").
#[test]
fn certificates_strongswan_initiates_with_ecdsa_p384_through_an_intermediate() {
    let certs = Certs {
        espgw: "gw4",
        charon: "gw3",
        charon_id: "gw3.example",
        espgw_expects: "gw3.example",
    };
    let Some(lab) = certificate_case("d", false, certs, "") else {
        return;
    };
    let charon = lab.charon_log();
    assert!(
        charon.contains("authentication of 'gw4.example' with RSA_EMSA_PKCS1_SHA2_256 successful")
            || charon.contains("authentication of 'C=CH, O=espgw test, CN=gw4.example' with RSA_EMSA_PKCS1_SHA2_256 successful"),
        "{charon}"
    );
    assert!(charon.contains("sending issuer cert"), "{charon}");
}

/// Without RFC 7427 (charon's `signature_authentication = no`): charon signs with its RSA key
/// by AUTH method 1 (PKCS#1 v1.5, SHA-1), which espgw verifies, and espgw with its ECDSA key
/// by method 9 (RFC 4754).
#[test]
fn certificates_without_rfc7427_rsa_method_1_and_ecdsa_method_9() {
    let certs = Certs {
        espgw: "gw2",
        charon: "gw1",
        charon_id: "gw1.example",
        espgw_expects: "gw1.example",
    };
    let Some(lab) = certificate_case("e", true, certs, "signature_authentication = no") else {
        return;
    };
    let charon = lab.charon_log();
    assert!(
        charon.contains("with ECDSA-256 signature successful"),
        "charon did not take method 9: {charon}"
    );
    assert!(
        charon.contains("authentication of 'gw1.example' (myself) with RSA signature successful"),
        "charon did not sign by method 1: {charon}"
    );
    assert!(
        !charon.contains("SIGNATURE_HASH_ALGORITHMS"),
        "charon offered RFC 7427: {charon}"
    );
}

/// Negotiates with `certs` (espgw initiating or not, charon's extra settings), then host a
/// reaches host b and back through the tunnel.
fn certificate_case(
    tag: &str,
    espgw_initiates: bool,
    certs: Certs<'_>,
    charon_extra: &str,
) -> Option<Lab> {
    let lab = lab(&Setup {
        tag,
        ike: "aes256gcm16-prfsha256-x25519",
        esp: "aes256gcm16",
        espgw_initiates,
        edit: &|_| {},
        rekey_time: "4h",
        charon_extra,
        certs: Some(certs),
        second_child: false,
    })?;
    assert!(
        until(Duration::from_secs(30), || lab
            .charon_log()
            .contains("CHILD_SA net{1} established")),
        "no child SA: {}",
        lab.logs()
    );
    assert!(a_reaches_b(&lab.ns("a")), "a -> b: {}", lab.logs());
    assert_eq!(
        ping(&lab.ns("b"), "10.2.0.10", "10.1.0.10", 20, "0.02"),
        (20, 20)
    );
    let detail = lab.cli(&["show", "security", "ike", "security-associations", "detail"]);
    for line in [
        "authentication: certificates".to_string(),
        format!("remote identity: {}", certs.espgw_expects),
        format!(
            "local identity: C=CH, O=espgw test, CN={}.example",
            certs.espgw
        ),
    ] {
        assert!(detail.contains(&line), "{line} not in {detail}");
    }
    Some(lab)
}

/// A certificate from another CA (with the very names espgw expects), and a peer whose
/// certificate is good but whose identity is not the one configured: both refused by espgw
/// with AUTHENTICATION_FAILED, which charon hears.
#[test]
fn certificates_from_another_ca_or_for_another_identity_are_refused() {
    let rogue = Certs {
        espgw: "gw1",
        charon: "rogue",
        charon_id: "gw2.example",
        espgw_expects: "gw2.example",
    };
    let log = failure(
        "r",
        false,
        &|_| {},
        Some(rogue),
        "AUTHENTICATION_FAILED",
        "received AUTHENTICATION_FAILED notify error",
    );
    assert!(
        log.is_empty() || log.contains("certificate not trusted: UnknownIssuer"),
        "{log}"
    );
    let stranger = Certs {
        espgw_expects: "gw9.example",
        charon: "gw2",
        ..rogue
    };
    let log = failure(
        "i",
        false,
        &|_| {},
        Some(stranger),
        "AUTHENTICATION_FAILED",
        "received AUTHENTICATION_FAILED notify error",
    );
    assert!(
        log.is_empty() || log.contains("the peer says it is gw2.example, not gw9.example"),
        "{log}"
    );
}

/// One VPN, two children under one IKE SA with charon, each with its own selectors and
/// espgw tunnel (st0.0: 10.2.0.0/24, st0.1: 10.2.1.0/24): espgw asks for the second by
/// CREATE_CHILD_SA, or charon does and espgw matches it to its tunnel by the selectors.
#[test]
fn two_children_under_one_ike_sa_with_strongswan_both_roles() {
    for (tag, espgw_initiates) in [("m", true), ("k", false)] {
        let Some(lab) = lab(&Setup {
            tag,
            ike: "aes256gcm16-prfsha256-x25519",
            esp: "aes256gcm16",
            espgw_initiates,
            edit: &|_| {},
            rekey_time: "4h",
            charon_extra: "",
            certs: None,
            second_child: true,
        }) else {
            return;
        };
        assert!(
            until(Duration::from_secs(30), || {
                let l = lab.charon_log();
                l.contains("CHILD_SA net{1} established")
                    && l.contains("CHILD_SA net2{2} established")
            }),
            "not both children: {}",
            lab.logs()
        );
        let a = lab.ns("a");
        assert!(a_reaches_b(&a), "a -> b: {}", lab.logs());
        assert!(
            until(Duration::from_secs(5), || ping(
                &a,
                "10.1.0.10",
                "10.2.1.10",
                1,
                "0.2"
            ) == (1, 1)),
            "a -> b's second address (second child): {}",
            lab.logs()
        );
        assert_eq!(ping(&a, "10.1.0.10", "10.2.1.10", 20, "0.02"), (20, 20));
        assert_eq!(ping(&a, "10.1.0.10", "10.2.0.10", 20, "0.02"), (20, 20));
        // One IKE SA, two children, each keying its tunnel.
        assert_eq!(ike_up(&lab).len(), 1, "{}", lab.logs());
        let detail = lab.cli(&["show", "security", "ike", "security-associations", "detail"]);
        for (tunnel, remote) in [("st0.0", "10.2.0.0/24"), ("st0.1", "10.2.1.0/24")] {
            assert!(
                detail
                    .lines()
                    .any(|l| l.trim_start().starts_with(tunnel) && l.contains(remote)),
                "{tunnel} {remote} not in {detail}"
            );
        }
    }
}

/// A policy-based VPN with charon (Junos `then permit tunnel ipsec-vpn`): no route into a
/// tunnel at all; two policies send 10.2.0.0/24 and 10.2.1.0/24 into the VPN, whose IKE SA
/// carries a child for each (charon's `net` and `net2`, different selectors); a third drops
/// what goes to 10.2.2.0/24; what matches none (gw2's own address) is routed in clear. Each
/// is counted (`/v1/statistics`).
#[test]
fn a_policy_based_vpn_with_two_children_a_deny_and_traffic_in_clear() {
    let edit = |c: &mut serde_json::Value| {
        c["tunnels"] = serde_json::json!([]);
        c["routes"] = serde_json::json!([]);
        let v = &mut c["ike"]["vpns"][0];
        let o = v.as_object_mut().unwrap();
        for f in ["bind_interface", "local_ts", "remote_ts", "children"] {
            o.remove(f);
        }
        c["policies"] = serde_json::json!([
            {"name": "b-net", "source": ["10.1.0.0/24"], "destination": ["10.2.0.0/24"],
             "then": {"ipsec_vpn": "vpn0"}},
            {"name": "b-net2", "source": ["10.1.0.0/24"], "destination": ["10.2.1.0/24"],
             "then": {"ipsec_vpn": "vpn0"}},
            {"name": "no-lab", "destination": ["10.2.2.0/24"], "then": "deny"}
        ]);
    };
    let Some(lab) = lab(&Setup {
        tag: "y",
        ike: "aes256gcm16-prfsha256-x25519",
        esp: "aes256gcm16",
        espgw_initiates: true,
        edit: &edit,
        rekey_time: "4h",
        charon_extra: "",
        certs: None,
        second_child: true,
    }) else {
        return;
    };
    assert!(
        until(Duration::from_secs(30), || {
            let l = lab.charon_log();
            l.contains("CHILD_SA net{1} established") && l.contains("CHILD_SA net2{2} established")
        }),
        "not both children: {}",
        lab.logs()
    );
    let a = lab.ns("a");
    assert!(a_reaches_b(&a), "a -> b: {}", lab.logs());
    assert!(
        until(Duration::from_secs(5), || ping(
            &a,
            "10.1.0.10",
            "10.2.1.10",
            1,
            "0.2"
        ) == (1, 1)),
        "second policy's child: {}",
        lab.logs()
    );
    assert_eq!(ping(&a, "10.1.0.10", "10.2.1.10", 10, "0.02"), (10, 10));
    // Denied: nothing comes back.
    sh(&lab.ns("b"), "ip addr add 10.2.2.10/16 dev eth0");
    assert_eq!(ping(&a, "10.1.0.10", "10.2.2.10", 3, "0.05").1, 0);
    // No policy: routed in clear, from a source no policy names (10.1.5.10) to gw2's own
    // address, which answers in clear too (10.1.5.0/24 is outside charon's selectors).
    sh(&a, "ip addr add 10.1.5.10/16 dev eth0");
    sh(&lab.ns("gw2"), "ip route add 10.1.5.0/24 via 192.0.2.1");
    assert!(
        until(Duration::from_secs(5), || ping(
            &a,
            "10.1.5.10",
            "192.0.2.2",
            1,
            "0.2"
        ) == (1, 1)),
        "in clear: {}",
        lab.logs()
    );
    assert_eq!(ping(&a, "10.1.5.10", "192.0.2.2", 3, "0.05"), (3, 3));
    let detail = lab.cli(&["show", "security", "ike", "security-associations", "detail"]);
    for (tunnel, remote) in [("b-net", "10.2.0.0/24"), ("b-net2", "10.2.1.0/24")] {
        assert!(
            detail
                .lines()
                .any(|l| l.trim_start().starts_with(tunnel) && l.contains(remote)),
            "{tunnel} {remote} not in {detail}"
        );
    }
    let token = std::fs::read_to_string(lab.p("token")).unwrap();
    let (_, body) = http(&lab.ns("gw1"), "/v1/statistics", Some(token.trim()));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let g = &v["global"];
    assert!(g["policy_tunneled"].as_u64() >= Some(12), "{g}");
    assert!(g["policy_denied"].as_u64() >= Some(3), "{g}");
    assert!(g["policy_unmatched"].as_u64() >= Some(3), "{g}");
}
