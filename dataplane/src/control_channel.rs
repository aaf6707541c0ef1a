//! The dataplane's end of the shared-memory channel (`channel::segment`): the main lcore takes
//! the control process's commands, applies each through the control state as the JSON loader
//! does, and answers on the events ring once the change is in force on every worker. It also
//! passes on what the control state reports (SA limits, ACQUIRE), and beats the heartbeat.
//!
//! Nothing the control sends can stop the dataplane: an undecodable command is counted and
//! answered with `Malformed`; a refused change with `Refused`, nothing of it applied. When the
//! events ring is full the answers wait here, in order, and go out when there is room.

use crate::control_state::ControlState;
use channel::message::{error_text, Command, Event};
use channel::{Layout, RecvError, RingId, Segment, SegmentError, SendError};
use std::collections::VecDeque;
use std::path::Path;
use std::time::Instant;

/// Commands taken per poll, so that a flood of them does not hold the main lcore long.
const COMMANDS_PER_POLL: usize = 256;
/// Events kept while the control does not read them; beyond, the oldest are dropped (a control
/// that comes back resyncs anyway).
const MAX_BACKLOG: usize = 1 << 16;

/// What the channel counted.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct ChannelStats {
    pub commands: u64,
    pub changes_applied: u64,
    pub changes_unchanged: u64,
    pub changes_refused: u64,
    pub malformed: u64,
    pub events_sent: u64,
    pub events_dropped: u64,
    pub ring_errors: u64,
    /// IKE datagrams given to the control, and those the punt ring had no room for.
    pub punted: u64,
    pub punt_drops: u64,
    /// Datagrams the control sent, and those that could not be (undecodable, not from one
    /// of our addresses, no buffer).
    pub injected: u64,
    pub inject_errors: u64,
}

/// A result to send once the change is in force everywhere.
#[derive(Debug, Clone, Copy)]
struct InForce {
    generation: u64,
    event: Answer,
}

#[derive(Debug, Clone, Copy)]
enum Answer {
    Applied { id: u64, changed: bool },
    SyncDone { id: u64, deleted: u32 },
}

pub struct ControlChannel {
    segment: Segment,
    commands: channel::segment::Rx,
    events: channel::segment::Tx,
    punt: channel::segment::Tx,
    inject: channel::segment::Rx,
    waiting: VecDeque<InForce>,
    backlog: VecDeque<Event>,
    started: Instant,
    /// The commands ring's indexes made no sense: reported once, then left alone.
    broken: bool,
    pub stats: ChannelStats,
}

impl ControlChannel {
    /// Creates the segment at `path` for this start of the dataplane, and from now on runs
    /// `control`'s outbound SAs on sequence-number grants published in it, resuming above
    /// those the previous start left there.
    pub fn create(
        path: &Path,
        layout: Layout,
        control: &mut ControlState,
    ) -> Result<ControlChannel, SegmentError> {
        let previous = Segment::previous_grants(path);
        let windows = Segment::previous_windows(path);
        let segment = Segment::create(path, layout)?;
        control.use_grants(segment.clone(), previous, windows);
        let commands = segment.consumer(RingId::Commands)?;
        let events = segment.producer(RingId::Events)?;
        let punt = segment.producer(RingId::Punt)?;
        let inject = segment.consumer(RingId::Inject)?;
        Ok(ControlChannel {
            segment,
            commands,
            events,
            punt,
            inject,
            waiting: VecDeque::new(),
            backlog: VecDeque::new(),
            started: Instant::now(),
            broken: false,
            stats: ChannelStats::default(),
        })
    }

    pub fn segment(&self) -> &Segment {
        &self.segment
    }

    /// Beats, takes waiting commands, answers what is now in force, and sends waiting events;
    /// how much work there was.
    pub fn poll(&mut self, control: &mut ControlState) -> usize {
        self.segment.beat(self.started.elapsed().as_millis() as u64);
        let mut work = 0;
        while !self.broken && work < COMMANDS_PER_POLL {
            match self.commands.recv::<Command>() {
                Ok(None) => break,
                Ok(Some(cmd)) => self.command(cmd, control),
                Err(RecvError::Ring(e)) => {
                    self.broken = true;
                    self.stats.ring_errors += 1;
                    eprintln!(
                        "espgw: channel {}: commands ring: {e}; no more commands until restart",
                        self.segment.path().display()
                    );
                }
                Err(e) => {
                    self.stats.malformed += 1;
                    self.event(Event::Malformed {
                        error: error_text(&e.to_string()),
                    });
                }
            }
            work += 1;
        }
        while let Some(w) = self.waiting.front() {
            if !control.in_force(w.generation) {
                break;
            }
            let event = match w.event {
                Answer::Applied { id, changed } => Event::Applied {
                    id,
                    generation: w.generation,
                    changed,
                },
                Answer::SyncDone { id, deleted } => Event::SyncDone { id, deleted },
            };
            self.waiting.pop_front();
            self.event(event);
            work += 1;
        }
        for e in control.take_notices() {
            self.event(e);
            work += 1;
        }
        work + self.flush()
    }

