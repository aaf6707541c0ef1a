//! Shared helpers for the integration tests: root/CI gating, pcap files, paths.
#![allow(dead_code)]

mod host;
#[allow(unused_imports)] // not every test binary uses every helper
pub use host::*;

use std::path::{Path, PathBuf};

/// As `require_root`, for another thing a test needs (`have`: whether it is there): skipped
/// with a message when missing, except under CI (`CI=true`), where the test fails instead.
pub fn require(test: &str, what: &str, have: bool) -> bool {
    if have {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test} needs {what}, and CI=true: refusing to skip");
    }
    eprintln!("SKIPPED {test}: needs {what}");
    false
}

pub fn dataplane_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_espgw-dataplane"))
}

/// A scratch directory removed on drop (mode 0700: it holds keys).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("espgw-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
        TempDir(p)
    }
    pub fn path(&self, name: &str) -> PathBuf {
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

/// Writes Ethernet frames as a classic pcap file.
pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
    for (i, f) in frames.iter().enumerate() {
        out.extend_from_slice(&(i as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    std::fs::write(path, out).unwrap();
}

/// Reads the frames of a little-endian pcap file (micro- or nanosecond timestamps; DPDK's
/// net_pcap writes the latter).
pub fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let b = std::fs::read(path).unwrap();
    let magic = b
        .get(..4)
        .map(|m| u32::from_le_bytes([m[0], m[1], m[2], m[3]]));
    assert!(
        b.len() >= 24 && matches!(magic, Some(0xa1b2c3d4 | 0xa1b23c4d)),
        "not a pcap: {}",
        path.display()
    );
    let mut frames = Vec::new();
    let mut at = 24;
    while at + 16 <= b.len() {
        let caplen = u32::from_le_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
        frames.push(b[at + 16..at + 16 + caplen].to_vec());
        at += 16 + caplen;
    }
    frames
}

/// Runs a command, panicking with its output if it fails.
pub fn sh(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The stats file a dataplane wrote at exit.
pub fn read_stats(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

pub fn counter(stats: &serde_json::Value, name: &str) -> u64 {
    stats["global"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name}"))
}

/// The namespaces of a `scripts/topology.sh up NAME`, taken down when dropped.
pub struct Topology(pub String);

impl Drop for Topology {
    fn drop(&mut self) {
        let _ = std::process::Command::new(repo_root().join("scripts/topology.sh"))
            .args(["down", &self.0])
            .status();
    }
}

/// A process we started, stopped by PID (SIGTERM, then waited for) when dropped.
pub struct Proc(pub std::process::Child);

impl Proc {
    pub fn stop(&mut self) {
        // SAFETY: kill on the PID of a child we spawned and have not yet reaped.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.stop();
        }
    }
}

/// `ip netns exec NS ARGS...`, to be run.
pub fn in_ns(ns: &str, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new("ip");
    c.args(["netns", "exec", ns]).args(args);
    c
}

/// IPv6 for the hosts of topology.sh's namespaces `{name}-a` and `{name}-b` (which it keeps to
/// IPv4): 2001:db8:1::10/64 and 2001:db8:2::10/64, routed through their gateways' ::1, without
/// duplicate address detection so that the addresses are usable at once.
pub fn ipv6_hosts(name: &str) {
    for (h, addr, gw) in [
        ("a", "2001:db8:1::10/64", "2001:db8:1::1"),
        ("b", "2001:db8:2::10/64", "2001:db8:2::1"),
    ] {
        let ns = format!("{name}-{h}");
        for conf in ["all", "default", "eth0"] {
            let s = format!("net.ipv6.conf.{conf}.accept_dad=0");
            sh(&mut in_ns(&ns, &["sysctl", "-qw", &s]));
        }
        sh(&mut in_ns(
            &ns,
            &["sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=0"],
        ));
        sh(&mut in_ns(
            &ns,
            &["ip", "-6", "addr", "add", addr, "dev", "eth0"],
        ));
        sh(&mut in_ns(
            &ns,
            &["ip", "-6", "route", "add", "default", "via", gw],
        ));
    }
}
