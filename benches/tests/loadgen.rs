//! espgw-loadgen against a real espgw-dataplane over net_memif: a short run at a low fixed
//! rate through 4 tunnels, in both directions. Nothing may be lost, every decrypted sample
//! must authenticate, the latency must be sane, the JSON report must be written, and the
//! gateway's own counters must agree. Needs root (EAL); under CI=true it fails without it.

#[path = "../../dataplane/tests/common/host.rs"]
mod host;
use host::{repo_root, require_root, wait_for};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TUNNELS: usize = 4;
const RATE: u64 = 20_000;
const SECONDS: u64 = 2;

fn loadgen_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_espgw-loadgen"))
}

/// The gateway binary of the same build profile, beside the load generator. `cargo test
/// --workspace` builds it (the dataplane's tests need it); a test run of this package alone
/// builds it here.
fn gateway_bin() -> PathBuf {
    let lg = loadgen_bin();
    let gw = lg.with_file_name("espgw-dataplane");
    if !gw.exists() {
        let mut c = Command::new(option_env!("CARGO").unwrap_or("cargo"));
        c.args(["build", "-p", "dataplane", "--bin", "espgw-dataplane"]);
        if lg.components().any(|c| c.as_os_str() == "release") {
            c.arg("--release");
        }
        let ok = c
            .current_dir(repo_root())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok && gw.exists(), "could not build {}", gw.display());
    }
    gw
}

/// A scratch directory (mode 0700: it holds keys), removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        use std::os::unix::fs::PermissionsExt;
        let p = std::env::temp_dir().join(format!("espgw-lgtest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
        TempDir(p)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("ESPGW_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A process we started: stopped by PID (SIGTERM, then SIGKILL after 10 s) when dropped.
struct Proc {
    child: Child,
    /// The DPDK runtime directory it leaves behind, removed after it exits.
    runtime_dir: Option<PathBuf>,
}

impl Proc {
    /// Waits for the process to exit by itself, at most `limit`; kills it after that.
    fn wait_for_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    fn stop(&mut self) -> Option<std::process::ExitStatus> {
        if let Ok(Some(st)) = self.child.try_wait() {
            return Some(st);
        }
        // SAFETY: kill on the PID of a child we spawned and have not yet reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let st = self.wait_for_exit(Duration::from_secs(10));
        if st.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        st
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
        if let Some(d) = &self.runtime_dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn num(v: &serde_json::Value, path: &str) -> f64 {
    let mut x = v;
    for k in path.split('.') {
        x = &x[k];
    }
    x.as_f64().unwrap_or_else(|| panic!("no number at {path}"))
}

/// One load generator run; returns its JSON report.
fn loadgen(dir: &TempDir, direction: &str) -> serde_json::Value {
    let report = dir.path(&format!("{direction}.json"));
    let out = std::fs::File::create(dir.path(&format!("{direction}.log"))).unwrap();
    let child = Command::new(loadgen_bin())
        .arg("--gw-config")
        .arg(dir.path("gw.json"))
        .args(["--direction", direction, "--tunnels", &TUNNELS.to_string()])
        .args([
            "--rate",
            &RATE.to_string(),
            "--duration",
            &SECONDS.to_string(),
        ])
        .args(["--sample-every", "4", "--grace-ms", "2000", "--json"])
        .arg(&report)
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let mut p = Proc {
        child,
        runtime_dir: None,
    };
    let st = p.wait_for_exit(Duration::from_secs(60));
    let log = std::fs::read_to_string(dir.path(&format!("{direction}.log"))).unwrap_or_default();
    assert!(
        st.is_some_and(|s| s.success()),
        "loadgen {direction}: {st:?}\n{log}"
    );
    eprintln!("{log}");
    json(&report)
}

fn check_report(r: &serde_json::Value, direction: &str) {
    let sent = num(r, "offered.packets");
    let want = (RATE * SECONDS) as f64;
    assert!(
        sent >= 0.95 * want && sent <= want,
        "{direction}: sent {sent}, expected about {want}"
    );
    assert_eq!(num(r, "received.packets"), sent, "{direction}: loss");
    assert_eq!(num(r, "loss_packets"), 0.0, "{direction}");
    assert_eq!(num(r, "rx.not_ours"), 0.0, "{direction}");
    let mpps = num(r, "received.mpps");
    assert!((0.015..=0.025).contains(&mpps), "{direction}: {mpps} Mpps");
    let samples = num(r, "latency.samples");
    let (p50, p99, p999, max) = (
        num(r, "latency.p50_ns"),
        num(r, "latency.p99_ns"),
        num(r, "latency.p999_ns"),
        num(r, "latency.max_ns"),
    );
    assert!(
        p50 > 0.0 && p50 <= p99 && p99 <= p999 && p999 <= max && max < 1e9,
        "{direction}: latency {p50} {p99} {p999} {max}"
    );
    assert_eq!(num(r, "latency_invalid"), 0.0, "{direction}");
    assert_eq!(num(r, "rx.bad_stamps"), 0.0, "{direction}");
    if direction == "encrypt" {
        // One in four decrypted: every one must authenticate and carry a stamp.
        assert_eq!(num(r, "rx.samples_failed"), 0.0);
        assert_eq!(num(r, "rx.samples_ok"), samples);
        assert!(samples >= sent / 4.0 - 1.0, "{samples} samples of {sent}");
    } else {
        assert_eq!(samples, sent, "every cleartext packet gives a sample");
    }
}

#[test]
fn loadgen_through_a_memif_gateway_both_directions() {
    if !require_root("loadgen through a memif gateway") {
        return;
    }
    let dir = TempDir::new();
    let script = repo_root().join("scripts/loadgen.sh");
    let st = Command::new(&script)
        .arg("config")
        .arg(&dir.0)
        .arg(TUNNELS.to_string())
        .status()
        .unwrap();
    assert!(st.success(), "loadgen.sh config failed");

    let log = std::fs::File::create(dir.path("gw.log")).unwrap();
    let gw_stats = dir.path("gw.stats.json");
    let child = Command::new(gateway_bin())
        .arg("--config")
        .arg(dir.path("gw.json"))
        .arg("--stats-file")
        .arg(&gw_stats)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let base = dir
        .0
        .file_name()
        .unwrap()
        .to_string_lossy()
        .replace('.', "-");
    let mut gw = Proc {
        child,
        runtime_dir: Some(PathBuf::from(format!("/var/run/dpdk/espgw-lg-{base}"))),
    };
    wait_for(&dir.path("gw.log"), "forwarding on", "the gateway");

    let enc = loadgen(&dir, "encrypt");
    check_report(&enc, "encrypt");
    let dec = loadgen(&dir, "decrypt");
    check_report(&dec, "decrypt");

    let st = gw.stop();
    assert!(st.is_some_and(|s| s.success()), "gateway: {st:?}");
    let s = json(&gw_stats);
    assert_eq!(
        num(&s, "global.encrypted_packets"),
        num(&enc, "offered.packets")
    );
    assert_eq!(
        num(&s, "global.decrypted_packets"),
        num(&dec, "offered.packets")
    );
    // Every tunnel carried traffic both ways.
    let sas = s["sas"].as_array().unwrap();
    assert_eq!(sas.len(), 2 * TUNNELS);
    for sa in sas {
        assert!(num(sa, "packets") > 0.0, "idle SA: {sa}");
    }
}
