//! Forwarding like a router: interfaces, neighbors, routes, and the per-packet pipeline that
//! ties them to ESP. A `Forwarder` is one worker's private state, made of parts that each own
//! their state:
//! - `tables` ([`Tables`]): what the worker forwards by, changed only by `WorkerCommand`s
//!   applied between bursts;
//! - `batch` (`CryptoBatch`): the burst's parked crypto jobs and the worker's queue pair;
//! - what the burst found out for the main lcore (`events`), and the worker's counters.
//!
//! A burst runs in two steps (librte_ipsec's prepare and process): each packet goes through
//! the pipeline (`receive`, `resume` or `output_ip`) up to its crypto, which is parked
//! (`Verdict::Crypto`); then `complete` runs the parked crypto per SA and takes each parked
//! packet the rest of its way. The pipeline itself is in `input` (IPv4, UDP and ESP input,
//! local delivery) and `output` (routing, next hops, tunnel output); IPv6, which a frame's
//! ethertype sends apart once, in `ipv6` (input, local delivery, forwarding).

pub mod arp;
pub(crate) mod batch;
pub mod command;
pub mod handoff;
pub mod ike;
mod input;
mod ipv6;
mod lookahead;
pub mod lpm;
pub mod lpm6;
pub mod nd;
pub mod neighbor;
mod output;
pub mod policy;
mod spi_table;
pub mod tables;

pub use batch::Parked;
pub use command::{Envelope, Event, Retired, WorkerCommand};
pub use handoff::{Resume, ResumeTag};
pub use tables::{ApplyError, Capacity, Tables};

use crate::burst::MAX_BURST;
use crate::counters::{Stat, StatBlock};
use crate::esp::crypto::QueuePair;
use crate::esp::Prepared;
use crate::mem::{Memory, OutOfMemory};
use crate::packet::PacketBuf;
use crate::sa::{Direction, SaEventKind};
use crate::wire::ethernet::Mac;
use arrayvec::ArrayVec;
use batch::{CryptoBatch, Job};
use ipnet::Ipv6Net;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// A tunnel's number, as the main lcore allocated it (dense, below `Capacity::tunnels`).
pub type TunnelId = u32;
/// A worker's index in `dataplane.workers`.
pub type WorkerIndex = u16;
/// Where the owner of an inbound SA keeps it: the same index on every worker (the main lcore
/// allocates it), below `Capacity::inbound_sas`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InboundIndex(pub u32);

/// No worker owns this tunnel or SPI (yet).
pub const NO_OWNER: WorkerIndex = WorkerIndex::MAX;

/// An interface: one IPv4 address on one DPDK port, and optionally one global IPv6 address
/// (besides the link-local one its MAC gives).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interface {
    pub port: u16,
    pub mac: Mac,
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
    pub mtu: u16,
    pub ipv6: Option<Ipv6Net>,
}

impl Interface {
    /// Its link-local address, from its MAC by modified EUI-64.
    pub fn link_local(&self) -> Ipv6Addr {
        crate::wire::ipv6::link_local(self.mac)
    }

    /// Whether `a` is one of its IPv6 addresses (global or link-local).
    pub fn has_ipv6(&self, a: &Ipv6Addr) -> bool {
        self.ipv6.is_some_and(|n| n.addr() == *a) || self.link_local() == *a
    }

    /// Whether `a` is on its IPv6 subnet.
    pub fn on_link6(&self, a: &Ipv6Addr) -> bool {
        self.ipv6.is_some_and(|n| n.trunc().contains(a))
    }
}

/// Where an IPv6 route sends a packet (apart from `Target`, whose IPv4 next hop keeps the
/// route cache's entries small).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target6 {
    /// On the IPv6 subnet of the interface on this port: the destination is the next hop.
    Connected {
        port: u16,
    },
    Gateway {
        port: u16,
        via: Ipv6Addr,
    },
    /// Into a route-based VPN (`st0.N`): IPv6 in the tunnel's IPv4 ESP (next header 41).
    Tunnel {
        tunnel: TunnelId,
    },
    /// One of the gateway's own addresses.
    Local,
}

