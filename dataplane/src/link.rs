//! The link between the main lcore and one worker, both ends. Commands go one way, each tagged
//! with the generation of its change; the worker applies them between bursts and publishes the
//! last generation it applied, so the main lcore knows when a change is in force everywhere.
//! The other way go the events of the worker's traffic and the SAs it retired.
//!
//! No command is ever dropped: one that does not fit the channel waits in the main lcore's
//! backlog, in order, and is sent again (`MainEnd::flush`). Retired SAs are never dropped
//! either (their channel is unbounded; there are never more than the SAs there are).

use crate::forward::{Envelope, Event, Forwarder, Retired, WorkerCommand};
use crossbeam::channel::{self, Receiver, Sender, TryRecvError, TrySendError};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Commands a worker applies per round of its loop, so a flood of changes cannot starve the
/// packets: a round's pause stays in microseconds while 10 000 tunnels arrive at full rate
/// (scripts/bench-control.sh), well inside what an RX ring of 1024 descriptors absorbs.
pub const COMMANDS_PER_ROUND: usize = 16;

/// A link of `capacity` commands in flight.
pub fn pair(capacity: usize) -> (MainEnd, WorkerEnd) {
    let (cmd_tx, cmd_rx) = channel::bounded(capacity.max(1));
    let (ev_tx, ev_rx) = channel::bounded(4096);
    let (ret_tx, ret_rx) = channel::unbounded();
    let applied = Arc::new(AtomicU64::new(0));
    (
        MainEnd {
            commands: cmd_tx,
            backlog: VecDeque::new(),
            sent: 0,
            applied: applied.clone(),
            events: ev_rx,
            retired: ret_rx,
        },
        WorkerEnd {
            commands: cmd_rx,
            applied,
            events: ev_tx,
            retired: ret_tx,
            retiring: Vec::with_capacity(COMMANDS_PER_ROUND),
        },
    )
}

/// The main lcore's end.
pub struct MainEnd {
    commands: Sender<Envelope>,
    backlog: VecDeque<Envelope>,
    /// The generation of the last command sent (or waiting in the backlog).
    sent: u64,
    applied: Arc<AtomicU64>,
    pub events: Receiver<Event>,
    pub retired: Receiver<Retired>,
}

impl MainEnd {
    /// Sends a command of change `generation`, or keeps it for `flush` if the channel is full.
    pub fn send(&mut self, generation: u64, command: WorkerCommand) {
        self.sent = generation;
        let e = Envelope {
            generation,
            command,
        };
        if !self.backlog.is_empty() {
            self.backlog.push_back(e);
            return;
        }
        match self.commands.try_send(e) {
            Ok(()) => {}
            Err(TrySendError::Full(e)) | Err(TrySendError::Disconnected(e)) => {
                self.backlog.push_back(e)
            }
        }
    }

    /// Sends what waits in the backlog, in order, as far as the channel takes it; how many
    /// are still waiting.
    pub fn flush(&mut self) -> usize {
        while let Some(e) = self.backlog.pop_front() {
            match self.commands.try_send(e) {
                Ok(()) => {}
                Err(TrySendError::Full(e)) | Err(TrySendError::Disconnected(e)) => {
                    self.backlog.push_front(e);
                    break;
                }
            }
        }
        self.backlog.len()
    }

    /// The last generation the worker applied.
    pub fn applied(&self) -> u64 {
        self.applied.load(Ordering::Acquire)
    }

    /// Whether the worker has applied everything up to `generation` that was sent to it.
    pub fn in_force(&self, generation: u64) -> bool {
        self.applied() >= generation.min(self.sent)
    }

    /// The published generation, for whoever else wants to watch it (telemetry).
    pub fn applied_handle(&self) -> Arc<AtomicU64> {
        self.applied.clone()
    }
}

/// A worker's end.
pub struct WorkerEnd {
    commands: Receiver<Envelope>,
    applied: Arc<AtomicU64>,
    events: Sender<Event>,
    retired: Sender<Retired>,
    /// What the commands just applied retired, on its way to the main lcore.
    retiring: Vec<Retired>,
}

impl WorkerEnd {
    /// Applies up to `max` waiting commands to `fwd`, publishes the generation applied, and
    /// sends back what they retired. Returns how many it applied.
    pub fn apply(&mut self, fwd: &mut Forwarder, max: usize) -> usize {
        // The usual round: nothing waits (one look at the channel).
        if self.commands.is_empty() {
            return 0;
        }
        let mut n = 0;
        let mut last = None;
        while n < max {
            match self.commands.try_recv() {
                Ok(e) => {
                    fwd.apply(e.command, &mut self.retiring);
                    last = Some(e.generation);
                    n += 1;
                }
                Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => break,
            }
        }
        if let Some(g) = last {
            self.applied.store(g, Ordering::Release);
        }
        for r in self.retiring.drain(..) {
            // The main lcore keeps its receiver as long as any worker runs.
            let _ = self.retired.send(r);
        }
        n
    }

    /// Sends the events of the last burst; a full channel drops them (what they report
    /// recurs: a next hop still unresolved asks again).
    pub fn report(&mut self, fwd: &mut Forwarder) {
        for e in fwd.events.drain(..) {
            let _ = self.events.try_send(e);
        }
    }

    /// Gives every SA the worker holds back to the main lcore (the worker is stopping).
    pub fn retire_all(&mut self, fwd: &mut Forwarder) {
        fwd.apply(WorkerCommand::RetireAll, &mut self.retiring);
        for r in self.retiring.drain(..) {
            let _ = self.retired.send(r);
        }
    }
}
