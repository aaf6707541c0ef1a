//! The IKE core against strongSwan: charon initiates to our responder (over kernel UDP
//! sockets, in a network namespace the test makes), and establishes the IKE SA and the child
//! SA: charon says so in its log, which it does only once our AUTH verified and our answer for
//! the child (proposal, SPI, traffic selectors) suited it.
//!
//! With `encap = yes` charon fakes its NAT detection hashes: our responder sees a NAT, answers
//! with its own hashes, and charon floats to UDP 4500 with the non-ESP marker, which the
//! responder loop here follows.

#[path = "../../dataplane/tests/common/host.rs"]
#[allow(dead_code)] // this test uses only the root check
mod host;
use control::ike::auth::Auth;
use control::ike::identity::Identity;
use control::ike::ike_auth::{self, AuthConfig};
use control::ike::init::{self, InitDone};
use control::ike::proposal::{parse_esp, parse_ike};
use control::ike::sk;
use control::ike::wire::{Exchange, Id, Message, TrafficSelector, TS_IPV4_ADDR_RANGE};
use host::*;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NS_ADDR_CHARON: &str = "10.98.0.1";
const NS_ADDR_OURS: &str = "10.98.0.2";
const PSK: &str = "interop-test-psk";

struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// charon and the shell that started it: charon by the PID the shell wrote (it is not our
/// child), then the shell.
struct Charon {
    shell: Child,
    pid_file: std::path::PathBuf,
}

