//! The strongSwan interop lab: espgw (control + dataplane on net_af_packet) as gw1 and
//! strongSwan 5.9's charon as gw2 in the namespaces of scripts/topology.sh (mode `ike`): charon
//! replaces gw2 (kernel addresses on its ports, IP forwarding, kernel-libipsec, which always
//! carries ESP in UDP 4500). A case sets up its lab (`lab`), negotiates, and checks what
//! both sides say; `failure` runs a negotiation that must fail. Used by the strongswan_*
//! tests.

use crate::gateways::*;
use crate::host::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// charon and the shell that started it, stopped by the PID charon wrote, then the shell.
pub struct Charon {
    pub shell: Child,
    pub pid_file: std::path::PathBuf,
}

impl Charon {
    /// charon in gw2's namespace `ns` and a mount namespace of its own, run by `dir`'s
    /// charon.sh.
    pub fn start(ns: &str, dir: &Path) -> Charon {
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
    pub fn stop(&mut self, signal: i32) {
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
pub fn a_reaches_b(a: &str) -> bool {
    ping(a, "10.1.0.10", "10.1.0.1", 1, "0.2");
    until(Duration::from_secs(5), || {
        ping(a, "10.1.0.10", "10.2.0.10", 1, "0.2") == (1, 1)
    })
}

pub fn until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    f()
}

pub fn sh(ns: &str, cmd: &str) {
    let ok = Command::new("ip")
        .args(["netns", "exec", ns, "sh", "-c", cmd])
        .status()
        .unwrap();
    assert!(ok.success(), "{cmd}");
}

/// The lab of one case: topology, charon on gw2, espgw on gw1.
pub struct Lab {
    pub name: String,
    pub dir: std::path::PathBuf,
    pub _ctl: Proc,
    pub _dp: Proc,
    pub charon: Charon,
    pub _topo: Topology,
}

impl Lab {
    pub fn p(&self, f: &str) -> std::path::PathBuf {
        self.dir.join(f)
    }

    pub fn ns(&self, g: &str) -> String {
        format!("{}-{g}", self.name)
    }

    pub fn logs(&self) -> String {
        format!(
            "espgw:\n{}\ncharon:\n{}",
            std::fs::read_to_string(self.p("gw1.ctl.log")).unwrap_or_default(),
            std::fs::read_to_string(self.p("charon.log")).unwrap_or_default()
        )
    }

    pub fn charon_log(&self) -> String {
        std::fs::read_to_string(self.p("charon.log")).unwrap_or_default()
    }

    pub fn ctl_log(&self) -> String {
        std::fs::read_to_string(self.p("gw1.ctl.log")).unwrap_or_default()
    }

    /// charon killed (`SIGKILL`: no delete reaches espgw) and, with `again`, started anew
    /// with none of its old SAs (it initiates again if it did at first).
    pub fn kill_charon(&mut self, again: bool) {
        self.charon.stop(libc::SIGKILL);
        if again {
            self.charon = Charon::start(&self.ns("gw2"), &self.dir);
        }
    }

    /// Waits up to 30 s for charon's first child (`net`) to be established; fails the test
    /// with both logs if it is not.
    pub fn wait_child_up(&self) {
        assert!(
            until(Duration::from_secs(30), || self
                .charon_log()
                .contains("CHILD_SA net{1} established")),
            "no child SA: {}",
            self.logs()
        );
    }

    pub fn cli(&self, words: &[&str]) -> String {
        cli(&self.ns("gw1"), &self.p("token"), words).unwrap_or_else(|e| e)
    }
}

/// What a case sets up: charon's IKE and ESP proposals and selectors, and espgw's
/// configuration edited by `edit` (its proposals start as charon's).
pub struct Setup<'a> {
    pub tag: &'a str,
    pub ike: &'a str,
    pub esp: &'a str,
    pub espgw_initiates: bool,
    pub edit: &'a dyn Fn(&mut serde_json::Value),
    /// charon's IKE SA rekey time (swanctl.conf syntax).
    pub rekey_time: &'a str,
    /// More settings in strongswan.conf's `charon` section.
    pub charon_extra: &'a str,
    /// Certificates instead of the PSK.
    pub certs: Option<Certs<'a>>,
    /// A second child under the IKE SA: 10.1.0.0/24 <-> 10.2.1.0/24, espgw's tunnel st0.1,
    /// charon's child `net2` (host b gets 10.2.1.10).
    pub second_child: bool,
    /// IPv6 beside IPv4 in the child (2001:db8:1::/64 <-> 2001:db8:2::/64): the hosts get
    /// IPv6 addresses, espgw's LAN one and a route into st0.0, charon's child the selectors.
    pub ipv6: bool,
    /// IKE and ESP over IPv6: the WAN link gets 2001:db8:ffff::1 (espgw) and ::2 (charon),
    /// and the tunnel, the gateway and charon's connection run between them.
    pub ipv6_wan: bool,
}

fn no_edit(_: &mut serde_json::Value) {}

impl Setup<'_> {
    /// The usual case: espgw initiates with a PSK, IKE `aes256gcm16-prfsha256-x25519`, ESP
    /// `aes256gcm16`, one child over IPv4; a case changes what it tests.
    pub fn new(tag: &str) -> Setup<'_> {
        Setup {
            tag,
            ike: "aes256gcm16-prfsha256-x25519",
            esp: "aes256gcm16",
            espgw_initiates: true,
            edit: &no_edit,
            rekey_time: "4h",
            charon_extra: "",
            certs: None,
            second_child: false,
            ipv6: false,
            ipv6_wan: false,
        }
    }
}

