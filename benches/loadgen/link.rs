//! The load generator's DPDK side: EAL arguments, the two net_memif client ports (port 0
//! faces the gateway's LAN, port 1 its WAN), and waiting for both links to come up.

use crate::gwconfig::Side;
use dpdk_sys::{Mempool, Port, PortConfig};
use std::time::{Duration, Instant};

pub const LAN_PORT: u16 = 0;
pub const WAN_PORT: u16 = 1;

/// The file prefix the default EAL arguments use.
pub fn default_prefix() -> String {
    format!("espgw-loadgen-{}", std::process::id())
}

/// EAL arguments: `user`'s if given, else one lcore on CPU 0 with hugepages if enough are free
/// (else plain memory); then the two memif vdevs with rings of 2^`ring_log2` slots (the client
/// sets the ring size of both directions).
pub fn eal_args(user: &[String], lan: &Side, wan: &Side, ring_log2: u8) -> Vec<String> {
    let mut a: Vec<String> = if user.is_empty() {
        let mut d = [
            "--lcores",
            "0@0",
            "--no-pci",
            "--no-telemetry",
            "--file-prefix",
        ]
        .map(String::from)
        .to_vec();
        d.push(default_prefix());
        if free_hugepages() >= 64 {
            d.push("--in-memory".into());
        } else {
            d.extend(["--no-huge", "-m", "512"].map(String::from));
        }
        d
    } else {
        user.to_vec()
    };
    for (port, side) in [(LAN_PORT, lan), (WAN_PORT, wan)] {
        let l = &side.link;
        let mut v = format!(
            "net_memif{port},role=client,socket={},id={},mac={},rsize={ring_log2}",
            l.socket, l.id, side.my_mac
        );
        if let Some(s) = &l.socket_abstract {
            v.push_str(&format!(",socket-abstract={s}"));
        }
        a.push("--vdev".into());
        a.push(v);
    }
    a
}

/// The EAL's runtime directory for our default file prefix: the EAL leaves it behind even with
/// `--in-memory`, so it is removed when this is dropped (after the EAL).
pub struct RuntimeDir(pub String);

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_hugepages() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("HugePages_Free:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Configures and starts both ports (one queue each) and waits until their links are up.
pub fn start_ports(pool: &Mempool, timeout: Duration) -> Result<Vec<Port>, String> {
    let n = dpdk_sys::port_count();
    if n != 2 {
        return Err(format!(
            "expected the 2 memif ports, EAL has {n}: pass no --vdev in the EAL arguments"
        ));
    }
    let deadline = Instant::now() + timeout;
    let mut ports = Vec::new();
    for id in [LAN_PORT, WAN_PORT] {
        let mut p = Port::configure(id, &PortConfig::default(), pool).map_err(|e| e.to_string())?;
        // A memif client's start connects to the server's socket. Right after a previous client
        // left, the server may refuse for a moment: retry until the deadline.
        while let Err(e) = p.start() {
            if Instant::now() >= deadline {
                return Err(format!(
                    "port {id} ({}): {e}: no memif server to connect to; is the gateway running?",
                    p.name()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        ports.push(p);
    }
    while !ports.iter().all(Port::link_up) {
        if Instant::now() >= deadline {
            let down: Vec<String> = ports
                .iter()
                .filter(|p| !p.link_up())
                .map(Port::name)
                .collect();
            return Err(format!(
                "memif link(s) {} not up after {timeout:?}: is the gateway running (role=server on the same socket and id)?",
                down.join(", ")
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(ports)
}
