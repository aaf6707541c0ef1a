//! The control process's core: one thread owns the running configuration, the commit store and
//! the link to the dataplane, and serves requests from the REST port one at a time, so that
//! commits never interleave. Between requests it keeps the link current: a dataplane that
//! (re)appears gets the whole running state (a resync, which changes nothing it already has).

use crate::diff::diff;
use crate::ike_manager::{IkeManager, Out};
use crate::link::{Answer, Link, LinkError, LinkStats, LinkStatus};
use crate::store::{CommitInfo, Store, StoreError};
use config::Config;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

/// How long a commit waits for the dataplane to have every change in force.
pub const APPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the link is checked between requests.
const TICK: Duration = Duration::from_millis(20);

/// Why a commit changed nothing, or not everything.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The candidate is not a valid configuration: nothing was applied.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// The dataplane refused a change; the running configuration was put back.
    #[error("the dataplane refused {what}; the running configuration was restored")]
    Refused { what: String },
    /// The dataplane refused a clear.
    #[error("the dataplane refused: {0}")]
    Rejected(String),
    #[error("no candidate configuration (PUT /v1/config/candidate first)")]
    NoCandidate,
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a commit did.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct CommitReport {
    /// The commit's sequence number (`None` for `commit check`).
    pub sequence: Option<u64>,
    /// Changes the dataplane was sent (the difference from the running configuration).
    pub changes: usize,
    /// Whether a dataplane was there to take them (if not, it gets them when it comes).
    pub applied: bool,
    /// From the first change sent to the last one in force on every worker, milliseconds.
    pub apply_ms: u64,
}

/// The running configuration's text, if any, and every commit kept, newest first.
pub type Commits = (Option<String>, Vec<CommitInfo>);

