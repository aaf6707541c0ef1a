//! espgw-loadgen: a DPDK load generator for the espgw gateway over net_memif.
//!
//! It reads the gateway's own configuration file to learn the memif links, the MACs and
//! addresses of both sides, and per tunnel the routed destination and the SAs. Encrypt: it
//! sends cleartext UDP/IPv4 on port 0 (facing the gateway's LAN) and receives ESP on port 1
//! (facing its WAN). Decrypt: it sends ESP on port 1 and receives cleartext on port 0. It
//! reports offered and received rates, loss and latency percentiles, and stops by itself.
//! See docs/performance.md.

mod gwconfig;
mod latency;
mod link;
mod pcap;
mod report;
mod run;
mod rx;
mod traffic;
mod tx;

use clap::{Parser, ValueEnum};
use dataplane::esp::encap::outer_len;
use dpdk_sys::{Eal, Mempool};
use gwconfig::{Setup, TunnelPlan};
use report::{Params, Report};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use traffic::{ClearFrames, EspPool, Schedule, IMIX, MAX_FRAME, MIN_FRAME};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Direction {
    /// Cleartext to the gateway's LAN, ESP back from its WAN.
    Encrypt,
    /// ESP to the gateway's WAN, cleartext back from its LAN.
    Decrypt,
}

#[derive(Parser, Debug)]
#[command(
    name = "espgw-loadgen",
    version,
    about = "DPDK load generator for espgw-dataplane over net_memif"
)]
struct Cli {
    /// The gateway's configuration file (its memif links, MACs, tunnels, routes and SAs).
    #[arg(long, value_name = "FILE")]
    gw_config: PathBuf,
    #[arg(long, value_enum, default_value = "encrypt")]
    direction: Direction,
    /// Cleartext Ethernet frame size without FCS (60..1514).
    #[arg(long, default_value_t = 64, conflicts_with = "imix")]
    size: usize,
    /// IMIX 7:4:1 of 64/570/1518-byte frames (60/566/1514 without FCS).
    #[arg(long)]
    imix: bool,
    /// Use the first N tunnels of the configuration (default: all with a route and the SA).
    #[arg(long)]
    tunnels: Option<usize>,
    /// UDP source ports per tunnel.
    #[arg(long, default_value_t = 256)]
    flows: u64,
    /// Packets per second; 0 sends as fast as the gateway takes them.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Stop after this many packets (0: no packet bound).
    #[arg(long, default_value_t = 0)]
    packets: u64,
    /// Stop sending after this many seconds.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// After sending, wait this long at most for the last replies.
    #[arg(long, default_value_t = 500)]
    grace_ms: u64,
    /// Encrypt direction: decrypt one received packet in N for latency and verification.
    #[arg(long, default_value_t = 16)]
    sample_every: u64,
    /// Decrypt direction: prepared ESP packets, replayed in order (at least one per tunnel, and
    /// four times the memif ring). With --write-pcap, the packets written, either direction.
    #[arg(long, default_value_t = 16384)]
    pool: usize,
    /// The gateway's interface facing our port 0.
    #[arg(long, default_value = "lan0")]
    lan: String,
    /// The gateway's interface facing our port 1.
    #[arg(long, default_value = "wan0")]
    wan: String,
    /// Memif rings of 2^N slots, both directions (the client decides): room for the gateway's
    /// output while this process is briefly descheduled.
    #[arg(long, default_value_t = 12)]
    ring_log2: u8,
    /// Seconds to wait for the memif links to come up.
    #[arg(long, default_value_t = 10)]
    link_timeout: u64,
    /// Also write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the traffic to a pcap instead of sending it, and exit (no EAL, no links): --pool
    /// packets (at least one per tunnel, a whole number of IMIX patterns), for the gateway to
    /// replay with net_pcap (scripts/bench-scale-replay.sh).
    #[arg(long, value_name = "FILE")]
    write_pcap: Option<PathBuf>,
    /// EAL arguments (without --vdev: the memif ports are added). Default: one lcore on CPU 0.
    #[arg(last = true, value_name = "EAL ARGS")]
    eal: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("espgw-loadgen: {e}");
            ExitCode::from(1)
        }
    }
}

