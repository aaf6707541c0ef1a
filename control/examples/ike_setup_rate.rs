//! IKE tunnel setup rate (a benchmark, not a test): an espgw initiator and an espgw responder
//! over kernel UDP sockets on loopback (127.0.0.1 and 127.0.0.2), each IKE manager on a thread
//! of its own pinned to its own CPU, N VPNs between them, all started at once: the time until
//! every IKE SA is up with its child (IKE_SA_INIT + IKE_AUTH), the rate, and the memory the
//! process grew by per IKE SA (with its child, both sides counted).
//!
//!   cargo run --release -p control --example ike_setup_rate -- --tunnels 1000 \
//!       --ike aes256gcm16-prfsha256-x25519
//!
//! scripts/bench-ike.sh runs it per DH group beside strongSwan's charon measured the same way.

use clap::Parser;
use control::ike_manager::{IkeManager, Out};
use control::ike_transport::KernelUdp;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// IKE SAs (each with one child SA).
    #[arg(long, default_value_t = 1000)]
    tunnels: u32,
    /// The IKE proposal, strongSwan's syntax.
    #[arg(long, default_value = "aes256gcm16-prfsha256-x25519")]
    ike: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// CPUs for the initiator and the responder.
    #[arg(long, default_value = "0,1")]
    cpus: String,
}

/// A configuration with `n` tunnels and VPNs between `me` and `peer` (the dataplane section
/// is never used: the managers run alone).
fn config(me: Ipv4Addr, peer: Ipv4Addr, n: u32, ike: &str, initiator: bool) -> String {
    let tunnels: Vec<serde_json::Value> = (0..n)
        .map(|i| serde_json::json!({"name": format!("st0.{i}"), "local": me.to_string(), "remote": peer.to_string()}))
        .collect();
    // Each VPN its own pair of /32s: the responder picks the VPN by the initiator's selectors.
    let host = |side: u32, i: u32| format!("10.{}.{}.{}/32", side, i / 256 % 256, i % 256);
    let (mine, theirs) = if initiator { (1, 2) } else { (2, 1) };
    let vpns: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "name": format!("vpn{i}"), "gateway": "peer", "bind_interface": format!("st0.{i}"),
                "local_ts": [host(mine, i)], "remote_ts": [host(theirs, i)],
                "establish": if initiator { "immediately" } else { "responder-only" },
            })
        })
        .collect();
    serde_json::json!({
        "dataplane": {"eal": [], "workers": [1], "max_tunnels": n + 16},
        "interfaces": [{"name": "lo0", "port": 0, "address": format!("{me}/8")}],
        "tunnels": tunnels,
        "ike": {
            "gateways": [{"name": "peer", "local_address": me.to_string(), "remote_address": peer.to_string(),
                          "local_id": if initiator { "a.example" } else { "b.example" },
                          "remote_id": if initiator { "b.example" } else { "a.example" },
                          "psk": "setup-rate benchmark key", "proposals": [ike],
                          "dpd": {"action": "none"}}],
            "vpns": vpns,
        }
    })
    .to_string()
}

fn pin(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET writes within it; sched_setaffinity on
    // the calling thread (0) with its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Runs one side until `stop`; the initiator side returns when every VPN is up.
fn side(
    me: Ipv4Addr,
    peer: Ipv4Addr,
    a: &Args,
    initiator: bool,
    cpu: usize,
    stop: Arc<AtomicBool>,
) -> Result<(Duration, u64, IkeManager), String> {
    pin(cpu);
    let text = config(me, peer, a.tunnels, &a.ike, initiator);
    let cfg = config::Config::parse(&text).map_err(|e| e.to_string())?;
    control::ike_manager::validate(&cfg).map_err(|(f, r)| format!("{f}: {r}"))?;
    let mut sock = KernelUdp::bind(me.into(), 500, 4500).map_err(|e| format!("{me}: {e}"))?;
    let mut ike = IkeManager::default();
    let started = Instant::now();
    ike.configure(&cfg, started);
    let deadline = started + Duration::from_secs(a.timeout);
    let mut idle = 0u32;
    // Timers every 10 ms, as the control process checks them every 20 ms.
    let mut ticked = started;
    loop {
        let now = Instant::now();
        let mut got = Vec::new();
        let n = sock.recv(4096, |l, r, m| got.push((l, r, m.to_vec())));
        for (l, r, m) in got {
            ike.datagram(now, l, r, &m);
        }
        if now >= ticked + Duration::from_millis(10) {
            ticked = now;
            ike.tick(now);
        }
        for o in ike.take_out() {
            if let Out::Send(g) = o {
                // A full socket buffer: the SA's own retransmission covers it.
                let _ = sock.send(&g);
            }
        }
        let up: u64 = ike.stats.values().map(|g| g.established).sum();
        if initiator && up >= u64::from(a.tunnels) {
            stop.store(true, Ordering::Relaxed);
            return Ok((started.elapsed(), up, ike));
        }
        if stop.load(Ordering::Relaxed) || now > deadline {
            stop.store(true, Ordering::Relaxed);
            return Ok((started.elapsed(), up, ike));
        }
        if n == 0 {
            idle += 1;
            if idle > 100 {
                std::thread::sleep(Duration::from_micros(200));
            }
        } else {
            idle = 0;
        }
    }
}

fn main() -> Result<(), String> {
    let a = Arc::new(Args::parse());
    let cpus: Vec<usize> = a
        .cpus
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    let (ci, cr) = (
        cpus.first().copied().unwrap_or(0),
        cpus.get(1).copied().unwrap_or(1),
    );
    let (me, peer) = (Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::new(127, 0, 0, 2));
    let rss0 = rss_kb();
    let stop = Arc::new(AtomicBool::new(false));
    let responder = {
        let (a, stop) = (a.clone(), stop.clone());
        std::thread::spawn(move || side(peer, me, &a, false, cr, stop))
    };
    // The responder binds first.
    std::thread::sleep(Duration::from_millis(100));
    let (took, up, ike) = side(me, peer, &a, true, ci, stop.clone())?;
    let rss1 = rss_kb();
    let (_, _, r) = responder.join().map_err(|_| "responder panicked")??;
    let secs = took.as_secs_f64();
    let grown = rss1.saturating_sub(rss0);
    let (si, sr) = (ike.state(Instant::now()), r.state(Instant::now()));
    let retransmits: u64 = si.security_associations.iter().map(|s| s.retransmits).sum();
    // Established IKE SAs holding a child, the fewer of the two sides.
    let with_child = |s: &control::ike_manager::IkeState| {
        s.security_associations
            .iter()
            .filter(|x| x.state == "established" && !x.children.is_empty())
            .count()
    };
    let children = with_child(&si).min(with_child(&sr));
    println!(
        "{} IKE SAs ({} with a child at both ends) up of {} in {:.3} s: {:.0} setups/s; process grew {} kB = {:.1} kB per IKE SA + child (both sides); retransmits {}, cookies sent by the responder {}",
        up,
        children,
        a.tunnels,
        secs,
        up as f64 / secs,
        grown,
        grown as f64 / up.max(1) as f64,
        retransmits,
        r.cookies_sent
    );
    if up < u64::from(a.tunnels) || children < a.tunnels as usize {
        return Err(format!(
            "only {up} of {} came up, {children} with a child",
            a.tunnels
        ));
    }
    Ok(())
}
