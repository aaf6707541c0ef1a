//! Brings the dataplane up from a validated configuration, runs it until it is told to stop
//! (signal or idle timeout), and takes it down, leaving a stats snapshot.

use crate::config::{self, Config, CryptoChoice};
use crate::control_channel::ControlChannel;
use crate::control_state::{ControlState, Setup, WorkerInfo};
use crate::counters::{Stat, StatBlock};
use crate::esp::crypto::cryptodev;
use crate::esp::crypto::Backend;
use crate::forward::Forwarder;
use crate::main_lcore::{MainLcore, WorkerRings};
use crate::mem::Memory;
use crate::stats::{PortCounters, Snapshot, Sources, WorkerSource};
use crate::telemetry;
use crate::wire::ethernet::{self, Mac};
use crate::worker::{HandoffStats, RunTime, TxPath, Worker};
use dpdk_sys::{Eal, Mempool, Port, PortConfig, Ring};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Stop after this long without a packet received on any port.
    pub exit_when_idle: Option<Duration>,
    pub stats_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("DPDK: {0}")]
    Dpdk(#[from] dpdk_sys::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
}

fn config_err(field: impl Into<String>, reason: impl Into<String>) -> AppError {
    AppError::Config(crate::config::ConfigError {
        field: field.into(),
        reason: reason.into(),
    })
}

/// mbuf data room: RTE_MBUF_DEFAULT_BUF_SIZE (2048 + 128 of headroom).
const MBUF_DATA_ROOM: u16 = 2048 + 128;
/// The largest IP packet one mbuf holds whole: espgw neither builds nor accepts segmented
/// packets, so a port's MTU goes no higher.
const PORT_MTU_MAX: u16 = 2048 - ethernet::HEADER_LEN as u16 - 4;
const RING_SIZE: u32 = 1024;
/// Commands in flight to a worker before they wait in the main lcore's backlog.
const LINK_CAPACITY: usize = 4096;