fn check(cli: &Cli) -> Result<(), String> {
    if !(MIN_FRAME..=MAX_FRAME).contains(&cli.size) {
        return Err(format!(
            "--size {} is outside {MIN_FRAME}..{MAX_FRAME}",
            cli.size
        ));
    }
    if !(1..=64512).contains(&cli.flows) {
        return Err("--flows must be 1..64512".into());
    }
    if !(cli.duration > 0.0 && cli.duration <= 3600.0) {
        return Err("--duration must be above 0 and at most 3600 seconds".into());
    }
    if cli.grace_ms > 60_000 {
        return Err("--grace-ms must be at most 60000".into());
    }
    if cli.sample_every == 0 {
        return Err("--sample-every must be at least 1".into());
    }
    if !(8..=14).contains(&cli.ring_log2) {
        return Err("--ring-log2 must be 8..14".into());
    }
    if !(1024..=1 << 22).contains(&cli.pool) {
        return Err("--pool must be 1024..4194304".into());
    }
    Ok(())
}

/// The tunnels to send through: those that have the SA this direction needs.
fn pick_tunnels(
    setup: &Setup,
    dir: Direction,
    want: Option<usize>,
) -> Result<Vec<TunnelPlan>, String> {
    let usable: Vec<&TunnelPlan> = setup
        .tunnels
        .iter()
        .filter(|t| match dir {
            Direction::Encrypt => t.gw_out.is_some(),
            Direction::Decrypt => t.gw_in.is_some(),
        })
        .collect();
    let sa = match dir {
        Direction::Encrypt => "an outbound",
        Direction::Decrypt => "an inbound",
    };
    let n = want.unwrap_or(usable.len());
    if n == 0 || n > usable.len() {
        return Err(format!(
            "--tunnels {n}: the gateway has {} tunnel(s) with a route and {sa} SA",
            usable.len()
        ));
    }
    Ok(usable.into_iter().take(n).cloned().collect())
}

/// Warns about frames the gateway will drop for its MTUs.
fn warn_mtu(setup: &Setup, tunnels: &[TunnelPlan], pattern: &[u16]) -> Result<(), String> {
    let Some(largest) = pattern.iter().max().map(|&s| usize::from(s)) else {
        return Ok(());
    };
    let Some(t) = tunnels.first() else {
        return Ok(());
    };
    let sa = gwconfig::mirror_gw_in(t)
        .or_else(|| {
            // Only the outer length matters here: any SA of the tunnel gives it.
            let mut t = t.clone();
            t.gw_in = t.gw_out.clone();
            gwconfig::mirror_gw_in(&t)
        })
        .transpose()
        .map_err(|e| e.to_string())?;
    let inner = largest - dataplane::wire::ethernet::HEADER_LEN;
    if inner > usize::from(setup.lan.mtu) {
        eprintln!(
            "espgw-loadgen: warning: {largest}-byte frames exceed {}'s MTU {}",
            setup.lan.name, setup.lan.mtu
        );
    }
    if let Some(sa) = sa {
        let outer = outer_len(&sa, inner);
        if outer > usize::from(setup.wan.mtu) {
            eprintln!(
                "espgw-loadgen: warning: {largest}-byte frames encrypt to {outer}-byte IPv4 packets, above {}'s MTU {}: the gateway drops them (exceeds_tunnel_mtu)",
                setup.wan.name, setup.wan.mtu
            );
        }
    }
    Ok(())
}