/// What the REST port asks the core.
pub enum Request {
    /// Validate `text` (the candidate when `None`) and, unless `check`, apply it and store it.
    Commit {
        text: Option<String>,
        check: bool,
        reply: tokio::sync::oneshot::Sender<Result<CommitReport, CommitError>>,
    },
    /// Keep `text` as the candidate configuration (checked and committed later).
    SetCandidate {
        text: String,
        reply: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
    },
    /// The candidate's text, if any.
    Candidate {
        reply: tokio::sync::oneshot::Sender<Option<String>>,
    },
    /// Commit `rollback n` again.
    Rollback {
        n: usize,
        reply: tokio::sync::oneshot::Sender<Result<CommitReport, CommitError>>,
    },
    /// The running configuration's text (keys included: the API redacts it), and the list.
    Running {
        reply: tokio::sync::oneshot::Sender<Result<Commits, StoreError>>,
    },
    Status {
        reply: tokio::sync::oneshot::Sender<Status>,
    },
    /// The dataplane's latest stats snapshot (the stats region's document).
    Stats {
        reply: tokio::sync::oneshot::Sender<Result<serde_json::Value, String>>,
    },
    /// IKE: its SAs and per-gateway counters.
    Ike {
        reply: tokio::sync::oneshot::Sender<crate::ike_manager::IkeState>,
    },
    /// Deletes IKE SA `index` (every one when `None`); how many.
    IkeClear {
        index: Option<u64>,
        reply: tokio::sync::oneshot::Sender<usize>,
    },
    /// Rekeys IKE SA `index` now; false if it is not up or busy.
    IkeRekey {
        index: u64,
        reply: tokio::sync::oneshot::Sender<bool>,
    },
    /// Starts a VPN's negotiation now.
    IkeInitiate {
        vpn: String,
        reply: tokio::sync::oneshot::Sender<crate::ike_manager::Initiate>,
    },
    /// Changes outside the configuration: clears (counters, SAs).
    Clear {
        changes: Vec<channel::Change>,
        reply: tokio::sync::oneshot::Sender<Result<(), CommitError>>,
    },
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Status {
    pub dataplane: LinkStatus,
    pub link: LinkStats,
    /// Commits since the control process started.
    pub commits: u64,
    /// Whole-state resyncs sent to a dataplane.
    pub resyncs: u64,
}

pub struct Core {
    store: Store,
    running: Option<(String, Config)>,
    /// The candidate configuration (`PUT /v1/config/candidate`), until committed.
    candidate: Option<String>,
    link: Link,
    commits: u64,
    resyncs: u64,
    /// The last channel error printed.
    last_error: Option<String>,
    /// IKE: the negotiated SAs, laid over the configuration's changes.
    ike: IkeManager,
    /// IKE datagrams that found no room (or no dataplane) to leave by.
    ike_unsent: u64,
    /// With `control.ike_transport: "kernel"`: a socket pair per local gateway address.
    kernel: Vec<(std::net::IpAddr, crate::ike_transport::KernelUdp)>,
    /// What the dataplane was last brought to (configuration and IKE together).
    sent: Vec<channel::Change>,
    /// Inbound SA packet counts at the last look (liveness for DPD).
    inbound_seen: std::collections::HashMap<u32, u64>,
    last_stats: std::time::Instant,
}

impl Core {
    /// The core for the configuration `text` (the file given at start): the last commit is the
    /// running configuration; with no commit yet, `text` becomes the first.
    pub fn start(text: String, cfg: &Config) -> Result<Core, String> {
        let store = Store::open(&cfg.control.state_dir).map_err(|e| e.to_string())?;
        let channel = cfg
            .dataplane
            .channel
            .clone()
            .ok_or("dataplane.channel: the control process needs the channel's path")?;
        let running = match store.running().map_err(|e| e.to_string())? {
            Some(t) => {
                let c = Config::parse(&t).map_err(|e| format!("the last commit: {e}"))?;
                Some((t, c))
            }
            None => {
                store.commit(&text).map_err(|e| e.to_string())?;
                Some((text, cfg.clone()))
            }
        };
        let mut ike = IkeManager::default();
        if let Some((_, c)) = &running {
            ike.configure(c, std::time::Instant::now());
        }
        let mut core = Core {
            store,
            running,
            candidate: None,
            link: Link::new(&channel),
            commits: 0,
            resyncs: 0,
            last_error: None,
            ike,
            ike_unsent: 0,
            kernel: Vec::new(),
            sent: Vec::new(),
            inbound_seen: Default::default(),
            last_stats: std::time::Instant::now(),
        };
        if let Some((_, c)) = core.running.clone() {
            core.bind_kernel(&c);
        }
        Ok(core)
    }

    pub fn channel(&self) -> PathBuf {
        PathBuf::from(self.link.status().channel)
    }