/// Runs the dataplane with these EAL arguments; returns the final counters.
pub fn run(cfg: &Config, eal_args: &[String], opts: &Options) -> Result<Snapshot, AppError> {
    let eal = Eal::init(eal_args)?;
    let main_lcore = eal.main_lcore();
    for (i, &l) in cfg.dataplane.workers.iter().enumerate() {
        if l == main_lcore {
            return Err(config_err(
                format!("dataplane.workers[{i}]"),
                format!("lcore {l} is the EAL main lcore"),
            ));
        }
        if !eal.is_lcore_enabled(l) {
            return Err(config_err(
                format!("dataplane.workers[{i}]"),
                format!("lcore {l} is not in the EAL core list"),
            ));
        }
    }
    let nports = dpdk_sys::port_count();
    for (i, ifc) in cfg.interfaces.iter().enumerate() {
        if ifc.port >= nports {
            let names: Vec<String> = (0..nports).filter_map(dpdk_sys::port::port_name).collect();
            return Err(config_err(
                format!("interfaces[{i}].port"),
                format!(
                    "no DPDK port {}; EAL found {nports}: {}",
                    ifc.port,
                    names.join(", ")
                ),
            ));
        }
    }
    let workers = &cfg.dataplane.workers;
    let nworkers = workers.len() as u16;
    let pool = Mempool::pktmbuf(
        "espgw_mbufs",
        cfg.dataplane.mbufs,
        256,
        MBUF_DATA_ROOM,
        eal.lcore_socket(main_lcore),
    )?;

    // One RX and one TX queue per worker where the PMD allows; fewer queues are shared out.
    let mut ports: Vec<Port> = Vec::new();
    for ifc in &cfg.interfaces {
        // The port takes frames as large as the interface's MTU (jumbo ESP on a real NIC),
        // up to what one mbuf holds.
        let mtu = ifc.mtu.min(PORT_MTU_MAX);
        let pc = PortConfig {
            rx_queues: nworkers,
            tx_queues: nworkers,
            rx_desc: cfg.dataplane.rx_descriptors,
            tx_desc: cfg.dataplane.tx_descriptors,
            rss: nworkers > 1,
            mtu: Some(mtu),
        };
        let mut port = Port::configure(ifc.port, &pc, &pool)?;
        if let Err(e) = port.mtu_status() {
            eprintln!(
                "espgw: {}: the PMD of port {} refuses MTU {mtu} ({e}); it stays at {}",
                ifc.name,
                ifc.port,
                port.mtu().unwrap_or(1500)
            );
        } else if mtu < ifc.mtu {
            eprintln!(
                "espgw: {}: port MTU {mtu}, not {}: one mbuf holds no larger packet",
                ifc.name, ifc.mtu
            );
        }
        if let Some(mac) = ifc.mac {
            // Where the PMD cannot take the address, receive everything and filter in software.
            if let Err(e) = port.set_mac(mac.0) {
                eprintln!(
                    "espgw: {}: cannot set MAC {mac} on port {} ({e}); using promiscuous mode",
                    ifc.name, ifc.port
                );
                port.promiscuous(true)?;
            }
        }
        port.start()?;
        ports.push(port);
    }

    let groups = match &cfg.dataplane.anchor_groups {
        Some(g) => g.clone(),
        None => groups_by_socket(&eal, workers),
    };
    let backend = crypto_backend(cfg)?;
    eprintln!("espgw: crypto: {}", backend.name());
    let cap = cfg.dataplane.capacity;
    eprintln!(
        "espgw: tables: {} tunnels, {} inbound SAs, {} route tables, in {} memory",
        cap.tunnels,
        cap.inbound_sas,
        cap.route_tables,
        Memory::Hugepages.kind()
    );
    crate::host_check::report(&eal, eal_args, workers, &ports);
    let stats: Vec<Arc<StatBlock>> = workers.iter().map(|_| Arc::default()).collect();
    let macs: Vec<(u16, Mac)> = ports
        .iter()
        .map(|p| (p.id(), p.mac().map(Mac).unwrap_or_default()))
        .collect();
    let (mut control, ends) = ControlState::new(Setup {
        workers: workers
            .iter()
            .map(|&lcore| WorkerInfo {
                lcore,
                socket: eal.lcore_socket(lcore),
            })
            .collect(),
        groups,
        capacity: cap,
        memory: Memory::Hugepages,
        backend: backend.clone(),
        link_capacity: LINK_CAPACITY,
        port_mac: Box::new(move |p| {
            macs.iter()
                .find(|(id, _)| *id == p)
                .map(|(_, m)| *m)
                .unwrap_or_default()
        }),
        stats: stats.clone(),
    })
    .map_err(AppError::Other)?;
    // Standalone, the file as the changes that build it: the path the control process uses
    // too. With a channel the control process sends them, and resumes each outbound SA above
    // the sequence numbers it used before (a restarted dataplane cannot know them).
    let mut last = 0;
    let standalone = cfg.dataplane.channel.is_none();
    for change in config::changes(cfg).into_iter().filter(|_| standalone) {
        last = control
            .apply(change)
            .map_err(|e| AppError::Other(format!("applying the configuration: {e}")))?
            .generation;
    }
    if standalone && cfg.manual_sas.iter().any(|s| s.initial_seq.is_none()) {
        eprintln!(
            "espgw: warning: manual AES-GCM SAs start from sequence number 1 at every start; \
             with the same key, a restart repeats nonces: give each start fresh keys \
             (docs/operations.md, \"Manual SAs and nonces\")"
        );
    }
    for (name, i) in control.interfaces() {
        let q = ports
            .iter()
            .find(|p| p.id() == i.port)
            .map_or((0, 0), |p| (p.rx_queues(), p.tx_queues()));
        let net = ipnet::Ipv4Net::new(i.addr, i.prefix_len)
            .map(|n| n.to_string())
            .unwrap_or_default();
        eprintln!(
            "espgw: {name}: port {} {net} mac {} mtu {} queues rx {} tx {}",
            i.port, i.mac, i.mtu, q.0, q.1
        );
    }

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The first signal stops cleanly; a second one, if the stop hangs, exits at once.
        signal_hook::flag::register_conditional_shutdown(sig, 1, stop.clone())?;
        signal_hook::flag::register(sig, stop.clone())?;
    }

    // Handoff rings: one per ordered pair of workers, on the receiver's socket.
    let n = workers.len();
    let mut rings_ho: Vec<Vec<Option<Arc<Ring>>>> = vec![vec![None; n]; n];
    for (from, row) in rings_ho.iter_mut().enumerate() {
        for (to, slot) in row.iter_mut().enumerate() {
            if from != to {
                let name = format!("espgw_ho_{}_{}", workers[from], workers[to]);
                let socket = eal.lcore_socket(workers[to]);
                *slot = Some(Arc::new(Ring::new(
                    &name,
                    cfg.dataplane.handoff_ring_size,
                    socket,
                    true,
                    true,
                )?));
            }
        }
    }

    let max_port = cfg
        .interfaces
        .iter()
        .map(|i| usize::from(i.port))
        .max()
        .unwrap_or(0);
    let ready = Arc::new(AtomicBool::new(false));
    let mut rings = Vec::new();
    let mut runners = Vec::new();
    let mut sources = Vec::new();
    let mut handoff_sources = Vec::new();
    for (((index, &lcore), link), stats) in workers.iter().enumerate().zip(ends).zip(stats) {
        let socket = eal.lcore_socket(lcore);
        let punt = Arc::new(Ring::new(
            &format!("espgw_punt_{lcore}"),
            RING_SIZE,
            socket,
            true,
            true,
        )?);
        let inject = Arc::new(Ring::new(
            &format!("espgw_inject_{lcore}"),
            RING_SIZE,
            socket,
            true,
            true,
        )?);
        let q = index as u16;
        let rx = ports
            .iter()
            .filter(|p| q < p.rx_queues())
            .map(|p| (p.id(), q))
            .collect();
        let mut tx = vec![TxPath::None; max_port + 1];
        for p in &ports {
            let ntx = p.tx_queues().max(1);
            tx[usize::from(p.id())] = if q < ntx {
                TxPath::Queue(q)
            } else {
                TxPath::Via(q % ntx)
            };
        }
        let run_time = Arc::new(RunTime::default());
        let handoff_stats = Arc::new(HandoffStats::new(n));
        sources.push(WorkerSource {
            lcore,
            stats: stats.clone(),
            run_time: run_time.clone(),
        });
        handoff_sources.push(handoff_stats.clone());
        rings.push(WorkerRings {
            punt: punt.clone(),
            inject: inject.clone(),
        });
        let mut fwd = Forwarder::new(q, cap, Memory::Hugepages, socket, stats)
            .map_err(|e| AppError::Other(format!("worker {lcore}: {e}")))?;
        if let Backend::Cryptodev(dev) = &backend {
            match dev.queue(q) {
                Some(Ok(queue)) => fwd.set_crypto_queue(Box::new(queue)),
                Some(Err(e)) => eprintln!("espgw: worker {lcore}: {e}; one CPU-crypto call per SA"),
                None => eprintln!(
                    "espgw: worker {lcore}: no queue pair left on {}; one CPU-crypto call per SA",
                    dev.driver()
                ),
            }
        }
        runners.push(Worker {
            lcore,
            rx,
            tx,
            fwd,
            link,
            ready: ready.clone(),
            punt,
            inject,
            handoff_out: rings_ho[index].clone(),
            handoff_in: (0..n)
                .filter_map(|from| rings_ho[from][index].clone())
                .collect(),
            handoff_stats,
            stop: stop.clone(),
            poll_sleep: Duration::from_micros(u64::from(cfg.dataplane.poll_sleep_us)),
            run_time,
        });
    }
    let view = control.view();
    let mut main = MainLcore::new(control, rings);
    let sources = Arc::new(Sources {
        workers: sources,
        handoff: handoff_sources,
        main: main.stats.clone(),
        view,
        ports: cfg
            .interfaces
            .iter()
            .map(|i| (i.port, i.name.to_string()))
            .collect(),
        crypto: backend.name(),
    });
    telemetry::install(sources.clone())?;

    for w in runners {
        let lcore = w.lcore;
        dpdk_sys::lcore::launch(lcore, move || w.run())?;
    }
    // The workers apply the start-up state before they poll a port.
    while !main.control.in_force(last) && !stop.load(Ordering::Relaxed) {
        if main.poll(&pool) == 0 {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    ready.store(true, Ordering::Release);
    eprintln!("espgw: forwarding on {} worker(s); Ctrl-C stops", nworkers);
    if let Some(path) = &cfg.dataplane.channel {
        let cap = cfg.dataplane.capacity;
        let layout = channel::Layout {
            // Two records a tunnel: an SA and its successor; one per inbound SA slot.
            grants: cap.tunnels.saturating_mul(2),
            windows: cap.inbound_sas,
            // Two halves, each room for every SA's entry in the JSON snapshot and the rest.
            stats_len: 2
                * ((u64::from(cap.tunnels) + u64::from(cap.inbound_sas)) * 768 + (256 << 10))
                + 64,
            ..Default::default()
        };
        let ch = ControlChannel::create(path, layout, &mut main.control)
            .map_err(|e| config_err("dataplane.channel", e.to_string()))?;
        ch.segment().set_ready();
        eprintln!(
            "espgw: channel {} ready for the control process (generation {:#x})",
            path.display(),
            ch.segment().generation()
        );
        main.channel = Some(ch);
    }

    let port_counters = |p: u16| {
        ports
            .iter()
            .find(|x| x.id() == p)
            .and_then(|x| x.stats().ok())
            .map(PortCounters::from)
            .unwrap_or_default()
    };
    let mut last_rx = 0;
    let mut last_change = Instant::now();
    let mut published = Instant::now() - STATS_INTERVAL;
    while !stop.load(Ordering::Relaxed) {
        let work = main.poll(&pool);
        if let Some(ch) = &main.channel {
            if published.elapsed() >= STATS_INTERVAL {
                published = Instant::now();
                publish_stats(ch, &sources.snapshot(port_counters));
                main.control.publish_windows();
            }
        }
        let rx = sources.total(Stat::RxPackets);
        if rx != last_rx {
            last_rx = rx;
            last_change = Instant::now();
        }
        if opts
            .exit_when_idle
            .is_some_and(|idle| last_change.elapsed() >= idle)
        {
            break;
        }
        if work == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    stop.store(true, Ordering::Relaxed);
    dpdk_sys::lcore::wait_all();
    // The workers are done: the replay windows' tops are final, and the next start resumes
    // them exactly.
    main.control.publish_windows();
    // The workers gave their SAs back: freed here, with their crypto sessions.
    main.drain();

    let snap = sources.snapshot(port_counters);
    if let Some(path) = &opts.stats_file {
        write_stats(path, &snap)?;
    }
    for mut p in ports {
        let _ = p.stop();
    }
    Ok(snap)
}

/// How often the stats region is rewritten.
const STATS_INTERVAL: Duration = Duration::from_millis(250);

/// What the stats region holds: the snapshot, and the channel's own counters.
#[derive(serde::Serialize)]
struct Published<'a> {
    dataplane: &'a Snapshot,
    channel: crate::control_channel::ChannelStats,
}

fn publish_stats(ch: &ControlChannel, snap: &Snapshot) {
    let doc = Published {
        dataplane: snap,
        channel: ch.stats,
    };
    let r = serde_json::to_vec(&doc)
        .map_err(|e| e.to_string())
        .and_then(|bytes| {
            ch.segment()
                .publish_stats(&bytes)
                .map_err(|e| e.to_string())
        });
    if let Err(e) = r {
        // Once: the region is sized from the configuration and does not grow.
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| eprintln!("espgw: stats region: {e}"));
    }
}