/// Refuses to replay a pool of `pool_len` ESP packets into a tunnel whose inbound SA has an
/// anti-replay window: it would drop every round after the first.
fn refuse_replays(tunnels: &[TunnelPlan], pool_len: usize) -> Result<(), String> {
    match tunnels
        .iter()
        .find_map(|t| t.gw_in.as_ref().filter(|s| s.replay_window > 0).map(|s| (t, s)))
    {
        Some((t, s)) => Err(format!(
            "decrypt replays a pool of {pool_len} prepared ESP packets, which tunnel {}'s inbound SA (replay_window {}) would drop as replays: give the gateway's inbound SAs \"replay_window\": 0, or send at most --packets {pool_len}",
            t.name, s.replay_window
        )),
        None => Ok(()),
    }
}

/// The mirror of one SA of every tunnel that has it (`mirror` picks which).
fn mirror_sas<S>(
    tunnels: &[TunnelPlan],
    mirror: fn(&TunnelPlan) -> Option<Result<S, dataplane::esp::crypto::CryptoError>>,
) -> Result<Vec<S>, String> {
    let mut sas = Vec::with_capacity(tunnels.len());
    for t in tunnels {
        if let Some(sa) = mirror(t) {
            sas.push(sa.map_err(|e| format!("{}: {e}", t.name))?);
        }
    }
    Ok(sas)
}

