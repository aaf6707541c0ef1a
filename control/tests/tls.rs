//! The REST port over TLS (rustls): the CLI reaches it with the CA that signed its
//! certificate, and not without; plain HTTP gets nothing; a private key others can read is
//! refused at start. No dataplane and no root needed: the control serves without one.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A process we started, stopped by PID when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        // SAFETY: kill on the PID of a child we spawned and have not yet reaped.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

fn bin(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_espgw-control")).with_file_name(name)
}

fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn config(dir: &Path, port: u16) -> PathBuf {
    let cfg = serde_json::json!({
        "dataplane": {"workers": [1], "channel": format!("/dev/shm/espgw-tls-test-{}", std::process::id())},
        "interfaces": [{"name": "wan0", "port": 0, "address": "192.0.2.1/24"}],
        "control": {
            "listen": format!("127.0.0.1:{port}"),
            "token_file": dir.join("token"),
            "state_dir": dir.join("state"),
            "tls": {"cert_file": dir.join("cert.pem"), "key_file": dir.join("key.pem")},
        },
    });
    let p = dir.join("gw.json");
    std::fs::write(&p, cfg.to_string()).unwrap();
    chmod(&p, 0o600);
    p
}

fn cli(url: &str, dir: &Path, ca: bool) -> std::process::Output {
    let mut c = Command::new(bin("espgw"));
    c.args(["--url", url, "--token-file"])
        .arg(dir.join("token"));
    if ca {
        c.arg("--ca-file").arg(dir.join("ca.pem"));
    }
    c.args(["show", "status"]).output().unwrap()
}

#[test]
fn the_rest_port_over_tls() {
    let dir = Dir(std::env::temp_dir().join(format!("espgw-tls-{}", std::process::id())));
    let d = &dir.0;
    std::fs::create_dir_all(d).unwrap();
    // A CA, and the control's certificate signed by it (for 127.0.0.1).
    let openssl = |args: &[&str]| {
        let ok = Command::new("openssl")
            .args(args)
            .current_dir(d)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "openssl {args:?}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "1",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-subj",
                "/CN=espgw test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req", "-x509", "-CA", "ca.pem", "-CAkey", "ca.key"][..],
            &ec,
            &[
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ],
            &[
                "-addext",
                "basicConstraints=critical,CA:FALSE",
                "-keyout",
                "key.pem",
                "-out",
                "cert.pem",
            ],
        ]
        .concat(),
    );
    std::fs::write(d.join("token"), "0123456789abcdef0123456789abcdef\n").unwrap();
    chmod(&d.join("token"), 0o600);
    let port = 20000 + (std::process::id() % 20000) as u16;
    let cfg = config(d, port);

    // A key others can read: refused, with the reason.
    chmod(&d.join("key.pem"), 0o644);
    let out = Command::new(bin("espgw-control"))
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("control.tls.key_file") && err.contains("chmod 600"),
        "{err}"
    );
    chmod(&d.join("key.pem"), 0o600);

    let log = d.join("ctl.log");
    let _ctl = Proc(
        Command::new(bin("espgw-control"))
            .arg("--config")
            .arg(&cfg)
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let url = format!("https://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut out = cli(&url, d, true);
    while !out.status.success() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        out = cli(&url, d, true);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Dataplane: not attached"), "{text}");
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .contains("REST on https://"));
    // Without the CA the certificate is not trusted; plain HTTP is not answered.
    assert!(!cli(&url, d, false).status.success());
    assert!(!cli(&format!("http://127.0.0.1:{port}"), d, false)
        .status
        .success());
}
