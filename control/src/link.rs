//! The control process's end of the channel to one dataplane: it attaches to the segment the
//! dataplane made, notices when the dataplane restarted (a new segment, a new generation),
//! sends changes and waits until each is answered (in force on every worker, or refused).
//!
//! Synchronous on purpose: one thread owns the link (`daemon`), and nothing here blocks
//! longer than the timeout it is given.

use channel::message::{Command, Event};
use channel::segment::{Rx, Tx};
use channel::{Change, RingId, Segment, SendError};
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The dataplane is taken as gone when its heartbeat has not moved for this long.
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_micros(200);

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("no dataplane attached ({0})")]
    NotAttached(String),
    #[error("the dataplane did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the dataplane restarted during the request")]
    Restarted,
    #[error("channel: {0}")]
    Channel(String),
}

/// How the dataplane answered one change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// In force on every worker (`changed` false: it already was).
    Applied {
        changed: bool,
        generation: u64,
    },
    Refused(String),
}

/// What the link knows of its dataplane, for `/v1/health` and the CLI.
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct LinkStatus {
    pub channel: String,
    pub attached: bool,
    pub generation: Option<u64>,
    pub dataplane_pid: Option<u32>,
    /// Milliseconds since the dataplane's heartbeat last moved.
    pub heartbeat_age_ms: Option<u64>,
    pub alive: bool,
}

#[derive(Debug, Clone, Copy, Default, serde::Serialize, utoipa::ToSchema)]
pub struct LinkStats {
    pub attaches: u64,
    pub changes_sent: u64,
    pub refused: u64,
    pub resyncs: u64,
    /// Events the dataplane sent on its own (SA limits, ACQUIRE).
    pub notices: u64,
    pub malformed_reported: u64,
    /// IKE datagrams the dataplane punted to us, and datagrams we injected.
    pub punted: u64,
    pub injected: u64,
}

struct Attached {
    seg: Segment,
    inode: u64,
    tx: Tx,
    rx: Rx,
    punt: Rx,
    inject: Tx,
    beat: u64,
    beat_seen: Instant,
}

pub struct Link {
    path: PathBuf,
    att: Option<Attached>,
    next_id: u64,
    pub stats: LinkStats,
    /// What the dataplane reported on its own since the last `take_notices`.
    notices: Vec<Event>,
    /// Events read while waiting for room to send, not yet looked at.
    inbox: Vec<Event>,
}

impl Link {
    pub fn new(path: &Path) -> Link {
        // Ids a predecessor may have used are not answered to us: start far from them.
        let start = crate::store::now().wrapping_mul(1 << 20);
        Link {
            path: path.into(),
            att: None,
            next_id: start,
            stats: LinkStats::default(),
            notices: Vec::new(),
            inbox: Vec::new(),
        }
    }

    pub fn status(&self) -> LinkStatus {
        let mut s = LinkStatus {
            channel: self.path.display().to_string(),
            ..Default::default()
        };
        if let Some(a) = &self.att {
            let age = a.beat_seen.elapsed();
            s.attached = true;
            s.generation = Some(a.seg.generation());
            s.dataplane_pid = Some(a.seg.dataplane_pid());
            s.heartbeat_age_ms = Some(age.as_millis() as u64);
            s.alive = age < HEARTBEAT_TIMEOUT;
        }
        s
    }