fn run(cli: &Cli) -> Result<(), String> {
    check(cli)?;
    let setup = gwconfig::load(&cli.gw_config, &cli.lan, &cli.wan)?;
    let tunnels = pick_tunnels(&setup, cli.direction, cli.tunnels)?;
    let pattern = if cli.imix {
        IMIX.to_vec()
    } else {
        vec![cli.size as u16]
    };
    warn_mtu(&setup, &tunnels, &pattern)?;
    let schedule = Schedule {
        pattern: pattern.clone(),
        tunnels: tunnels.len() as u64,
        flows: cli.flows,
    };

    if let Some(path) = &cli.write_pcap {
        let n = cli.pool.max(tunnels.len()).div_ceil(pattern.len()) * pattern.len();
        if cli.direction == Direction::Decrypt {
            // net_pcap replays the file without end.
            refuse_replays(&tunnels, n)?;
        }
        let frames = match cli.direction {
            Direction::Encrypt => {
                let dests = tunnels.iter().map(|t| t.dest).collect();
                let clear = ClearFrames::new(schedule, &setup.lan, setup.lan.my_addr, dests);
                (0..n as u64)
                    .map(|k| {
                        let mut f = vec![0u8; clear.size(k)];
                        clear
                            .build(k, &mut f)
                            .then_some(f)
                            .ok_or_else(|| format!("packet {k} does not fit its frame"))
                    })
                    .collect::<Result<Vec<_>, String>>()?
            }
            Direction::Decrypt => {
                let mut sas = mirror_sas(&tunnels, gwconfig::mirror_gw_in)?;
                let pool = EspPool::build(
                    &schedule,
                    n,
                    &setup.wan,
                    setup.lan.my_addr,
                    &tunnels,
                    &mut sas,
                )?;
                (0..pool.len()).map(|i| pool.frame(i).to_vec()).collect()
            }
        };
        pcap::write(path, &frames).map_err(|e| format!("{}: {e}", path.display()))?;
        println!(
            "espgw-loadgen: wrote {} frames to {}",
            frames.len(),
            path.display()
        );
        return Ok(());
    }
    // Everything that needs keys is built now; the configuration (and its keys) goes after.
    let mut pool_len = 0;
    let (source, expect) = match cli.direction {
        Direction::Encrypt => {
            let sas = mirror_sas(&tunnels, gwconfig::mirror_gw_out)?;
            let by_spi = sas
                .iter()
                .enumerate()
                .map(|(i, sa)| (sa.crypto.spi, i))
                .collect();
            let dests = tunnels.iter().map(|t| t.dest).collect();
            let frames = ClearFrames::new(schedule, &setup.lan, setup.lan.my_addr, dests);
            (
                tx::Source::Clear(frames),
                rx::Expect::Esp {
                    sas,
                    by_spi,
                    every: cli.sample_every,
                    countdown: 0,
                },
            )
        }
        Direction::Decrypt => {
            // A whole number of size patterns, every tunnel at least once, and more entries
            // than the memif rings can hold in flight, so that an entry is never sent again
            // (and its TX time overwritten) before its previous copy came back or was lost.
            let plen = pattern.len();
            let in_flight = 4usize << cli.ring_log2;
            pool_len = cli.pool.max(tunnels.len()).max(in_flight).div_ceil(plen) * plen;
            if cli.packets == 0 || cli.packets > pool_len as u64 {
                refuse_replays(&tunnels, pool_len)?;
            }
            let mut sas = mirror_sas(&tunnels, gwconfig::mirror_gw_in)?;
            let pool = EspPool::build(
                &schedule,
                pool_len,
                &setup.wan,
                setup.lan.my_addr,
                &tunnels,
                &mut sas,
            )?;
            (tx::Source::Esp(pool), rx::Expect::Clear)
        }
    };
    let eal_args = link::eal_args(&cli.eal, &setup.lan, &setup.wan, cli.ring_log2);
    let ntunnels = tunnels.len();
    drop(tunnels);
    drop(setup);

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The first signal ends sending (the report still comes); a second one exits at once.
        signal_hook::flag::register_conditional_shutdown(sig, 1, stop.clone())
            .map_err(|e| e.to_string())?;
        signal_hook::flag::register(sig, stop.clone()).map_err(|e| e.to_string())?;
    }

    // Declared before the EAL, so dropped after it, on every path out of here.
    let _runtime_dir = cli
        .eal
        .is_empty()
        .then(|| link::RuntimeDir(format!("/var/run/dpdk/{}", link::default_prefix())));
    let eal = Eal::init(&eal_args).map_err(|e| format!("EAL: {e}"))?;
    let socket = eal.lcore_socket(eal.main_lcore());
    let report = {
        let mbufs = Mempool::pktmbuf(
            "loadgen_mbufs",
            8191,
            256,
            dpdk_sys::mbuf::DEFAULT_BUF_SIZE,
            socket,
        )
        .map_err(|e| e.to_string())?;
        let mut ports = link::start_ports(&mbufs, Duration::from_secs(cli.link_timeout))?;
        let hz = dpdk_sys::eal::tsc_hz();
        let mut lat = latency::Latency::new(hz)?;
        let (tx_port, rx_port) = match cli.direction {
            Direction::Encrypt => (link::LAN_PORT, link::WAN_PORT),
            Direction::Decrypt => (link::WAN_PORT, link::LAN_PORT),
        };
        let mut sender = tx::Sender::new(tx_port, &mbufs, source);
        let mut receiver = rx::Receiver::new(rx_port, expect);
        let bounds = run::Bounds {
            packets: cli.packets,
            duration: Duration::from_secs_f64(cli.duration),
            grace: Duration::from_millis(cli.grace_ms),
        };
        let cpu_share = run::run(
            &mut sender,
            &mut receiver,
            tx_port,
            cli.rate,
            bounds,
            &stop,
            &mut lat,
        );
        let params = Params {
            direction: match cli.direction {
                Direction::Encrypt => "encrypt",
                Direction::Decrypt => "decrypt",
            },
            frame_size: if cli.imix {
                "imix".into()
            } else {
                cli.size.to_string()
            },
            tunnels: ntunnels,
            flows: cli.flows,
            rate_pps: cli.rate,
            duration_s: cli.duration,
            packets_limit: cli.packets,
            sample_every: cli.sample_every,
            pool: pool_len,
        };
        let mut report = Report::new(
            params,
            sender.stats,
            receiver.stats,
            lat.summary(),
            lat.invalid,
            hz,
        );
        report.cpu_share = cpu_share;
        drop(sender);
        for p in &mut ports {
            let _ = p.stop();
        }
        report
    };
    drop(eal);

    print!("{}", report.render());
    if let Some(path) = &cli.json {
        let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, json + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}
