#![allow(dead_code)] // each test binary uses a part
//! What the tests of two real processes per gateway share: the processes, the topology of
//! scripts/topology.sh, and ping, the CLI and curl inside a gateway's namespace.

use super::host::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A process we started, stopped by PID when dropped.
pub struct Proc(pub Child);

impl Proc {
    pub fn stop(&mut self, sig: i32) {
        // SAFETY: kill on the PID of a child we spawned and have not yet reaped.
        unsafe { libc::kill(self.0.id() as i32, sig) };
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.stop(libc::SIGTERM);
        }
    }
}

pub struct Topology {
    pub name: String,
    pub dir: PathBuf,
}

impl Drop for Topology {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts/topology.sh"))
            .args(["down", &self.name])
            .status();
        if std::env::var_os("ESPGW_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub fn bin(name: &str) -> PathBuf {
    // Both binaries live in the same target directory; the dataplane's is built by
    // `cargo test --workspace` (or `cargo build -p dataplane`).
    let me = PathBuf::from(env!("CARGO_BIN_EXE_espgw-control"));
    let p = me.with_file_name(name);
    assert!(
        p.exists(),
        "{} is not built (cargo build -p dataplane)",
        p.display()
    );
    p
}

pub fn in_ns(ns: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]);
    c
}

pub fn spawn(ns: &str, exe: &Path, cfg: &Path, log: &Path) -> Proc {
    let log = std::fs::File::create(log).unwrap();
    Proc(
        in_ns(ns)
            .arg(exe)
            .arg("--config")
            .arg(cfg)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

pub fn ping(ns: &str, from: &str, to: &str, count: usize, interval: &str) -> (usize, usize) {
    let c = count.to_string();
    let out = in_ns(ns)
        .args([
            "ping", "-n", "-q", "-I", from, "-c", &c, "-i", interval, "-W", "2", to,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_default();
    let num = |word: &str| -> usize {
        line.split(',')
            .find(|p| p.contains(word))
            .and_then(|p| p.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (num("transmitted"), num("received"))
}

/// The CLI in a gateway's namespace; its stdout, or its error.
pub fn cli(ns: &str, token: &Path, args: &[&str]) -> Result<String, String> {
    let out = in_ns(ns)
        .arg(bin("espgw"))
        .arg("--token-file")
        .arg(token)
        .args(args)
        .output()
        .unwrap();
    let so = String::from_utf8_lossy(&out.stdout).into_owned();
    let se = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        Ok(so)
    } else {
        Err(se)
    }
}

/// curl in a gateway's namespace: (HTTP status, body).
pub fn http(ns: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut c = in_ns(ns);
    c.args(["curl", "-s", "-o", "-", "-w", "\n%{http_code}"]);
    if let Some(t) = token {
        c.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    let out = c
        .arg(format!("http://127.0.0.1:8443{path}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}
