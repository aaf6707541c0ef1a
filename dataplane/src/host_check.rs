//! What the dataplane can check of its host at start, each reported in one line (what it
//! found, and what to do about it, docs/deployment.md): huge pages, the IOMMU that vfio-pci
//! needs, and workers polling a NIC on another NUMA socket.

use dpdk_sys::{Eal, Port};

/// Prints one `espgw: check:` line per finding.
pub fn report(eal: &Eal, eal_args: &[String], workers: &[u32], ports: &[Port]) {
    for line in findings(eal, eal_args, workers, ports) {
        eprintln!("espgw: check: {line}");
    }
}

fn findings(eal: &Eal, eal_args: &[String], workers: &[u32], ports: &[Port]) -> Vec<String> {
    let mut out = Vec::new();
    let has = |a: &str| eal_args.iter().any(|x| x == a);
    if has("--no-huge") {
        out.push(
            "no huge pages (--no-huge): the tables are on 4 KB pages, and thousands of tunnels \
             miss the TLB; reserve huge pages at boot (docs/deployment.md)"
                .into(),
        );
    } else if let Some((total, free, kb)) = hugepages() {
        out.push(format!("huge pages: {total} x {kb} kB, {free} free"));
    }
    if !has("--no-pci") {
        match std::fs::read_dir("/sys/kernel/iommu_groups").map(|d| d.count()) {
            Ok(n) if n > 0 => out.push(format!("IOMMU on ({n} groups): vfio-pci can be used")),
            _ => out.push(
                "no IOMMU groups: vfio-pci needs intel_iommu=on iommu=pt (or amd_iommu=on) on \
                 the kernel command line (docs/deployment.md)"
                    .into(),
            ),
        }
    }
    for p in ports {
        let ps = p.socket();
        if ps < 0 {
            continue;
        }
        for &w in workers {
            let ws = eal.lcore_socket(w);
            if ws >= 0 && ws != ps {
                out.push(format!(
                    "worker lcore {w} (socket {ws}) polls port {} (NIC on socket {ps}): every \
                     packet crosses the socket interconnect; give this NIC workers on socket {ps}",
                    p.id()
                ));
            }
        }
    }
    out
}

/// (total, free, page size in kB) of the default huge page size, from /proc/meminfo.
fn hugepages() -> Option<(u64, u64, u64)> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<u64> {
        info.lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some((
        field("HugePages_Total:")?,
        field("HugePages_Free:")?,
        field("Hugepagesize:")?,
    ))
}
