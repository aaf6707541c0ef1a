//! The main lcore's housekeeping: the control state (changes in, what the workers report and
//! retire back), ARP and IPv6 neighbor discovery for our addresses and for next hops, ICMP
//! and ICMPv6 echo for our addresses, and whatever else the workers punt. It never sits in a
//! worker's hot loop.

use crate::burst::MAX_BURST;
use crate::control_channel::ControlChannel;
use crate::control_state::ControlState;
use crate::counters::Counter;
use crate::forward::{arp, ike, nd, Event, Interface, Punt};
use crate::wire::{ethernet, icmp, ipv4};
use crate::worker::{INJECT_ROUTE, INJECT_TRANSIT};
use dpdk_sys::{sys::rte_mbuf, Mbuf, Mempool, Ring};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod ipv6;

/// One ARP request or neighbor solicitation per next hop per second at most.
const RESOLVE_INTERVAL: Duration = Duration::from_secs(1);
/// ICMP errors the gateway sends a second at most, in bursts of as many (RFC 1812 section
/// 4.3.2.8: rate-limited, so that a flood of big packets does not become one of errors).
const ICMP_ERRORS_PER_SECOND: u32 = 100;
const MIN_FRAME: usize = 60;

/// The main lcore's own counters.
#[derive(Default, Debug)]
pub struct MainStats {
    pub arp_requests_sent: Counter,
    pub arp_replies_sent: Counter,
    pub neighbors_learned: Counter,
    /// IPv6 neighbor discovery: solicitations sent (resolving next hops) and received (for
    /// our addresses or not), advertisements sent (answers) and received, and messages that
    /// failed RFC 4861's validation (hop limit, checksum, lengths, options).
    pub nd_solicitations_sent: Counter,
    pub nd_solicitations_received: Counter,
    pub nd_advertisements_sent: Counter,
    pub nd_advertisements_received: Counter,
    pub nd_invalid: Counter,
    pub icmp_echo_replies: Counter,
    pub icmpv6_echo_replies: Counter,
    /// ICMP "fragmentation needed" sent for packets too big for their tunnel (DF set), and
    /// those not sent for the rate limit.
    pub icmp_frag_needed_sent: Counter,
    pub icmp_errors_rate_limited: Counter,
    /// ICMPv6 Packet Too Big sent for IPv6 packets too big for their tunnel (rate-limited
    /// with the ICMP errors above).
    pub icmpv6_packet_too_big_sent: Counter,
    /// Packets too big for their tunnel without DF, cut before encryption, and the fragments
    /// made of them; those that could not be (no buffer, or not a packet to cut).
    pub prefragmented: Counter,
    pub prefragments: Counter,
    pub prefragment_drops: Counter,
    /// Fragments for us (ESP, ESP in UDP, IKE) taken, datagrams put back together, and the
    /// fragment sets dropped: overlapping, beyond 65535 bytes, never completed, no room in the
    /// table, malformed (`reassembly`).
    pub reassembly_fragments: Counter,
    pub reassembled: Counter,
    pub reassembly_overlaps: Counter,
    pub reassembly_oversize: Counter,
    pub reassembly_timeouts: Counter,
    pub reassembly_table_full: Counter,
    pub reassembly_malformed: Counter,
    /// IKE packets punted while no control process is attached.
    pub ike_dropped: Counter,
    /// Other packets for the gateway itself that nothing handles.
    pub local_dropped: Counter,
    pub inject_drops: Counter,
}