/// Where a route sends a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// On the subnet of the interface on this port: the destination is the next hop.
    Connected {
        port: u16,
    },
    Gateway {
        port: u16,
        via: Ipv4Addr,
    },
    /// Into a route-based VPN (`st0.N`).
    Tunnel {
        tunnel: TunnelId,
    },
    /// One of the gateway's own addresses.
    Local,
}

/// Why a packet goes to the main lcore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Punt {
    /// ARP, broadcast or to our MAC.
    Arp,
    /// IKE: UDP 500, or the non-ESP marker on 4500 or a NAT-T port (`wire::udp::classify`).
    Ike,
    /// Anything else for one of our addresses (ICMP echo among it).
    Local,
    /// Too big for its tunnel, with DF set: its sender is told the tunnel's `mtu` (ICMP
    /// "fragmentation needed", RFC 1191), as path MTU discovery needs.
    TooBig { mtu: u16 },
    /// Too big for its tunnel, DF clear: cut into fragments of at most `mtu` before
    /// encryption (as Juniper's inline IPsec does), so that no outer fragment is ever sent.
    Fragment { mtu: u16 },
    /// A fragment of ESP or UDP for us: the main lcore reassembles the datagram
    /// (`reassembly`) and hands it back whole.
    Reassemble,
    /// IPv6 neighbor discovery: a solicitation for one of our addresses, or an advertisement
    /// to us (`nd`).
    Nd,
    /// An IPv6 packet too big for its tunnel: its sender is sent an ICMPv6 Packet Too Big with
    /// the tunnel's `mtu` (at least 1280, RFC 8200 section 5); IPv6 is never fragmented here.
    TooBig6 { mtu: u16 },
}

impl Punt {
    /// The tag a punted buffer carries: the reason in the low byte, a too-big packet's MTU
    /// above it.
    pub fn tag(self) -> u32 {
        match self {
            Punt::Arp => 1,
            Punt::Ike => 2,
            Punt::Local => 3,
            Punt::TooBig { mtu } => 4 | u32::from(mtu) << 8,
            Punt::Fragment { mtu } => 5 | u32::from(mtu) << 8,
            Punt::Reassemble => 6,
            Punt::Nd => 7,
            Punt::TooBig6 { mtu } => 8 | u32::from(mtu) << 8,
        }
    }

    /// From the tag a punted buffer carries (`tag`).
    pub fn from_tag(tag: u32) -> Option<Punt> {
        match tag & 0xff {
            1 => Some(Punt::Arp),
            2 => Some(Punt::Ike),
            3 => Some(Punt::Local),
            4 => Some(Punt::TooBig {
                mtu: (tag >> 8) as u16,
            }),
            5 => Some(Punt::Fragment {
                mtu: (tag >> 8) as u16,
            }),
            6 => Some(Punt::Reassemble),
            7 => Some(Punt::Nd),
            8 => Some(Punt::TooBig6 {
                mtu: (tag >> 8) as u16,
            }),
            _ => None,
        }
    }
}

/// What to do with a packet once the pipeline is done with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Transmit the frame now in the buffer on this port.
    Tx(u16),
    /// Hand the frame (Ethernet header included) to the main lcore.
    Punt(Punt),
    /// Free it; the counter has been incremented.
    Drop(Stat),
    /// Give it to the worker that owns its SA, to resume there.
    Handoff {
        worker: WorkerIndex,
        resume: ResumeTag,
    },
    /// Parked as this crypto job of the burst: keep the buffer where it is in the burst and
    /// pass the burst to `Forwarder::complete`.
    Crypto(Parked),
}

// A verdict fits a register (see `ResumeTag`).
const _: () = assert!(std::mem::size_of::<Verdict>() <= 8);

