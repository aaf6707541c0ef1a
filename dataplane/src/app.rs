//! Brings the dataplane up from a validated configuration, runs it until it is told to stop
//! (signal or idle timeout), and takes it down, leaving a stats snapshot.

use crate::config::{Config, RouteVia};
use crate::counters::{Stat, StatBlock};
use crate::forward::Forwarder;
use crate::main_lcore::{MainLcore, WorkerLink};
use crate::provision;
use crate::stats::{PortCounters, Snapshot, Sources, WorkerSource};
use crate::telemetry;
use crate::wire::ethernet::Mac;
use crate::worker::{RunTime, Worker};
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
    let nworkers = cfg.dataplane.workers.len() as u16;
    let pool = Mempool::pktmbuf(
        "espgw_mbufs",
        cfg.dataplane.mbufs,
        256,
        MBUF_DATA_ROOM,
        eal.lcore_socket(main_lcore),
    )?;

    let mut ports: Vec<Port> = Vec::new();
    for (i, ifc) in cfg.interfaces.iter().enumerate() {
        let pc = PortConfig {
            rx_queues: nworkers,
            tx_queues: nworkers,
            rx_desc: cfg.dataplane.rx_descriptors,
            tx_desc: cfg.dataplane.tx_descriptors,
            rss: nworkers > 1,
            mtu: None,
        };
        let mut port = Port::configure(ifc.port, &pc, &pool)?;
        if port.rx_queues() < nworkers || port.tx_queues() < nworkers {
            return Err(config_err(
                format!("interfaces[{i}].port"),
                format!(
                    "port {} offers {} RX / {} TX queues, {nworkers} needed",
                    ifc.port,
                    port.rx_queues(),
                    port.tx_queues()
                ),
            ));
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
    let port_mac = |p: u16| {
        ports
            .iter()
            .find(|x| x.id() == p)
            .and_then(|x| x.mac().ok())
            .map(Mac)
            .unwrap_or_default()
    };
    let prov = provision::build(cfg, port_mac)?;
    for i in &prov.interfaces {
        let name = cfg
            .interfaces
            .iter()
            .find(|c| c.port == i.port)
            .map_or("?", |c| c.name.as_str());
        eprintln!(
            "espgw: {name}: port {} {} mac {} mtu {}",
            i.port,
            ipnet::Ipv4Net::new(i.addr, i.prefix_len)
                .map(|n| n.to_string())
                .unwrap_or_default(),
            i.mac,
            i.mtu
        );
    }

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The first signal stops cleanly; a second one, if the stop hangs, exits at once.
        signal_hook::flag::register_conditional_shutdown(sig, 1, stop.clone())?;
        signal_hook::flag::register(sig, stop.clone())?;
    }

    let (ev_tx, ev_rx) = crossbeam::channel::bounded(4096);
    let mut links = Vec::new();
    let mut workers = Vec::new();
    let mut sources = Vec::new();
    let mut commands = Some(prov.commands);
    for (q, &lcore) in cfg.dataplane.workers.iter().enumerate() {
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
        let initial = commands.take().unwrap_or_default();
        let (cmd_tx, cmd_rx) = crossbeam::channel::bounded(initial.len() + 4096);
        for c in initial {
            cmd_tx
                .try_send(c)
                .map_err(|_| AppError::Other("command channel full at start".into()))?;
        }
        let stats = Arc::new(StatBlock::default());
        let run_time = Arc::new(RunTime::default());
        sources.push(WorkerSource {
            lcore,
            stats: stats.clone(),
            run_time: run_time.clone(),
        });
        links.push(WorkerLink {
            commands: cmd_tx,
            punt: punt.clone(),
            inject: inject.clone(),
        });
        workers.push(Worker {
            lcore,
            queue: q as u16,
            ports: cfg.interfaces.iter().map(|i| i.port).collect(),
            fwd: Forwarder::new(stats),
            commands: cmd_rx,
            events: ev_tx.clone(),
            punt,
            inject,
            stop: stop.clone(),
            poll_sleep: Duration::from_micros(u64::from(cfg.dataplane.poll_sleep_us)),
            run_time,
        });
    }
    let mut main = MainLcore::new(prov.interfaces.clone(), links, ev_rx);
    let sources = Arc::new(Sources {
        workers: sources,
        main: main.stats.clone(),
        sas: prov.sas,
        ports: cfg
            .interfaces
            .iter()
            .map(|i| (i.port, i.name.clone()))
            .collect(),
    });
    telemetry::install(sources.clone())?;

    for w in workers {
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