impl MainStats {
    pub fn fields(&self) -> [(&'static str, u64); 26] {
        [
            ("arp_requests_sent", self.arp_requests_sent.get()),
            ("arp_replies_sent", self.arp_replies_sent.get()),
            ("neighbors_learned", self.neighbors_learned.get()),
            ("nd_solicitations_sent", self.nd_solicitations_sent.get()),
            (
                "nd_solicitations_received",
                self.nd_solicitations_received.get(),
            ),
            ("nd_advertisements_sent", self.nd_advertisements_sent.get()),
            (
                "nd_advertisements_received",
                self.nd_advertisements_received.get(),
            ),
            ("nd_invalid", self.nd_invalid.get()),
            ("icmp_echo_replies", self.icmp_echo_replies.get()),
            ("icmpv6_echo_replies", self.icmpv6_echo_replies.get()),
            ("icmp_frag_needed_sent", self.icmp_frag_needed_sent.get()),
            (
                "icmpv6_packet_too_big_sent",
                self.icmpv6_packet_too_big_sent.get(),
            ),
            (
                "icmp_errors_rate_limited",
                self.icmp_errors_rate_limited.get(),
            ),
            ("prefragmented", self.prefragmented.get()),
            ("prefragments", self.prefragments.get()),
            ("prefragment_drops", self.prefragment_drops.get()),
            ("reassembly_fragments", self.reassembly_fragments.get()),
            ("reassembled", self.reassembled.get()),
            ("reassembly_overlaps", self.reassembly_overlaps.get()),
            ("reassembly_oversize", self.reassembly_oversize.get()),
            ("reassembly_timeouts", self.reassembly_timeouts.get()),
            ("reassembly_table_full", self.reassembly_table_full.get()),
            ("reassembly_malformed", self.reassembly_malformed.get()),
            ("ike_dropped", self.ike_dropped.get()),
            ("local_dropped", self.local_dropped.get()),
            ("inject_drops", self.inject_drops.get()),
        ]
    }
}

/// The main lcore's side of one worker's packet rings.
pub struct WorkerRings {
    pub punt: Arc<Ring>,
    pub inject: Arc<Ring>,
}

pub struct MainLcore {
    pub control: ControlState,
    /// The control process's channel, when the configuration names one.
    pub channel: Option<ControlChannel>,
    rings: Vec<WorkerRings>,
    asked: HashMap<IpAddr, Instant>,
    idle_checked: Instant,
    /// ICMP errors that may still be sent this second, and when the second began.
    icmp_budget: (u32, Instant),
    /// Fragmented datagrams for us being put back together.
    pub reassembly: crate::reassembly::Reassembler,
    pub stats: Arc<MainStats>,
}

impl MainLcore {
    pub fn new(control: ControlState, rings: Vec<WorkerRings>) -> MainLcore {
        MainLcore {
            control,
            channel: None,
            rings,
            asked: HashMap::new(),
            idle_checked: Instant::now(),
            icmp_budget: (ICMP_ERRORS_PER_SECOND, Instant::now()),
            reassembly: Default::default(),
            stats: Arc::default(),
        }
    }

    /// Handles what the workers punted, reported and retired, and sends the commands still
    /// waiting; returns how much work there was.
    pub fn poll(&mut self, pool: &Mempool) -> usize {
        let mut done = 0;
        let mut raw = [std::ptr::null_mut::<rte_mbuf>(); MAX_BURST];
        for w in 0..self.rings.len() {
            let n = self.rings[w].punt.dequeue_mbufs(&mut raw);
            for &r in &raw[..n] {
                // SAFETY: the worker gave up ownership when it enqueued the mbuf.
                let m = unsafe { Mbuf::from_raw(r) };
                self.punted(w, m, pool);
            }
            done += n;
        }
        let mut resolve = Vec::new();
        done += self.control.poll(|_, e| {
            if let Event::Resolve { port, addr } = e {
                resolve.push((port, addr));
            }
        });
        for (port, addr) in resolve {
            self.resolve(pool, port, addr);
        }
        if let Some(ch) = &mut self.channel {
            done += ch.poll(&mut self.control);
        }
        done += self.inject_from_control(pool);
        if self.idle_checked.elapsed() >= crate::control_state::idle::CHECK_EVERY {
            self.idle_checked = Instant::now();
            self.control.check_idle(self.idle_checked);
            self.reassembly.expire(self.idle_checked);
            self.publish_reassembly();
        }
        for (port, addr) in self.control.take_wanted() {
            self.resolve(pool, port, addr);
        }
        self.control.flush();
        done
    }