    fn command(&mut self, cmd: Command, control: &mut ControlState) {
        self.stats.commands += 1;
        match cmd {
            Command::Hello { pid } => {
                self.segment.set_control(pid, 0);
                self.event(Event::Welcome {
                    generation: self.segment.generation(),
                    pid: std::process::id(),
                });
            }
            Command::Change { id, change } => match control.apply(change) {
                Ok(a) => {
                    if a.changed {
                        self.stats.changes_applied += 1;
                    } else {
                        self.stats.changes_unchanged += 1;
                    }
                    self.waiting.push_back(InForce {
                        generation: a.generation,
                        event: Answer::Applied {
                            id,
                            changed: a.changed,
                        },
                    });
                }
                Err(e) => {
                    self.stats.changes_refused += 1;
                    self.event(Event::Refused {
                        id,
                        error: error_text(&e.to_string()),
                    });
                }
            },
            Command::SyncBegin { id } => {
                control.sync_begin();
                self.waiting.push_back(InForce {
                    generation: control.generation(),
                    event: Answer::Applied { id, changed: false },
                });
            }
            Command::SyncEnd { id } => {
                let (deleted, generation) = control.sync_end();
                self.waiting.push_back(InForce {
                    generation,
                    event: Answer::SyncDone { id, deleted },
                });
            }
        }
    }

    /// Gives a datagram for the gateway itself to the control; counted, and dropped when the
    /// ring is full (IKE retransmits).
    pub fn punt(&mut self, d: &channel::Datagram<'_>) {
        match self.punt.send(d) {
            Ok(()) => self.stats.punted += 1,
            Err(_) => self.stats.punt_drops += 1,
        }
    }

    /// Hands up to `max` datagrams the control sent to `send` (which builds and routes each,
    /// and says whether it could); how many there were.
    pub fn injected(
        &mut self,
        max: usize,
        mut send: impl FnMut(&channel::Datagram<'_>) -> bool,
    ) -> usize {
        let mut n = 0;
        while n < max {
            let r = self.inject.recv_with(|d| match d {
                Ok(d) => send(&d),
                Err(_) => false,
            });
            match r {
                Ok(None) => break,
                Ok(Some(true)) => self.stats.injected += 1,
                Ok(Some(false)) | Err(RecvError::Slot(_)) | Err(RecvError::Decode(_)) => {
                    self.stats.inject_errors += 1
                }
                Err(RecvError::Ring(_)) => {
                    self.stats.ring_errors += 1;
                    break;
                }
            }
            n += 1;
        }
        n
    }

    /// Sends an event now, or after those already waiting.
    pub fn event(&mut self, e: Event) {
        if self.backlog.is_empty() {
            match self.events.send(&e) {
                Ok(()) => {
                    self.stats.events_sent += 1;
                    return;
                }
                Err(SendError::Ring(channel::ring::RingError::Full)) => {}
                Err(err) => {
                    self.stats.events_dropped += 1;
                    eprintln!("espgw: channel: event not sent: {err}");
                    return;
                }
            }
        }
        if self.backlog.len() >= MAX_BACKLOG {
            self.backlog.pop_front();
            self.stats.events_dropped += 1;
        }
        self.backlog.push_back(e);
    }

    /// Sends the waiting events while there is room; how many went.
    fn flush(&mut self) -> usize {
        let mut sent = 0;
        while let Some(e) = self.backlog.front() {
            match self.events.send(e) {
                Ok(()) => {
                    self.stats.events_sent += 1;
                    sent += 1;
                }
                Err(SendError::Ring(channel::ring::RingError::Full)) => break,
                Err(_) => self.stats.events_dropped += 1,
            }
            self.backlog.pop_front();
        }
        sent
    }
}

#[cfg(test)]
mod tests;