    /// Keeps the link current: attaches when a ready segment is there and this link has none
    /// or an older one (the dataplane restarted). `Some(generation)` when it has just
    /// attached: the caller then sends its whole state (`resync`).
    pub fn check(&mut self) -> Result<Option<u64>, LinkError> {
        let inode = std::fs::metadata(&self.path).map(|m| m.ino()).ok();
        if let Some(a) = &mut self.att {
            let beat = a.seg.heartbeat();
            if beat != a.beat {
                a.beat = beat;
                a.beat_seen = Instant::now();
            }
            if Some(a.inode) == inode {
                return Ok(None);
            }
            // The file was replaced: a new start of the dataplane.
            self.att = None;
        }
        let Some(inode) = inode else {
            return Ok(None);
        };
        let seg = match Segment::attach(&self.path) {
            Ok(s) => s,
            Err(e) => return Err(LinkError::Channel(e.to_string())),
        };
        if !seg.is_ready() {
            return Ok(None);
        }
        let err = |e: channel::SegmentError| LinkError::Channel(e.to_string());
        let tx = seg.producer(RingId::Commands).map_err(err)?;
        let rx = seg.consumer(RingId::Events).map_err(err)?;
        let punt = seg.consumer(RingId::Punt).map_err(err)?;
        let inject = seg.producer(RingId::Inject).map_err(err)?;
        let generation = seg.generation();
        self.att = Some(Attached {
            beat: seg.heartbeat(),
            beat_seen: Instant::now(),
            seg,
            inode,
            tx,
            rx,
            punt,
            inject,
        });
        self.stats.attaches += 1;
        self.send(&Command::Hello {
            pid: std::process::id(),
        })?;
        Ok(Some(generation))
    }

    fn attached(&mut self) -> Result<&mut Attached, LinkError> {
        let path = self.path.display().to_string();
        self.att.as_mut().ok_or(LinkError::NotAttached(path))
    }

    fn send(&mut self, cmd: &Command) -> Result<(), LinkError> {
        let deadline = Instant::now() + HEARTBEAT_TIMEOUT;
        loop {
            let a = self.attached()?;
            match a.tx.send(cmd) {
                Ok(()) => return Ok(()),
                // The dataplane takes a few hundred commands a millisecond: wait for room.
                Err(SendError::Ring(channel::ring::RingError::Full)) => {
                    if Instant::now() > deadline {
                        return Err(LinkError::Timeout(HEARTBEAT_TIMEOUT));
                    }
                    // Answers keep coming while we wait: kept for whoever waits for them.
                    let got = self.drain_some();
                    self.inbox.extend(got);
                    std::thread::sleep(POLL);
                }
                Err(e) => return Err(LinkError::Channel(e.to_string())),
            }
        }
    }

    /// Reads what waits on the events ring without waiting (after what `send` kept aside);
    /// answers to ids not asked are dropped by the caller (a predecessor's).
    fn drain_some(&mut self) -> Vec<Event> {
        let mut out = std::mem::take(&mut self.inbox);
        let Some(a) = self.att.as_mut() else {
            return out;
        };
        loop {
            match a.rx.recv::<Event>() {
                Ok(Some(e)) => out.push(e),
                Ok(None) => break,
                Err(e) => {
                    eprintln!("espgw-control: events ring: {e}");
                    if matches!(e, channel::RecvError::Ring(_)) {
                        break;
                    }
                }
            }
        }
        out
    }

    /// Sends every change, then waits until each is answered; the answers in the same order.
    pub fn apply(
        &mut self,
        changes: Vec<Change>,
        timeout: Duration,
    ) -> Result<Vec<Answer>, LinkError> {
        let mut ids = Vec::with_capacity(changes.len());
        let mut answers: HashMap<u64, Answer> = HashMap::new();
        let deadline = Instant::now() + timeout;
        for change in changes {
            let id = self.next_id;
            self.next_id += 1;
            self.send(&Command::Change { id, change })?;
            self.stats.changes_sent += 1;
            ids.push(id);
            for e in self.drain_some() {
                self.answered(e, &mut answers, None);
            }
        }
        self.wait(
            deadline,
            timeout,
            |l, answers: &mut HashMap<u64, Answer>| {
                for e in l.drain_some() {
                    l.answered(e, answers, None);
                }
                ids.iter().all(|i| answers.contains_key(i))
            },
            &mut answers,
        )?;
        Ok(ids.iter().filter_map(|i| answers.remove(i)).collect())
    }