    /// Asks for the MAC of `addr` on `port` (ARP, or a neighbor solicitation), at most once
    /// per `RESOLVE_INTERVAL`.
    pub fn resolve(&mut self, pool: &Mempool, port: u16, addr: IpAddr) {
        let now = Instant::now();
        if self
            .asked
            .get(&addr)
            .is_some_and(|t| now.duration_since(*t) < RESOLVE_INTERVAL)
        {
            return;
        }
        let Some(iface) = self.control.interface_on(port) else {
            return;
        };
        let Some(mut m) = pool.alloc() else {
            return;
        };
        let sent = match addr {
            IpAddr::V4(a) => {
                let Some(frame) = m.append(MIN_FRAME as u16) else {
                    return;
                };
                frame.fill(0);
                arp::request(frame, &iface, a).then_some(&self.stats.arp_requests_sent)
            }
            IpAddr::V6(a) => {
                let mut out = [0u8; nd::FRAME_LEN];
                let Some(frame) = m.append(nd::FRAME_LEN as u16) else {
                    return;
                };
                let ok = nd::solicit(&mut out, &iface, a);
                frame.copy_from_slice(&out);
                ok.then_some(&self.stats.nd_solicitations_sent)
            }
        };
        let Some(counter) = sent else {
            return;
        };
        counter.inc();
        m.set_port(port);
        self.asked.insert(addr, now);
        self.inject(0, m);
    }

    fn punted(&mut self, worker: usize, mut m: Mbuf, pool: &Mempool) {
        match Punt::from_tag(m.tag()) {
            Some(Punt::Arp) => {
                let Some(iface) = self.control.interface_on(m.port()) else {
                    return self.stats.local_dropped.inc();
                };
                let out = arp::handle(m.data_mut(), &iface);
                if let Some((addr, mac)) = out.learned {
                    self.stats.neighbors_learned.inc();
                    self.control.learned(addr.into(), mac);
                }
                if out.reply {
                    self.stats.arp_replies_sent.inc();
                    self.inject(worker, m);
                }
            }
            Some(Punt::Ike) => {
                let port = m.port();
                match (&mut self.channel, ike::datagram_of(m.data(), port)) {
                    (Some(ch), Some(d)) => ch.punt(&d),
                    _ => self.stats.ike_dropped.inc(),
                }
            }
            Some(Punt::Nd) => self.neighbor_discovery(worker, m),
            Some(Punt::Local) if self.echo6_reply(&mut m) => {
                self.stats.icmpv6_echo_replies.inc();
                self.inject(worker, m);
            }
            Some(Punt::Local) if self.echo_reply(&mut m) => {
                self.stats.icmp_echo_replies.inc();
                m.set_port(INJECT_ROUTE);
                self.inject(worker, m);
            }
            Some(Punt::TooBig { mtu }) => {
                if self.frag_needed(&mut m, mtu) {
                    self.stats.icmp_frag_needed_sent.inc();
                    m.set_port(INJECT_ROUTE);
                    self.inject(worker, m);
                }
            }
            Some(Punt::TooBig6 { mtu }) => {
                if self.packet_too_big(&mut m, mtu) {
                    self.stats.icmpv6_packet_too_big_sent.inc();
                    m.set_port(INJECT_ROUTE);
                    self.inject(worker, m);
                }
            }
            Some(Punt::Fragment { mtu }) => self.prefragment(worker, &m, mtu, pool),
            Some(Punt::Reassemble) => self.reassemble(worker, &m, pool),
            Some(Punt::Local) | None => self.stats.local_dropped.inc(),
        }
    }

    /// Takes a punted fragment for us (ESP, ESP in UDP, IKE); the datagram, once whole, goes
    /// back to the worker to be handled as if it had come so.
    fn reassemble(&mut self, worker: usize, m: &Mbuf, pool: &Mempool) {
        let Some(packet) = m.data().get(ethernet::HEADER_LEN..) else {
            return;
        };
        let whole = self.reassembly.add(packet, Instant::now());
        self.publish_reassembly();
        let Some(whole) = whole else {
            return;
        };
        let Some(mut out) = pool.alloc() else {
            return self.stats.inject_drops.inc();
        };
        // Whole, it must fit one buffer (the pool's data room): beyond, too big for us.
        let Some(dst) = u16::try_from(whole.len()).ok().and_then(|n| out.append(n)) else {
            self.reassembly.stats.oversize += 1;
            return self.publish_reassembly();
        };
        dst.copy_from_slice(&whole);
        out.set_port(INJECT_ROUTE);
        self.inject(worker, out);
    }