fn write_stats(path: &std::path::Path, snap: &Snapshot) -> Result<(), AppError> {
    let json = serde_json::to_string_pretty(snap).map_err(|e| AppError::Other(e.to_string()))?;
    std::fs::write(path, json + "\n")?;
    Ok(())
}

/// The default anchor groups: one per NUMA socket, holding that socket's workers.
fn groups_by_socket(eal: &Eal, workers: &[u32]) -> Vec<Vec<u32>> {
    let mut by_socket: std::collections::BTreeMap<i32, Vec<u32>> = Default::default();
    for &w in workers {
        by_socket.entry(eal.lcore_socket(w)).or_default().push(w);
    }
    by_socket.into_values().collect()
}

/// Sessions beyond the SAs the tables hold (or twice the file's: each replaced once, its
/// successor beside it), for SAs on their way back after a replacement.
const SPARE_SESSIONS: u32 = 1024;

/// The AEAD backend the configuration asks for: the `crypto_aesni_gcm` device where it can be
/// had (`auto` falls back to `ring` and says why), or `ring`.
fn crypto_backend(cfg: &Config) -> Result<Backend, AppError> {
    // Every SA the tables can hold (a control process may fill them), or twice the file's.
    let cap = cfg.dataplane.capacity;
    let sessions = (cfg.manual_sas.len() as u32)
        .saturating_mul(2)
        .max(cap.tunnels.saturating_add(cap.inbound_sas))
        .saturating_add(SPARE_SESSIONS);
    let workers = u16::try_from(cfg.dataplane.workers.len()).unwrap_or(u16::MAX);
    match cfg.dataplane.crypto {
        CryptoChoice::Ring => Ok(Backend::Ring),
        CryptoChoice::Cryptodev => cryptodev::Device::open(sessions, workers)
            .map(|d| Backend::Cryptodev(Arc::new(d)))
            .map_err(|e| config_err("dataplane.crypto", e)),
        CryptoChoice::Auto => match cryptodev::Device::open(sessions, workers) {
            Ok(d) => Ok(Backend::Cryptodev(Arc::new(d))),
            Err(e) => {
                eprintln!("espgw: no {}: {e}; using ring", cryptodev::DRIVER);
                Ok(Backend::Ring)
            }
        },
    }
}