    /// Sends the whole state between `SyncBegin` and `SyncEnd`: the dataplane keeps what it
    /// already has of it untouched and deletes what is not in it. The changes' answers, and how
    /// many objects the dataplane deleted.
    pub fn resync(
        &mut self,
        changes: Vec<Change>,
        timeout: Duration,
    ) -> Result<(Vec<Answer>, u32), LinkError> {
        self.stats.resyncs += 1;
        let begin = self.next_id;
        self.next_id += 1;
        self.send(&Command::SyncBegin { id: begin })?;
        let answers = self.apply(changes, timeout)?;
        let end = self.next_id;
        self.next_id += 1;
        self.send(&Command::SyncEnd { id: end })?;
        let mut deleted = None;
        let deadline = Instant::now() + timeout;
        let mut scratch = HashMap::new();
        self.wait(
            deadline,
            timeout,
            |l, scratch: &mut HashMap<u64, Answer>| {
                for e in l.drain_some() {
                    l.answered(e, scratch, Some((end, &mut deleted)));
                }
                deleted.is_some()
            },
            &mut scratch,
        )?;
        Ok((answers, deleted.unwrap_or(0)))
    }

    fn wait<S>(
        &mut self,
        deadline: Instant,
        timeout: Duration,
        mut done: impl FnMut(&mut Link, &mut S) -> bool,
        state: &mut S,
    ) -> Result<(), LinkError> {
        let generation = self.att.as_ref().map(|a| a.seg.generation());
        loop {
            if done(self, state) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(LinkError::Timeout(timeout));
            }
            let inode = std::fs::metadata(&self.path).map(|m| m.ino()).ok();
            if self.att.as_ref().map(|a| Some(a.inode)) != Some(inode) || generation.is_none() {
                return Err(LinkError::Restarted);
            }
            std::thread::sleep(POLL);
        }
    }

    fn answered(
        &mut self,
        e: Event,
        answers: &mut HashMap<u64, Answer>,
        sync_end: Option<(u64, &mut Option<u32>)>,
    ) {
        match e {
            Event::Applied {
                id,
                generation,
                changed,
            } => {
                answers.insert(
                    id,
                    Answer::Applied {
                        changed,
                        generation,
                    },
                );
            }
            Event::Refused { id, error } => {
                self.stats.refused += 1;
                answers.insert(id, Answer::Refused(error.to_string()));
            }
            Event::SyncDone { id, deleted } => {
                if let Some((end, d)) = sync_end {
                    if id == end {
                        *d = Some(deleted);
                    }
                }
            }
            Event::Welcome { .. } => {}
            Event::Malformed { error } => {
                self.stats.malformed_reported += 1;
                eprintln!("espgw-control: the dataplane could not read a command: {error}");
            }
            e @ (Event::Sa { .. } | Event::Acquire { .. } | Event::Idle { .. }) => {
                self.stats.notices += 1;
                if self.notices.len() < 4096 {
                    self.notices.push(e);
                }
            }
        }
    }

    /// Reads pending events between requests (notices; stray answers are dropped).
    pub fn poll(&mut self) {
        let mut scratch = HashMap::new();
        for e in self.drain_some() {
            self.answered(e, &mut scratch, None);
        }
    }

    /// Hands each datagram the dataplane punted (IKE from the wire) to `f`, up to `max`.
    pub fn punted(&mut self, max: usize, mut f: impl FnMut(&channel::Datagram<'_>)) -> usize {
        let Some(a) = self.att.as_mut() else {
            return 0;
        };
        let mut n = 0;
        while n < max {
            match a.punt.recv_with(|d| d.map(|d| f(&d))) {
                Ok(Some(_)) => n += 1,
                Ok(None) => break,
                Err(e) => {
                    eprintln!("espgw-control: punt ring: {e}");
                    break;
                }
            }
        }
        self.stats.punted += n as u64;
        n
    }

    /// Sends a datagram out through the dataplane (it adds the IPv4 and UDP headers, the
    /// non-ESP marker on a NAT-T port, and routes it). `false` when there is no room now.
    pub fn inject(&mut self, d: &channel::Datagram<'_>) -> Result<bool, LinkError> {
        let a = self.attached()?;
        match a.inject.send(d) {
            Ok(()) => {
                self.stats.injected += 1;
                Ok(true)
            }
            Err(SendError::Ring(channel::ring::RingError::Full)) => Ok(false),
            Err(e) => Err(LinkError::Channel(e.to_string())),
        }
    }

    pub fn take_notices(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.notices)
    }

    /// The segment, for reading the stats region.
    pub fn segment(&self) -> Option<&Segment> {
        self.att.as_ref().map(|a| &a.seg)
    }
}