    /// The reassembly's counters, where the stats region reads them.
    fn publish_reassembly(&self) {
        let r = self.reassembly.stats;
        let s = &self.stats;
        for (c, v) in [
            (&s.reassembly_fragments, r.fragments),
            (&s.reassembled, r.reassembled),
            (&s.reassembly_overlaps, r.overlaps),
            (&s.reassembly_oversize, r.oversize),
            (&s.reassembly_timeouts, r.timeouts),
            (&s.reassembly_table_full, r.table_full),
            (&s.reassembly_malformed, r.malformed),
        ] {
            c.add(v.saturating_sub(c.get()));
        }
    }

    /// Cuts a punted packet too big for its tunnel (DF clear) into fragments of at most `mtu`
    /// (RFC 791), each a packet of its own that the worker routes into the tunnel again.
    fn prefragment(&mut self, worker: usize, m: &Mbuf, mtu: u16, pool: &Mempool) {
        let Some(packet) = m.data().get(ethernet::HEADER_LEN..) else {
            return self.stats.prefragment_drops.inc();
        };
        // It was routed once (its TTL lowered) and its fragments will be again: once counts.
        let mut packet = packet.to_vec();
        if let Some(ttl) = packet.get_mut(ipv4::field::TTL) {
            *ttl = ttl.saturating_add(1);
        }
        let mut made = Vec::new();
        let mut short = false;
        let cut = ipv4::fragment(&packet, usize::from(mtu), |f| {
            let (Some(mut fm), Ok(len)) = (pool.alloc(), u16::try_from(f.len())) else {
                short = true;
                return;
            };
            match fm.append(len) {
                Some(out) => {
                    out.copy_from_slice(f);
                    // Looked up again by the policies: the first fragment as the packet was,
                    // the others by addresses and protocol (they carry no ports).
                    fm.set_port(INJECT_TRANSIT);
                    made.push(fm);
                }
                None => short = true,
            }
        });
        // All of them or none: a datagram missing a fragment is lost anyway.
        if cut.is_none() || short {
            return self.stats.prefragment_drops.inc();
        }
        self.stats.prefragmented.inc();
        for fm in made {
            self.stats.prefragments.inc();
            self.inject(worker, fm);
        }
    }

    /// Turns a punted packet too big for its tunnel into the ICMP "fragmentation needed" its
    /// sender gets (from our address on its subnet, else our first), as an IPv4 packet ready
    /// to be routed; false if none is due (the rate limit, or RFC 1122's exceptions).
    fn frag_needed(&mut self, m: &mut Mbuf, mtu: u16) -> bool {
        if !self.icmp_budget_left() {
            return false;
        }
        let Some(packet) = m.data().get(ethernet::HEADER_LEN..) else {
            return false;
        };
        let Ok(p) = ipv4::Packet::new_checked(packet) else {
            return false;
        };
        let sender = p.src();
        let mut ours = self.control.interfaces().map(|(_, i)| *i);
        let first = ours.next();
        let from = std::iter::once(first)
            .flatten()
            .chain(ours)
            .find(|i| ipnet::Ipv4Net::new(i.addr, i.prefix_len).is_ok_and(|n| n.contains(&sender)))
            .or(first)
            .map(|i| i.addr);
        let Some(from) = from else {
            return false;
        };
        let mut out = [0u8; icmp::FRAG_NEEDED_MAX_LEN];
        let Some(n) = icmp::frag_needed(packet, from, mtu, &mut out) else {
            return false;
        };
        let len = m.len() as u16;
        if !m.trim(len) {
            return false;
        }
        let Some(dst) = m.append(n as u16) else {
            return false;
        };
        dst.copy_from_slice(&out[..n]);
        self.icmp_budget.0 -= 1;
        true
    }