/// Certificate authentication, from a test PKI made for the case (scripts/make-test-pki.sh):
/// which of its certificates each side uses, and identities.
#[derive(Clone, Copy)]
pub struct Certs<'a> {
    /// espgw's certificate (its chain and key), e.g. `gw1`; its ID is the subject's DN.
    pub espgw: &'a str,
    /// charon's certificate; charon also knows the intermediate CA, to send it.
    pub charon: &'a str,
    /// The ID charon uses, and the one espgw expects of its peer.
    pub charon_id: &'a str,
    pub espgw_expects: &'a str,
}

/// espgw's configuration with certificates from `pki` in place of the PSK.
pub fn use_certs(c: &mut serde_json::Value, pki: &Path, k: &Certs<'_>) {
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
pub fn charon_auth(certs: Option<&Certs<'_>>, pki: &Path, psk: &str) -> (String, String) {
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

pub fn lab(s: &Setup<'_>) -> Option<Lab> {
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
        ipv6,
        ipv6_wan,
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
    let (v6_local, v6_remote) = if ipv6 {
        with_ipv6(&mut c, &ns);
        (",2001:db8:2::/64", ",2001:db8:1::/64")
    } else {
        ("", "")
    };
    let (gw1_wan, gw2_wan) = if ipv6_wan {
        with_ipv6_wan(&mut c, &ns);
        (WAN6[0], WAN6[1])
    } else {
        ("192.0.2.1", "192.0.2.2")
    };
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
            "connections {{\n  gw1 {{\n    version = 2\n    encap = yes\n    local_addrs = {gw2_wan}\n    remote_addrs = {gw1_wan}\n    proposals = {ike}\n    rekey_time = {rekey_time}\n    {charon_ends}\n    children {{\n      net {{ local_ts = 10.2.0.0/24{v6_local}\n            remote_ts = 10.1.0.0/24{v6_remote}\n            esp_proposals = {esp}\n            start_action = none }}{net2}\n    }}\n  }}\n}}\n{charon_secrets}"
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

/// The index and SPIs of every IKE SA espgw has UP (`show security ike
/// security-associations`).
pub fn ike_up(lab: &Lab) -> Vec<String> {
    lab.cli(&["show", "security", "ike", "security-associations"])
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("UP"))
        .map(|l| l.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
        .collect()
}

/// A negotiation that must fail: espgw's configuration edited by `edit`, with `certs` or
/// the PSK. espgw counts the failure under `reason`, charon's log says `charon_says`, and no
/// SA is left on either side. Returns espgw's log.
pub fn failure(
    tag: &str,
    espgw_initiates: bool,
    edit: &dyn Fn(&mut serde_json::Value),
    certs: Option<Certs<'_>>,
    reason: &str,
    charon_says: &str,
) -> String {
    let Some(lab) = lab(&Setup {
        ike: "aes256gcm16-prfsha384-ecp384",
        espgw_initiates,
        edit,
        certs,
        ..Setup::new(tag)
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

/// IPv6 for `Setup::ipv6`: the hosts' addresses (no duplicate address detection, so that
/// they are usable at once) and routes, gw2's kernel (charon's) IPv6 on its LAN and
/// forwarding, and espgw's LAN address, route into st0.0 and the VPN's IPv6 selectors.
fn with_ipv6(c: &mut serde_json::Value, ns: &dyn Fn(&str) -> String) {
    for (h, addr, gw) in [
        ("a", "2001:db8:1::10/64", "2001:db8:1::1"),
        ("b", "2001:db8:2::10/64", "2001:db8:2::1"),
    ] {
        sh(
            &ns(h),
            &format!(
                "sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
                 net.ipv6.conf.eth0.accept_dad=0 net.ipv6.conf.eth0.disable_ipv6=0 && \
                 ip -6 addr add {addr} dev eth0 && ip -6 route add default via {gw}"
            ),
        );
    }
    sh(
        &ns("gw2"),
        "sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.lan.accept_dad=0 \
         net.ipv6.conf.lan.disable_ipv6=0 net.ipv6.conf.all.forwarding=1 && \
         ip -6 addr add 2001:db8:2::1/64 dev lan",
    );
    c["interfaces"][0]["address6"] = "2001:db8:1::1/64".into();
    c["routes"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"prefix": "2001:db8:2::/64", "via": "st0.0"}));
    c["ike"]["vpns"][0]["local_ts"] = serde_json::json!(["10.1.0.0/24", "2001:db8:1::/64"]);
    c["ike"]["vpns"][0]["remote_ts"] = serde_json::json!(["10.2.0.0/24", "2001:db8:2::/64"]);
}

/// The WAN link's IPv6 addresses for `Setup::ipv6_wan`: espgw's, charon's.
pub const WAN6: [&str; 2] = ["2001:db8:ffff::1", "2001:db8:ffff::2"];

/// IKE and ESP over IPv6 for `Setup::ipv6_wan`: gw2's kernel (charon's) WAN address, espgw's
/// WAN `address6`, and its tunnel and gateway between the two (charon's connection is
/// written with them by `lab`).
fn with_ipv6_wan(c: &mut serde_json::Value, ns: &dyn Fn(&str) -> String) {
    sh(
        &ns("gw2"),
        &format!(
            "sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.wan.accept_dad=0 \\
             net.ipv6.conf.wan.disable_ipv6=0 && ip -6 addr add {}/64 dev wan",
            WAN6[1]
        ),
    );
    c["interfaces"][1]["address6"] = format!("{}/64", WAN6[0]).into();
    c["tunnels"][0]["local"] = WAN6[0].into();
    c["tunnels"][0]["remote"] = WAN6[1].into();
    let g = &mut c["ike"]["gateways"][0];
    g["local_address"] = WAN6[0].into();
    g["remote_address"] = WAN6[1].into();
}