    /// Serves `requests` until every sender is gone.
    pub fn run(mut self, requests: mpsc::Receiver<Request>) {
        loop {
            self.tick();
            match requests.recv_timeout(TICK) {
                Ok(r) => self.serve(r),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Keeps the link current, and resyncs a dataplane just attached.
    pub fn tick(&mut self) {
        match self.link.check() {
            Ok(Some(generation)) => {
                self.last_error = None;
                eprintln!("espgw-control: dataplane generation {generation:#x} attached; resync");
                if let Err(e) = self.resync() {
                    eprintln!("espgw-control: resync: {e}");
                }
            }
            Ok(None) => self.link.poll(),
            Err(e) => {
                // Checked every tick: said once until it changes.
                let e = e.to_string();
                if self.last_error.as_deref() != Some(&e) {
                    eprintln!("espgw-control: channel: {e}");
                    self.last_error = Some(e);
                }
            }
        }
        let now = std::time::Instant::now();
        for n in self.link.take_notices() {
            match &n {
                channel::Event::Acquire { tunnel } => self.ike.acquire(tunnel, now),
                channel::Event::Sa {
                    spi,
                    event:
                        channel::message::SaEvent::SoftLimit | channel::message::SaEvent::HardLimit,
                    ..
                } => self.ike.lifetime(*spi, now),
                _ => eprintln!("espgw-control: dataplane: {n:?}"),
            }
        }
        // IKE from the wire.
        let mut datagrams = Vec::new();
        for (_, k) in &mut self.kernel {
            k.recv(256, |l, r, m| datagrams.push((l, r, m.to_vec())));
        }
        self.link.punted(256, |d| {
            datagrams.push((
                std::net::SocketAddr::new(d.dst, d.dport),
                std::net::SocketAddr::new(d.src, d.sport),
                d.payload.to_vec(),
            ));
        });
        for (local, remote, bytes) in datagrams {
            self.ike.datagram(now, local, remote, &bytes);
        }
        if now >= self.last_stats + std::time::Duration::from_secs(1) {
            self.last_stats = now;
            self.liveness(now);
        }
        self.ike.tick(now);
        self.ike_out();
    }

    /// ESP that arrived since the last look tells IKE its peers are alive.
    fn liveness(&mut self, now: std::time::Instant) {
        let Some(Ok(doc)) = self.link.segment().map(|s| s.read_stats()) else {
            return;
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&doc) else {
            return;
        };
        for sa in v["sas"].as_array().into_iter().flatten() {
            if sa["direction"] != "in" {
                continue;
            }
            let (Some(spi), Some(packets)) = (
                sa["spi"]
                    .as_str()
                    .and_then(|s| u32::from_str_radix(s.trim_start_matches("0x"), 16).ok()),
                sa["packets"].as_u64(),
            ) else {
                continue;
            };
            if self.inbound_seen.insert(spi, packets) != Some(packets) && packets > 0 {
                self.ike.heard(spi, now);
            }
        }
    }

    /// What IKE wants done: datagrams injected through the dataplane, and the dataplane
    /// brought in line with the children (before any datagram that follows).
    fn ike_out(&mut self) {
        for o in self.ike.take_out() {
            match o {
                Out::Sync => {
                    if let Err(e) = self.sync() {
                        eprintln!("espgw-control: IKE: installing SAs: {e}");
                    }
                }
                Out::Send(g) if !self.kernel.is_empty() => {
                    let sock = self.kernel.iter().find(|(a, _)| *a == g.path.local.ip());
                    if sock.is_none_or(|(_, k)| k.send(&g).is_err()) {
                        self.ike_unsent += 1;
                    }
                }
                Out::Send(g) => {
                    let d = channel::Datagram {
                        port: 0,
                        src: g.path.local.ip(),
                        dst: g.path.remote.ip(),
                        sport: g.path.local.port(),
                        dport: g.path.remote.port(),
                        payload: &g.bytes,
                    };
                    if !matches!(self.link.inject(&d), Ok(true)) {
                        self.ike_unsent += 1;
                    }
                }
            }
        }
    }

    /// With the kernel transport, binds the IKE ports of every gateway's local address not
    /// bound yet.
    fn bind_kernel(&mut self, cfg: &Config) {
        if cfg.control.ike_transport != config::IkeTransport::Kernel {
            return;
        }
        for g in &cfg.ike.gateways {
            if self.kernel.iter().any(|(a, _)| *a == g.local) {
                continue;
            }
            match crate::ike_transport::KernelUdp::bind(g.local, 500, channel::NATT_PORT) {
                Ok(k) => self.kernel.push((g.local, k)),
                Err(e) => eprintln!("espgw-control: IKE on {}: {e}", g.local),
            }
        }
    }

    /// The configuration's changes with IKE's laid over them.
    fn desired(&self, cfg: &Config) -> Vec<channel::Change> {
        let mut c = config::changes(cfg);
        self.ike.overlay(&mut c);
        c
    }

    /// Brings the dataplane to the running configuration and IKE's SAs (only the difference).
    fn sync(&mut self) -> Result<(), CommitError> {
        let Some((_, cfg)) = &self.running else {
            return Ok(());
        };
        let want = self.desired(cfg);
        if !self.link.status().attached {
            return Ok(());
        }
        let changes = diff(&self.sent, &want);
        if changes.is_empty() {
            return Ok(());
        }
        let kinds: Vec<String> = changes.iter().map(describe).collect();
        let answers = self.link.apply(changes, APPLY_TIMEOUT)?;
        for (i, a) in answers.iter().enumerate() {
            if let Answer::Refused(e) = a {
                eprintln!(
                    "espgw-control: IKE: the dataplane refused {}: {e}",
                    kinds.get(i).map_or("a change", |s| s)
                );
            }
        }
        self.sent = want;
        Ok(())
    }

    /// Sends the running configuration whole; the dataplane keeps what it has of it.
    fn resync(&mut self) -> Result<(), CommitError> {
        let Some((_, cfg)) = &self.running else {
            return Ok(());
        };
        let changes = self.desired(cfg);
        self.sent = changes.clone();
        let started = std::time::Instant::now();
        let (answers, deleted) = self.link.resync(changes, APPLY_TIMEOUT)?;
        let took = started.elapsed();
        self.resyncs += 1;
        let changed = answers
            .iter()
            .filter(|a| matches!(a, Answer::Applied { changed: true, .. }))
            .count();
        let refused: Vec<&String> = answers
            .iter()
            .filter_map(|a| match a {
                Answer::Refused(e) => Some(e),
                _ => None,
            })
            .collect();
        eprintln!(
            "espgw-control: resync: {} changes, {changed} installed, {deleted} stale objects deleted, in force in {} ms",
            answers.len(),
            took.as_millis()
        );
        for e in refused {
            eprintln!("espgw-control: resync: refused: {e}");
        }
        Ok(())
    }

    pub fn serve(&mut self, r: Request) {
        match r {
            Request::Commit { text, check, reply } => {
                let from_candidate = text.is_none();
                let r = match text.or_else(|| self.candidate.clone()) {
                    Some(t) => self.commit(t, check),
                    None => Err(CommitError::NoCandidate),
                };
                if from_candidate && !check && r.is_ok() {
                    self.candidate = None;
                }
                let _ = reply.send(r);
            }
            Request::SetCandidate { text, reply } => {
                self.candidate = Some(text);
                let _ = reply.send(Ok(()));
            }
            Request::Candidate { reply } => {
                let _ = reply.send(self.candidate.clone());
            }
            Request::Rollback { n, reply } => {
                let r = self
                    .store
                    .get(n)
                    .map_err(CommitError::from)
                    .and_then(|t| self.commit(t, false));
                let _ = reply.send(r);
            }
            Request::Running { reply } => {
                let list = self.store.list();
                let _ = reply.send(list.map(|l| (self.running.as_ref().map(|r| r.0.clone()), l)));
            }
            Request::Stats { reply } => {
                let r = match self.link.segment() {
                    None => Err("no dataplane attached".to_string()),
                    Some(seg) => seg
                        .read_stats()
                        .map_err(|e| e.to_string())
                        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string())),
                };
                let _ = reply.send(r);
            }
            Request::Clear { changes, reply } => {
                let r = self
                    .link
                    .apply(changes, APPLY_TIMEOUT)
                    .map_err(CommitError::from)
                    .and_then(|answers| {
                        match answers.into_iter().find_map(|a| match a {
                            Answer::Refused(e) => Some(e),
                            _ => None,
                        }) {
                            Some(what) => Err(CommitError::Rejected(what)),
                            None => Ok(()),
                        }
                    });
                let _ = reply.send(r);
            }
            Request::Ike { reply } => {
                let _ = reply.send(self.ike.state(std::time::Instant::now()));
            }
            Request::IkeClear { index, reply } => {
                let n = self.ike.clear(index, std::time::Instant::now());
                self.ike_out();
                let _ = reply.send(n);
            }
            Request::IkeRekey { index, reply } => {
                let ok = self.ike.rekey(index, std::time::Instant::now());
                self.ike_out();
                let _ = reply.send(ok);
            }
            Request::IkeInitiate { vpn, reply } => {
                let ok = self.ike.initiate(&vpn, std::time::Instant::now());
                self.ike_out();
                let _ = reply.send(ok);
            }
            Request::Status { reply } => {
                let _ = reply.send(Status {
                    dataplane: self.link.status(),
                    link: self.link.stats,
                    commits: self.commits,
                    resyncs: self.resyncs,
                });
            }
        }
    }

    /// Junos commit: the candidate validated whole first (a bad one changes nothing and the
    /// error names the field), then only its difference from the running one applied, then
    /// stored. If the dataplane refuses a change, the running configuration is put back.
    pub fn commit(&mut self, text: String, check: bool) -> Result<CommitReport, CommitError> {
        let cand = Config::parse(&text).map_err(|e| CommitError::Invalid {
            field: e.field,
            reason: e.reason,
        })?;
        crate::ike_manager::validate(&cand)
            .map_err(|(field, reason)| CommitError::Invalid { field, reason })?;
        if let Some((_, run)) = &self.running {
            if cand.dataplane.channel != run.dataplane.channel {
                return Err(CommitError::Invalid {
                    field: "dataplane.channel".into(),
                    reason: "takes effect at a restart of both processes, not at a commit".into(),
                });
            }
        }
        let want = self.desired(&cand);
        let changes = diff(&self.sent, &want);
        let n = changes.len();
        if check {
            return Ok(CommitReport {
                sequence: None,
                changes: n,
                applied: false,
                apply_ms: 0,
            });
        }
        let attached = self.link.status().attached;
        let started = std::time::Instant::now();
        if attached && n > 0 {
            let kinds: Vec<String> = changes.iter().map(describe).collect();
            let answers = self.link.apply(changes, APPLY_TIMEOUT)?;
            if let Some((i, Answer::Refused(e))) = answers
                .iter()
                .enumerate()
                .find(|(_, a)| matches!(a, Answer::Refused(_)))
            {
                let what = format!("{} ({e})", kinds.get(i).map_or("a change", |s| s));
                if let Err(e) = self.resync() {
                    eprintln!("espgw-control: restoring the running configuration: {e}");
                }
                return Err(CommitError::Refused { what });
            }
        }
        let seq = self.store.commit(&text)?;
        self.sent = want;
        self.ike.configure(&cand, std::time::Instant::now());
        self.bind_kernel(&cand);
        self.running = Some((text, cand));
        self.commits += 1;
        self.ike_out();
        Ok(CommitReport {
            sequence: Some(seq),
            changes: n,
            applied: attached,
            apply_ms: started.elapsed().as_millis() as u64,
        })
    }
}

/// A change, named for an operator.
fn describe(c: &channel::Change) -> String {
    use channel::Change::*;
    match c {
        SetInterface(s) => format!("interface {}", s.name),
        DeleteInterface { name } => format!("the delete of interface {name}"),
        SetNeighbor { addr, .. } => format!("neighbor {addr}"),
        DeleteNeighbor { addr } => format!("the delete of neighbor {addr}"),
        SetRoute { prefix, .. } => format!("route {prefix}"),
        DeleteRoute { prefix } => format!("the delete of route {prefix}"),
        SetTunnel(s) => format!("tunnel {}", s.name),
        DeleteTunnel { name } => format!("the delete of tunnel {name}"),
        SetOutboundSa(s) => format!("outbound SA {:#x}", s.sa.spi),
        DeleteOutboundSa { tunnel } => format!("the delete of tunnel {tunnel}'s outbound SA"),
        SetInboundSa(s) => format!("inbound SA {:#x}", s.sa.spi),
        DeleteInboundSa { spi } => format!("the delete of inbound SA {spi:#x}"),
        ClearCounters(_) => "a clear of counters".into(),
        SetPolicy(p) => format!("policy {}", p.name),
        DeletePolicy { name } => format!("the delete of policy {name}"),
    }
}