    /// Whether the rate limit of ICMP and ICMPv6 errors leaves one to send now (counted if
    /// not); a sender takes it from `icmp_budget.0` once the error is made.
    fn icmp_budget_left(&mut self) -> bool {
        let now = Instant::now();
        if now.duration_since(self.icmp_budget.1) >= Duration::from_secs(1) {
            self.icmp_budget = (ICMP_ERRORS_PER_SECOND, now);
        }
        if self.icmp_budget.0 == 0 {
            self.stats.icmp_errors_rate_limited.inc();
            return false;
        }
        true
    }

    /// Turns a punted ICMP echo request to one of our addresses into its reply, as an IPv4
    /// packet (Ethernet header removed) ready to be routed.
    fn echo_reply(&self, m: &mut Mbuf) -> bool {
        let ours = |a: Ipv4Addr| {
            self.control
                .interfaces()
                .any(|(_, i): (_, &Interface)| i.addr == a)
        };
        let Some(ip_bytes) = m.data_mut().get_mut(ethernet::HEADER_LEN..) else {
            return false;
        };
        let Ok(mut p) = ipv4::Packet::new_checked(ip_bytes) else {
            return false;
        };
        let (src, dst) = (p.src(), p.dst());
        if p.protocol() != ipv4::PROTO_ICMP || p.is_fragment() || !ours(dst) {
            return false;
        }
        if !icmp::echo_request_to_reply(p.payload_mut()) {
            return false;
        }
        p.set_src(dst);
        p.set_dst(src);
        p.set_ttl(64);
        p.fill_checksum();
        let total = p.total_len();
        m.adj(ethernet::HEADER_LEN as u16);
        let extra = m.len().saturating_sub(total);
        m.trim(extra as u16);
        true
    }

    /// The control's datagrams (IKE), as IPv4 or IPv6 packets the workers route; only from
    /// one of our addresses (not a link-local one: IKE peers are routed to).
    fn inject_from_control(&mut self, pool: &Mempool) -> usize {
        let Some(mut ch) = self.channel.take() else {
            return 0;
        };
        let n = ch.injected(MAX_BURST, |d| {
            let ours = self.control.interfaces().any(|(_, i)| match d.src {
                IpAddr::V4(a) => i.addr == a,
                IpAddr::V6(a) => !crate::wire::ipv6::is_link_local(&a) && i.has_ipv6(&a),
            });
            let len = ike::packet_len(d);
            let (true, Ok(len16)) = (ours, u16::try_from(len)) else {
                return false;
            };
            let Some(mut m) = pool.alloc() else {
                return false;
            };
            let Some(out) = m.append(len16) else {
                return false;
            };
            if !ike::emit(d, out) {
                return false;
            }
            m.set_port(INJECT_ROUTE);
            self.inject(0, m);
            true
        });
        self.channel = Some(ch);
        n
    }

    fn inject(&self, worker: usize, m: Mbuf) {
        let Some(w) = self.rings.get(worker) else {
            return self.stats.inject_drops.inc();
        };
        let raw = m.into_raw();
        if w.inject.enqueue_mbufs(&[raw]) == 0 {
            // SAFETY: the ring did not take it.
            drop(unsafe { Mbuf::from_raw(raw) });
            self.stats.inject_drops.inc();
        }
    }

    /// Frees whatever is still queued towards or from the workers, and the SAs they gave back
    /// (after they stopped).
    pub fn drain(&mut self) {
        let mut raw = [std::ptr::null_mut::<rte_mbuf>(); MAX_BURST];
        for w in &self.rings {
            for ring in [&w.punt, &w.inject] {
                loop {
                    let n = ring.dequeue_mbufs(&mut raw);
                    if n == 0 {
                        break;
                    }
                    // SAFETY: dequeued mbufs are ours.
                    unsafe { dpdk_sys::mbuf::free_bulk(&mut raw[..n]) };
                }
            }
        }
        self.control.poll(|_, _| {});
    }
}
