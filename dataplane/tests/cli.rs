//! The binary refuses bad configuration before anything starts, naming the field.
// The gateway on DPDK: only in builds with it.
#![cfg(feature = "dpdk")]

mod common;
use std::process::Command;

#[test]
fn a_config_error_names_the_field_and_starts_nothing() {
    let dir = common::TempDir::new("cli");
    let cfg = dir.path("bad.json");
    std::fs::write(
        &cfg,
        r#"{"dataplane": {"workers": [1]},
            "interfaces": [{"name": "wan0", "port": 0, "address": "192.0.2.1/24"}],
            "tunnels": [{"name": "st0.0", "local": "192.0.2.1", "remote": "192.0.2.2"}],
            "manual_sas": [{"tunnel": "st0.0", "direction": "out", "spi": 4097,
                            "algorithm": "aes-256-gcm", "key": "00112233445566778899aabbccddeeff00112233"}]}"#,
    )
    .unwrap();
    let out = Command::new(common::dataplane_bin())
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("manual_sas[0].key: aes-256-gcm needs 36 bytes"),
        "{err}"
    );
    assert!(
        !err.contains("00112233445566"),
        "key material in the error: {err}"
    );
    assert!(
        !err.contains("EAL"),
        "EAL must not start on a bad config: {err}"
    );
}

#[test]
fn a_missing_file_is_reported() {
    let out = Command::new(common::dataplane_bin())
        .args(["--config", "/nonexistent/espgw.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/espgw.json"));
}

/// The binary starts once: no self re-exec before its arguments are read, so `--help` is
/// answered by the process that was started (its pid is the one that exits).
#[test]
fn help_is_answered_without_starting_again() {
    let out = Command::new(common::dataplane_bin())
        .arg("--help")
        .env("GLIBC_TUNABLES", "glibc.malloc.check=0")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("--config"), "{text}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("heap"));
}