/// Fibonacci hashing (Knuth): the top `bits` bits (1 to 63) of `key` times 2^64 over the
/// golden ratio, which every bit of the key moves. The one hash of every table the forwarder
/// indexes by a key: the route cache, the SPI table, and a burst's SAs.
#[inline(always)]
pub(crate) fn fibonacci(key: u64, bits: u32) -> usize {
    (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize
}

/// Below this many SAs held (outbound and inbound), the SAs and their sessions stay in the
/// caches, and the look ahead over a burst (`prefetch_sas`) costs more than it saves: about
/// 4 ns a packet over 32 tunnels, for nothing.
const LOOKAHEAD_MIN_SAS: usize = 256;

/// Most events one burst can queue for the main lcore; more wait for a later burst (a next hop
/// still unresolved asks again).
pub const MAX_EVENTS: usize = 64;

pub struct Forwarder {
    pub tables: Tables,
    batch: CryptoBatch,
    pub stats: Arc<StatBlock>,
    /// Milliseconds on the worker's clock, set once per burst.
    pub now_ms: u64,
    /// What the bursts found out for the main lcore, drained by the worker after each.
    pub events: ArrayVec<Event, MAX_EVENTS>,
    /// Recent `Acquire`s by tunnel (direct-mapped), so that a tunnel without an SA asks once a
    /// second, not once a packet.
    acquired: [(TunnelId, u64); 64],
    /// The last burst's parked packets were under more than one SA, of more SAs than the
    /// caches hold: the next burst's SAs are worth prefetching (`prefetch_sas`).
    spread: bool,
}

impl Forwarder {
    /// The state of worker `me` (its index in `dataplane.workers`), with tables of `cap` in
    /// `memory` on the worker's `socket`.
    pub fn new(
        me: WorkerIndex,
        cap: Capacity,
        memory: Memory,
        socket: i32,
        stats: Arc<StatBlock>,
    ) -> Result<Forwarder, OutOfMemory> {
        Ok(Forwarder {
            tables: Tables::new(me, cap, memory, socket)?,
            batch: CryptoBatch::default(),
            stats,
            now_ms: 0,
            events: ArrayVec::new(),
            acquired: [(TunnelId::MAX, 0); 64],
            spread: false,
        })
    }

    /// Gives the worker its queue pair on the crypto device: bursts spread over many SAs go
    /// through it in one trip.
    pub fn set_crypto_queue(&mut self, q: Box<dyn QueuePair>) {
        self.batch.set_queue(q);
    }

    /// Applies a command; the SAs it retires go to `retired`. A command that cannot apply is
    /// counted.
    pub fn apply(&mut self, cmd: WorkerCommand, retired: &mut Vec<Retired>) {
        if self.tables.apply(cmd, retired).is_err() {
            self.stats.inc(Stat::CommandErrors);
        }
    }

    #[inline]
    fn drop(&self, s: Stat) -> Verdict {
        self.stats.inc(s);
        Verdict::Drop(s)
    }

    fn punt(&self, why: Punt) -> Verdict {
        self.stats.inc(Stat::Punted);
        Verdict::Punt(why)
    }

    /// Queues an event for the main lcore; a full queue drops it (what it reports recurs).
    #[inline]
    fn report(&mut self, e: Event) {
        let _ = self.events.try_push(e);
    }

    /// Reports what a tunnel's outbound SA raised. Out of line: the hot paths only test a
    /// byte (`EventFlags::any_pending`), and keep their registers.
    #[cold]
    #[inline(never)]
    fn report_outbound(&mut self, tunnel: TunnelId) {
        let Some(sa) = self.tables.outbound_mut(tunnel) else {
            return;
        };
        let spi = sa.crypto.spi;
        let kinds: ArrayVec<_, 3> = sa.events.take().collect();
        self.report_sa(spi, Direction::Out, kinds);
    }

    /// Reports what an inbound SA raised (as `report_outbound`).
    #[cold]
    #[inline(never)]
    fn report_inbound(&mut self, index: InboundIndex) {
        let Some(sa) = self.tables.inbound_mut(index) else {
            return;
        };
        let spi = sa.crypto.spi;
        let kinds: ArrayVec<_, 3> = sa.events.take().collect();
        self.report_sa(spi, Direction::In, kinds);
    }

    fn report_sa(&mut self, spi: u32, direction: Direction, kinds: ArrayVec<SaEventKind, 3>) {
        for kind in kinds {
            self.report(Event::Sa {
                spi,
                direction,
                kind,
            });
        }
    }

    /// Parks a prepared packet's crypto, or runs it now while the batch is being finished.
    #[inline(always)]
    fn park_or_run<B: PacketBuf>(&mut self, buf: &mut B, prep: Prepared, job: Job) -> Verdict {
        // Asked before the job is built into the batch: parking, the common path, then
        // writes it straight from registers (measured: 4 % at 512 B in the pipeline bench).
        if self.batch.can_park() {
            Verdict::Crypto(self.batch.park(prep, job))
        } else {
            self.run_now(buf, prep, job)
        }
    }

    /// The crypto of one packet, at once, then the rest of its way.
    #[inline(never)]
    fn run_now<B: PacketBuf>(&mut self, buf: &mut B, prep: Prepared, job: Job) -> Verdict {
        let ok = job
            .sa(&self.tables)
            .is_some_and(|sa| prep.run_one(buf.data_mut(), sa));
        self.after_crypto(buf, prep, job, ok)
    }

    /// A packet after its crypto (`ok`: sealed, or opened with an ICV that verified).
    #[inline(always)]
    fn after_crypto<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        prep: Prepared,
        job: Job,
        ok: bool,
    ) -> Verdict {
        match job {
            Job::Seal(s) if ok => {
                self.count_sealed(s.tunnel, 1, u64::from(s.inner_len));
                self.sealed_out(buf, s)
            }
            Job::Seal(_) => self.drop(Stat::CryptoErrors),
            Job::Open(o) => self.opened(buf, o, prep.seq, ok),
        }
    }

    /// A sealed frame on its way out: ESP in UDP over IPv6 gets its UDP checksum now that the
    /// ciphertext it covers is there.
    #[inline(always)]
    fn sealed_out<B: PacketBuf>(&mut self, buf: &mut B, s: batch::SealJob) -> Verdict {
        if s.udp6 {
            let filled = buf
                .data_mut()
                .get_mut(crate::wire::ethernet::HEADER_LEN..)
                .and_then(crate::esp::outer::fill_udp6_checksum);
            if filled.is_none() {
                return self.drop(Stat::Malformed);
            }
        }
        Verdict::Tx(s.port)
    }

    /// Counts packets sealed under a tunnel's SA, per SA and for the worker, and reports what
    /// that reached: with `count_sealed_on_sa`, the one place sealed packets are counted.
    #[inline]
    fn count_sealed(&mut self, tunnel: TunnelId, packets: u64, bytes: u64) {
        self.count_sealed_on_sa(tunnel, packets, bytes);
        self.count_sealed_on_worker(packets, bytes);
    }

    #[inline(always)]
    fn count_sealed_on_worker(&mut self, packets: u64, bytes: u64) {
        self.stats.add(Stat::EncryptedPackets, packets);
        self.stats.add(Stat::EncryptedBytes, bytes);
    }

    /// The SA's share of `count_sealed`: a batch counts each run of one tunnel on its SA, and
    /// the worker's totals once.
    #[inline(always)]
    fn count_sealed_on_sa(&mut self, tunnel: TunnelId, packets: u64, bytes: u64) {
        if let Some(sa) = self.tables.outbound_mut(tunnel) {
            sa.carried(packets, bytes);
            if sa.events.any_pending() {
                self.report_outbound(tunnel);
            }
        }
    }

    /// Whether packets are parked, waiting for `complete`.
    #[inline]
    pub fn has_parked(&self) -> bool {
        !self.batch.is_empty()
    }

    /// Runs the crypto of every packet parked since the last call, one backend call per SA
    /// (or one trip through the queue pair), then takes each parked packet the rest of its
    /// way, in the order parked. `bufs` and `verdicts` are the whole burst: each
    /// `Verdict::Crypto` is replaced by the packet's final verdict.
    pub fn complete<B: PacketBuf>(&mut self, bufs: &mut [B], verdicts: &mut [Verdict]) {
        let n = bufs.len().min(verdicts.len()).min(MAX_BURST);
        let (bufs, verdicts) = (&mut bufs[..n], &mut verdicts[..n]);
        let ran = self.batch.run(&self.tables, bufs, verdicts);
        let mixed = ran.as_ref().is_some_and(|r| r.mixed);
        self.spread = mixed && self.tables.sas > LOOKAHEAD_MIN_SAS;
        let Some(ran) = ran else {
            // A caller bug: never a crash, and no packet goes out unprocessed or paired with
            // another's job.
            for v in verdicts.iter_mut() {
                if matches!(v, Verdict::Crypto(_)) {
                    *v = self.drop(Stat::CryptoErrors);
                }
            }
            self.batch.clear();
            return;
        };
        if ran.queued {
            self.stats.inc(Stat::QueuedBursts);
        }
        // What follows the crypto may need crypto again (a decrypted packet routed into a
        // tunnel): that runs at once.
        self.batch.finishing();
        let mut sealed = SealTally::default();
        let (mut packets, mut bytes) = (0, 0);
        for (b, v) in bufs.iter_mut().zip(verdicts.iter_mut()) {
            let Verdict::Crypto(k) = *v else {
                continue;
            };
            let ok = ran.ok & (1 << (k.0 & 31)) != 0;
            *v = match *self.batch.job(k) {
                // Sealed packets are counted on their SA once per run of one tunnel, and on
                // the worker once per burst.
                Job::Seal(s) if ok => {
                    if let Some((t, p, b)) = sealed.add(s.tunnel, s.inner_len) {
                        self.count_sealed_on_sa(t, p, b);
                        packets += p;
                        bytes += b;
                    }
                    self.sealed_out(b, s)
                }
                job => {
                    let prep = self.batch.prepared(k);
                    self.after_crypto(b, prep, job, ok)
                }
            };
        }
        if let Some((t, p, b)) = sealed.flush() {
            self.count_sealed_on_sa(t, p, b);
            self.count_sealed_on_worker(packets + p, bytes + b);
        }
        self.batch.clear();
    }
}

/// Sealed packets of a burst, added up per run of one tunnel so that each SA's counters are
/// written once per run, not once per packet.
struct SealTally {
    tunnel: TunnelId,
    packets: u64,
    bytes: u64,
}

impl Default for SealTally {
    fn default() -> Self {
        SealTally {
            tunnel: TunnelId::MAX,
            packets: 0,
            bytes: 0,
        }
    }
}

impl SealTally {
    /// Adds one packet; returns the finished run of another tunnel, if any.
    #[inline(always)]
    fn add(&mut self, tunnel: TunnelId, inner_len: u16) -> Option<(TunnelId, u64, u64)> {
        if tunnel == self.tunnel {
            self.packets += 1;
            self.bytes += u64::from(inner_len);
            return None;
        }
        let done = self.flush();
        *self = SealTally {
            tunnel,
            packets: 1,
            bytes: u64::from(inner_len),
        };
        done
    }

    /// The run being added up, if it has packets.
    #[inline(always)]
    fn flush(&mut self) -> Option<(TunnelId, u64, u64)> {
        let run = (self.packets > 0).then_some((self.tunnel, self.packets, self.bytes));
        self.packets = 0;
        run
    }
}

#[cfg(test)]
mod tests;
