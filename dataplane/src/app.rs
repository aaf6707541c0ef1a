//! Brings the dataplane up from a validated configuration, runs it until it is told to stop
//! (signal or idle timeout), and takes it down, leaving a stats snapshot.

use crate::anchor::Anchors;
use crate::config::{Config, CryptoChoice, RouteVia};
use crate::counters::{Stat, StatBlock};
use crate::esp::crypto::Backend;
use crate::esp::cryptodev;
use crate::forward::Forwarder;
use crate::main_lcore::{MainLcore, WorkerLink};
use crate::provision;
use crate::stats::{PortCounters, Snapshot, Sources, WorkerSource};
use crate::telemetry;
use crate::wire::ethernet::Mac;
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
const RING_SIZE: u32 = 1024;

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
        let pc = PortConfig {
            rx_queues: nworkers,
            tx_queues: nworkers,
            rx_desc: cfg.dataplane.rx_descriptors,
            tx_desc: cfg.dataplane.tx_descriptors,
            rss: nworkers > 1,
            mtu: None,
        };
        let mut port = Port::configure(ifc.port, &pc, &pool)?;
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
    let port_mac = |p: u16| {
        ports
            .iter()
            .find(|x| x.id() == p)
            .and_then(|x| x.mac().ok())
            .map(Mac)
            .unwrap_or_default()
    };

    let groups = match &cfg.dataplane.anchor_groups {
        Some(g) => g.clone(),
        None => groups_by_socket(&eal, workers),
    };
    let mut anchors =
        Anchors::new(&groups).map_err(|e| config_err("dataplane.anchor_groups", e.to_string()))?;
    let backend = crypto_backend(cfg)?;
    eprintln!("espgw: crypto: {}", backend.name());
    let prov = provision::build(cfg, port_mac, &mut anchors, workers, &backend)?;
    for i in &prov.interfaces {
        let name = cfg
            .interfaces
            .iter()
            .find(|c| c.port == i.port)
            .map_or("?", |c| c.name.as_str());
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
    let mut rings: Vec<Vec<Option<Arc<Ring>>>> = vec![vec![None; n]; n];
    for (from, row) in rings.iter_mut().enumerate() {
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
    let (ev_tx, ev_rx) = crossbeam::channel::bounded(4096);
    let mut links = Vec::new();
    let mut runners = Vec::new();
    let mut sources = Vec::new();
    let mut handoff_sources = Vec::new();
    for ((index, &lcore), initial) in workers.iter().enumerate().zip(prov.commands) {
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
        let (cmd_tx, cmd_rx) = crossbeam::channel::bounded(initial.len() + 4096);
        for c in initial {
            cmd_tx
                .try_send(c)
                .map_err(|_| AppError::Other("command channel full at start".into()))?;
        }
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
        let stats = Arc::new(StatBlock::default());
        let run_time = Arc::new(RunTime::default());
        let handoff_stats = Arc::new(HandoffStats::new(n));
        sources.push(WorkerSource {
            lcore,
            stats: stats.clone(),
            run_time: run_time.clone(),
        });
        handoff_sources.push(handoff_stats.clone());
        links.push(WorkerLink {
            commands: cmd_tx,
            punt: punt.clone(),
            inject: inject.clone(),
        });
        let mut fwd = Forwarder::new(q, stats);
        if let Backend::Cryptodev(dev) = &backend {
            match dev.queue(q) {
                Some(Ok(queue)) => fwd.set_crypto_queue(queue),
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
            commands: cmd_rx,
            events: ev_tx.clone(),
            punt,
            inject,
            handoff_out: rings[index].clone(),
            handoff_in: (0..n)
                .filter_map(|from| rings[from][index].clone())
                .collect(),
            handoff_stats,
            stop: stop.clone(),
            poll_sleep: Duration::from_micros(u64::from(cfg.dataplane.poll_sleep_us)),
            run_time,
        });
    }
    let mut main = MainLcore::new(prov.interfaces.clone(), links, ev_rx);
    let sources = Arc::new(Sources {
        workers: sources,
        handoff: handoff_sources,
        main: main.stats.clone(),
        sas: prov.sas,
        anchors,
        ports: cfg
            .interfaces
            .iter()
            .map(|i| (i.port, i.name.clone()))
            .collect(),
        crypto: backend.name(),
    });
    telemetry::install(sources.clone())?;

    for w in runners {
        let lcore = w.lcore;
        dpdk_sys::lcore::launch(lcore, move || w.run())?;
    }
    eprintln!("espgw: forwarding on {} worker(s); Ctrl-C stops", nworkers);

    // Ask for the next hops we will need before the first packet does.
    let is_static = |a| cfg.neighbors.iter().any(|(n, _)| *n == a);
    let gateways = cfg.routes.iter().filter_map(|r| match r.via {
        RouteVia::Gateway { port, via } => Some((port, via)),
        RouteVia::Tunnel(_) => None,
    });
    let peers = cfg.tunnels.iter().filter_map(|t| {
        cfg.interface_for(t.encap.remote)
            .map(|i| (i.port, t.encap.remote))
    });
    for (port, addr) in gateways.chain(peers) {
        if !is_static(addr) {
            main.resolve(&pool, port, addr);
        }
    }

    let mut last_rx = 0;
    let mut last_change = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let work = main.poll(&pool);
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
    main.drain();

    let snap = sources.snapshot(|p| {
        ports
            .iter()
            .find(|x| x.id() == p)
            .and_then(|x| x.stats().ok())
            .map(PortCounters::from)
            .unwrap_or_default()
    });
    if let Some(path) = &opts.stats_file {
        write_stats(path, &snap)?;
    }
    for mut p in ports {
        let _ = p.stop();
    }
    Ok(snap)
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

/// Sessions beyond the configured SAs, for SAs added while running (rekeys).
const SPARE_SESSIONS: u32 = 1024;

/// The AEAD backend the configuration asks for: the `crypto_aesni_gcm` device where it can be
/// had (`auto` falls back to `ring` and says why), or `ring`.
fn crypto_backend(cfg: &Config) -> Result<Backend, AppError> {
    let sessions = (cfg.manual_sas.len() as u32).saturating_add(SPARE_SESSIONS);
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