impl Drop for Charon {
    fn drop(&mut self) {
        if let Some(pid) = std::fs::read_to_string(&self.pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            // SAFETY: kill on the PID of the charon this test started (from its pid file).
            unsafe { libc::kill(pid, libc::SIGTERM) };
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

fn sh(args: &[&str]) {
    let ok = Command::new(args[0]).args(&args[1..]).status().unwrap();
    assert!(ok.success(), "{args:?}");
}

/// Moves the calling thread into network namespace `name` (sockets it opens then live there).
fn enter_netns(name: &str) {
    let f = std::fs::File::open(format!("/var/run/netns/{name}")).unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: setns on a valid namespace fd, for this thread only (CLONE_NEWNET).
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "setns");
}

fn ts(a: [u8; 4], b: [u8; 4]) -> Vec<TrafficSelector> {
    vec![TrafficSelector {
        kind: TS_IPV4_ADDR_RANGE,
        protocol: 0,
        start_port: 0,
        end_port: 65535,
        start: a.to_vec(),
        end: b.to_vec(),
    }]
}

fn fqdn(s: &str) -> Id {
    Id {
        kind: 2,
        data: s.as_bytes().to_vec(),
    }
}

fn write_charon_config(dir: &Path, proposal: &str) {
    std::fs::write(
        dir.join("strongswan.conf"),
        format!(
            "charon {{\n  install_routes = no\n  port = 10500\n  port_nat_t = 14500\n  load_modular = yes\n  plugins {{\n    include /etc/strongswan.d/charon/*.conf\n    kernel-libipsec {{ load = yes }}\n  }}\n  filelog {{\n    log {{ path = {}/charon.log\n          flush_line = yes\n          default = 1\n          ike = 2\n          knl = 2 }}\n  }}\n}}\n",
            dir.display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("swanctl.conf"),
        format!(
            "connections {{\n  t {{\n    version = 2\n    encap = yes\n    local_addrs = {NS_ADDR_CHARON}\n    remote_addrs = {NS_ADDR_OURS}\n    proposals = {proposal}\n    local {{ auth = psk\n            id = gw1.example }}\n    remote {{ auth = psk\n             id = gw2.example }}\n    children {{\n      net {{ local_ts = 10.1.0.0/16\n            remote_ts = 10.2.0.0/16\n            esp_proposals = aes256gcm16\n            start_action = none }}\n    }}\n  }}\n}}\nsecrets {{ ike-1 {{ id-1 = gw1.example\n                  id-2 = gw2.example\n                  secret = \"{PSK}\" }} }}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("charon.sh"),
        format!(
            "#!/bin/sh\nmount -t tmpfs tmpfs /run\nexport STRONGSWAN_CONF={d}/strongswan.conf\n/usr/lib/ipsec/charon &\necho $! > {d}/charon.pid\nfor i in $(seq 100); do [ -S /run/charon.vici ] && break; sleep 0.1; done\nswanctl --load-all --file {d}/swanctl.conf > {d}/swanctl.log 2>&1\necho loaded > {d}/ready\nsleep 1\nswanctl --initiate --child net --timeout 10 >> {d}/swanctl.log 2>&1\necho done >> {d}/ready\nwait\n",
            d = dir.display()
        ),
    )
    .unwrap();
}

/// Answers charon as the responder until the child SA is up (or the deadline passes).
fn respond_loop(ns: &str, proposal: &str, deadline: Instant) -> Result<(u32, u32), String> {
    enter_netns(ns);
    let s500 = UdpSocket::bind((NS_ADDR_OURS, 500)).map_err(|e| e.to_string())?;
    let s4500 = UdpSocket::bind((NS_ADDR_OURS, 4500)).map_err(|e| e.to_string())?;
    for s in [&s500, &s4500] {
        s.set_nonblocking(true).map_err(|e| e.to_string())?;
    }
    let rng = ring::rand::SystemRandom::new();
    let ike = [parse_ike(proposal).map_err(|e| e.to_string())?];
    let esp = [parse_esp("aes256gcm16").map_err(|e| e.to_string())?];
    let psk = Auth::Psk(zeroize::Zeroizing::new(PSK.as_bytes().to_vec()));
    let cfg = AuthConfig {
        auth: &psk,
        local_id: fqdn("gw2.example"),
        remote_id: Identity::Fqdn("gw1.example".into()),
        esp: &esp,
        local_ts: ts([10, 2, 0, 0], [10, 2, 255, 255]),
        remote_ts: ts([10, 1, 0, 0], [10, 1, 255, 255]),
        initial_contact: false,
    };
    let mut done: Option<InitDone> = None;
    let mut buf = vec![0u8; 65536];
    while Instant::now() < deadline {
        for (s, natt) in [(&s500, false), (&s4500, true)] {
            let Ok((n, from)) = s.recv_from(&mut buf) else {
                continue;
            };
            let msg = if natt {
                // The non-ESP marker before IKE on 4500.
                match buf[..n].strip_prefix(&[0, 0, 0, 0][..]) {
                    Some(m) => m,
                    None => continue,
                }
            } else {
                &buf[..n]
            };
            let Ok(m) = Message::parse(msg) else {
                // SK messages parse too; anything else is not for us.
                continue;
            };
            let reply = match m.header.exchange {
                Exchange::IkeSaInit => {
                    let addrs = s.local_addr().ok().map(|local| init::Addrs {
                        local,
                        remote: from,
                    });
                    let d = init::respond(&ike, msg, addrs, &Default::default(), &rng)
                        .map_err(|e| e.to_string())?;
                    assert!(
                        d.nat,
                        "charon's encap = yes fakes a NAT, and we must see one"
                    );
                    let r = d.response.clone();
                    done = Some(d);
                    r
                }
                Exchange::IkeAuth => {
                    let d = done.as_ref().ok_or("IKE_AUTH before IKE_SA_INIT")?;
                    let keys = d.keys.sk(true).map_err(|e| e.to_string())?;
                    let m = sk::open(msg, &keys).map_err(|e| e.to_string())?;
                    let a =
                        ike_auth::respond(d, &cfg, &m, 0xc0de_0002).map_err(|e| e.to_string())?;
                    let (r, child) = (
                        a.response,
                        a.child.map_err(|n| format!("child refused: {n}"))?,
                    );
                    let out = if natt {
                        [&[0u8, 0, 0, 0][..], &r].concat()
                    } else {
                        r
                    };
                    s.send_to(&out, from).map_err(|e| e.to_string())?;
                    return Ok((child.inbound_spi, child.outbound_spi));
                }
                _ => continue,
            };
            let out = if natt {
                [&[0u8, 0, 0, 0][..], &reply].concat()
            } else {
                reply
            };
            s.send_to(&out, from).map_err(|e| e.to_string())?;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Err("charon never completed IKE_AUTH".into())
}

#[test]
fn strongswan_establishes_an_ike_sa_and_a_child_sa_with_our_responder() {
    interop("aes256gcm16-prfsha256-x25519", "g");
}

#[test]
fn the_same_with_aes_cbc_and_hmac_for_the_ike_sa() {
    interop("aes256-sha256-ecp256", "c");
}

#[test]
fn the_same_with_modp2048_and_prfsha384() {
    interop("aes128gcm16-prfsha384-modp2048", "m");
}

/// A namespace with charon's and our addresses on a veth pair; its directory.
fn lab(tag: &str) -> Option<(Netns, String, std::path::PathBuf)> {
    if !require_root("strongSwan interop") {
        return None;
    }
    assert!(
        Path::new("/usr/lib/ipsec/charon").exists(),
        "strongSwan's charon is not installed (scripts/setup.sh)"
    );
    let name = format!("espgw-ike{tag}{}", std::process::id() % 100_000);
    let dir = std::env::temp_dir().join(&name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ns = Netns(name.clone());
    sh(&["ip", "netns", "add", &name]);
    let nsx = |args: &[&str]| {
        let mut a = vec!["ip", "netns", "exec", name.as_str()];
        a.extend_from_slice(args);
        sh(&a);
    };
    nsx(&["ip", "link", "set", "lo", "up"]);
    nsx(&[
        "ip", "link", "add", "c0", "type", "veth", "peer", "name", "e0",
    ]);
    nsx(&[
        "ip",
        "addr",
        "add",
        &format!("{NS_ADDR_CHARON}/24"),
        "dev",
        "c0",
    ]);
    nsx(&[
        "ip",
        "addr",
        "add",
        &format!("{NS_ADDR_OURS}/24"),
        "dev",
        "e0",
    ]);
    // charon's protected network: the source of the route it installs into its tunnel.
    nsx(&["ip", "addr", "add", "10.1.0.1/32", "dev", "lo"]);
    nsx(&["ip", "link", "set", "c0", "up"]);
    nsx(&["ip", "link", "set", "e0", "up"]);
    Some((ns, name, dir))
}

fn start_charon(name: &str, dir: &Path) -> Charon {
    Charon {
        shell: Command::new("ip")
            .args(["netns", "exec", name, "unshare", "-m", "sh"])
            .arg(dir.join("charon.sh"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        pid_file: dir.join("charon.pid"),
    }
}

/// charon initiates with IKE `proposal` (ESP aes256gcm16) to our responder.
fn interop(proposal: &str, tag: &str) {
    let Some((ns, name, dir)) = lab(tag) else {
        return;
    };
    write_charon_config(&dir, proposal);

    let deadline = Instant::now() + Duration::from_secs(30);
    let responder = {
        let name = name.clone();
        let proposal = proposal.to_string();
        std::thread::spawn(move || respond_loop(&name, &proposal, deadline))
    };
    let charon = start_charon(&name, &dir);
    let spis = responder.join().unwrap();
    // charon logs what it established once it processed our IKE_AUTH response.
    let log = dir.join("charon.log");
    let until = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let t = std::fs::read_to_string(&log).unwrap_or_default();
        if t.contains("CHILD_SA net{1} established") || Instant::now() > until {
            break t;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (inbound, outbound) = spis.unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(
        text.contains("authentication of 'gw2.example' with pre-shared key successful"),
        "{text}"
    );
    assert!(text.contains("IKE_SA t[1] established"), "{text}");
    assert!(
        text.contains("received packet: from 10.98.0.2[4500]"),
        "IKE floated: {text}"
    );
    assert!(
        text.contains("selected proposal: ESP:AES_GCM_16_256/NO_EXT_SEQ"),
        "{text}"
    );
    // charon's view of the SPIs: ours is its outbound one, and the other way around.
    assert_eq!(inbound, 0xc0de_0002);
    let established = format!(
        "CHILD_SA net{{1}} established with SPIs {outbound:08x}_i {inbound:08x}_o and TS 10.1.0.0/16 === 10.2.0.0/16"
    );
    assert!(text.contains(&established), "{text}");
    drop(charon);
    drop(ns);
    if std::env::var_os("ESPGW_KEEP_TEST_DIRS").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// espgw-control itself as the responder, with no dataplane: IKE over the kernel's UDP
/// sockets (`control.ike_transport: "kernel"`); charon establishes the IKE SA and the child,
/// and the CLI shows the IKE SA up.
#[test]
fn strongswan_establishes_with_espgw_control_over_kernel_sockets() {
    let Some((_ns, name, dir)) = lab("k") else {
        return;
    };
    write_charon_config(&dir, "aes256gcm16-prfsha256-x25519");
    std::fs::write(
        dir.join("token"),
        "kernel-transport-test-token-0123456789\n",
    )
    .unwrap();
    std::fs::write(dir.join("psk"), format!("{PSK}\n")).unwrap();
    for f in ["token", "psk"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let d = dir.display();
    let cfg = serde_json::json!({
        "dataplane": {"eal": [], "workers": [1], "channel": format!("/dev/shm/{name}")},
        "interfaces": [{"name": "e0", "port": 0, "address": format!("{NS_ADDR_OURS}/24")}],
        "tunnels": [{"name": "st0.0", "local": NS_ADDR_OURS, "remote": NS_ADDR_CHARON}],
        "routes": [{"prefix": "10.1.0.0/16", "via": "st0.0"}],
        "ike": {
            "gateways": [{"name": "charon", "local_address": NS_ADDR_OURS, "remote_address": NS_ADDR_CHARON,
                          "port": 10500, "local_id": "gw2.example", "remote_id": "gw1.example",
                          "psk_file": format!("{d}/psk"), "proposals": ["aes256gcm16-prfsha256-x25519"]}],
            "vpns": [{"name": "net", "gateway": "charon", "bind_interface": "st0.0",
                      "esp_proposals": ["aes256gcm16"], "local_ts": ["10.2.0.0/16"], "remote_ts": ["10.1.0.0/16"],
                      "establish": "responder-only"}],
        },
        "control": {"token_file": format!("{d}/token"), "state_dir": format!("{d}/state"),
                    "ike_transport": "kernel"},
    });
    std::fs::write(dir.join("espgw.json"), cfg.to_string()).unwrap();
    let log = std::fs::File::create(dir.join("control.log")).unwrap();
    let mut control = Command::new("ip")
        .args(["netns", "exec", &name])
        .arg(env!("CARGO_BIN_EXE_espgw-control"))
        .arg("--config")
        .arg(dir.join("espgw.json"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let charon = start_charon(&name, &dir);
    let charon_log = dir.join("charon.log");
    let until = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let t = std::fs::read_to_string(&charon_log).unwrap_or_default();
        if t.contains("CHILD_SA net{1} established") || Instant::now() > until {
            break t;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let show = Command::new("ip")
        .args(["netns", "exec", &name])
        .arg(env!("CARGO_BIN_EXE_espgw"))
        .arg("--token-file")
        .arg(dir.join("token"))
        .args(["show", "security", "ike", "security-associations"])
        .output()
        .unwrap();
    let show = String::from_utf8_lossy(&show.stdout).into_owned();
    // SAFETY: kill on the PID of a child we spawned and have not yet reaped.
    unsafe { libc::kill(control.id() as i32, libc::SIGTERM) };
    let _ = control.wait();
    drop(charon);
    let ours = std::fs::read_to_string(dir.join("control.log")).unwrap_or_default();
    assert!(
        text.contains("CHILD_SA net{1} established"),
        "{text}\n{ours}"
    );
    assert!(
        show.contains("UP") && show.contains("10.98.0.1:14500"),
        "{show}\n{ours}"
    );
    if std::env::var_os("ESPGW_KEEP_TEST_DIRS").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
