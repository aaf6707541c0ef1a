//! scapy's side of the test (scapy_esp.py): it encrypts what each peer sends us, and decrypts
//! what we sent, checking the ICV and, for ESP in UDP, the UDP header around it.

use super::packets::{hop, padding};
use super::{is_v6, sh, PerTunnel, TempDir, TUNNELS};
use std::process::Command;

const SCRIPT: &str = include_str!("scapy_esp.py");

/// The interpreter that has scapy (and the `cryptography` it encrypts with): Debian's
/// python3-scapy is the system interpreter's, which a python3 first in PATH (pyenv, a venv)
/// may not see.
pub fn scapy_python() -> Option<&'static str> {
    ["/usr/bin/python3", "python3"].into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import scapy.layers.ipsec, cryptography"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Runs scapy_esp.py in `mode` ("encrypt" or "decrypt") on `job`; its output.
pub fn scapy(dir: &TempDir, python: &str, mode: &str, job: serde_json::Value) -> String {
    let script = dir.path("esp.py");
    std::fs::write(&script, SCRIPT).unwrap();
    let file = dir.path(&format!("scapy-{mode}.json"));
    std::fs::write(&file, job.to_string()).unwrap();
    sh(Command::new(python).arg(&script).arg(mode).arg(&file))
}

/// The SAs as scapy needs them: the peer's outbound ones (our `inbound`), or ours to open.
pub fn scapy_sas(inbound: bool) -> Vec<serde_json::Value> {
    TUNNELS
        .iter()
        .map(|t| {
            let (spi, key, src, dst) = if inbound {
                (t.in_spi, t.in_key, t.remote, t.local)
            } else {
                (t.out_spi, t.out_key, t.local, t.remote)
            };
            let mac = dataplane::wire::ethernet::Mac(t.peer).to_string();
            serde_json::json!({"spi": spi, "key": key, "src": src, "dst": dst, "udp": t.udp,
                               "mac": mac})
        })
        .collect()
}

/// scapy decrypts the frames the gateway sent (checking the ICV) and finds what tshark found;
/// around ESP in UDP, RFC 3948's header: ports 4500, the length, and a checksum of 0 over
/// IPv4, a right one over IPv6.
pub fn scapy_decrypts(
    dir: &TempDir,
    python: &str,
    wan_out: &std::path::Path,
    frames: usize,
    sent: &PerTunnel,
) {
    let out = scapy(
        dir,
        python,
        "decrypt",
        serde_json::json!({"sas": scapy_sas(false), "pcap": wan_out}),
    );
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), frames, "{out}");
    for (ti, t) in TUNNELS.iter().enumerate() {
        let got: Vec<_> = rows.iter().filter(|r| r["spi"] == t.out_spi).collect();
        assert_eq!(got.len(), sent[ti].len(), "{} in scapy: {out}", t.name);
        for (i, (r, p)) in got.iter().zip(&sent[ti]).enumerate() {
            let nh = if p[0] >> 4 == 6 { 41 } else { 4 };
            let pad = padding(p.len());
            assert_eq!(
                (r["seq"].as_u64(), r["nh"].as_u64(), r["pad"].as_str()),
                (
                    Some(i as u64 + 1),
                    Some(nh),
                    Some(hex::encode(&pad).as_str())
                ),
                "{} outbound packet {i} in scapy: sequence, next header, padding",
                t.name
            );
            let udp = &r["udp"];
            if t.udp {
                let len = 8 + 8 + 8 + p.len() + pad.len() + 2 + 16;
                let what = format!("{} outbound packet {i} in scapy: {udp}", t.name);
                assert_eq!(
                    (&udp["sport"], &udp["dport"], &udp["len"]),
                    (&4500.into(), &4500.into(), &len.into()),
                    "{what}: ports and length"
                );
                if is_v6(t) {
                    // The ones' complement sum over pseudo header and datagram: 0 when right.
                    assert_ne!(udp["chksum"], 0, "{what}: IPv6 forbids a zero UDP checksum");
                    assert_eq!(udp["sum"], 0, "{what}: the UDP checksum");
                } else {
                    assert_eq!(udp["chksum"], 0, "{what}: RFC 3948's zero checksum");
                }
            } else {
                assert!(udp.is_null(), "{} outbound packet {i}: raw ESP", t.name);
            }
            assert_eq!(
                r["inner"],
                hex::encode(hop(p)),
                "{} outbound packet {i} in scapy",
                t.name
            );
        }
    }
}
