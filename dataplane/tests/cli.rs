//! The binary refuses bad configuration before anything starts, naming the field.

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

/// The dataplane puts its heap on transparent huge pages where the kernel has them (it starts
/// itself again with glibc's tunable), and an operator's own `glibc.malloc.hugetlb` stands.
#[test]
fn the_heap_goes_on_huge_pages_unless_the_kernel_or_the_operator_says_no() {
    let thp =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    let stderr = |tunables: Option<&str>| {
        let mut c = Command::new(common::dataplane_bin());
        c.args(["--config", "/nonexistent/espgw.json"]);
        match tunables {
            Some(t) => c.env("GLIBC_TUNABLES", t),
            None => c.env_remove("GLIBC_TUNABLES"),
        };
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "exits as before, once");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = stderr(None);
    if thp.is_empty() || thp.contains("[never]") {
        assert!(err.contains("espgw-dataplane: heap on base pages"), "{err}");
    } else {
        assert!(
            err.contains(
                "espgw-dataplane: heap on transparent huge pages (glibc.malloc.hugetlb=1)"
            ),
            "{err}"
        );
    }
    assert_eq!(err.matches("heap on").count(), 1, "{err}");
    let err = stderr(Some("glibc.malloc.hugetlb=0"));
    assert!(
        err.contains("heap on base pages: GLIBC_TUNABLES sets glibc.malloc.hugetlb=0"),
        "{err}"
    );
}
