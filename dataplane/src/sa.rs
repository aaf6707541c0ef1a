//! Security associations as the workers hold them: one cache-aligned runtime struct per SA with
//! what the per-packet path touches (as VPP's `ipsec_sa_t`), in the main lcore's SA pools
//! (`mem::Pool`). Names, configuration and history live with the main lcore
//! (`control_state`).

use crate::counters::CounterRef;
use crate::esp::crypto::{self, Backend, Cipher, CryptoError, KeyMaterial, Op, SALT_LEN};
use crate::esp::outer::{OuterTemplate, TunnelEncap};
use crate::esp::replay::ReplayWindow;
use channel::Lifetime;
use ipnet::{Ipv4Net, Ipv6Net};
use std::net::{Ipv4Addr, Ipv6Addr};

pub use channel::Direction;

/// Inner addresses a tunnel carries, per side and family. A side with no prefix of either
/// family admits any address; one with some admits only those (a side of IPv4 prefixes only
/// admits no IPv6, and the other way round).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selectors {
    /// Boxed slices, not vectors: the four fill one cache line.
    pub local: Box<[Ipv4Net]>,
    pub remote: Box<[Ipv4Net]>,
    pub local6: Box<[Ipv6Net]>,
    pub remote6: Box<[Ipv6Net]>,
}

impl Selectors {
    /// Does a decrypted IPv4 packet from `src` to `dst` belong to this tunnel?
    #[inline(always)]
    pub fn admits_inbound(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        // `Ipv4Net::contains` on the integers (the address agrees with the network under the
        // mask): about 25 instructions less per decrypted packet than its range compare. The
        // other family's list is read only when this one is empty.
        let has = |l: &[Ipv4Net], other: usize, a: Ipv4Addr| {
            let a = u32::from(a);
            (l.is_empty() && other == 0)
                || l.iter()
                    .any(|n| (a ^ u32::from(n.network())) & u32::from(n.netmask()) == 0)
        };
        has(&self.remote, self.remote6.len(), src) && has(&self.local, self.local6.len(), dst)
    }

    /// The same for a decrypted IPv6 packet.
    #[inline]
    pub fn admits_inbound6(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        let has = |l: &[Ipv6Net], other: usize, a: &Ipv6Addr| {
            (l.is_empty() && other == 0) || l.iter().any(|n| n.contains(a))
        };
        has(&self.remote6, self.remote.len(), src) && has(&self.local6, self.local.len(), dst)
    }

    fn is_any(&self) -> bool {
        self.local.is_empty()
            && self.remote.is_empty()
            && self.local6.is_empty()
            && self.remote6.is_empty()
    }
}

/// What an SA of either direction brings to each of its packets' AEAD jobs: the SPI and
/// sequence-number width that make the AAD, the salt that starts the nonce, and the key.
pub struct SaCrypto {
    pub spi: u32,
    pub esn: bool,
    pub salt: [u8; SALT_LEN],
    pub cipher: Cipher,
}

impl SaCrypto {
    pub fn new(
        spi: u32,
        esn: bool,
        keys: &KeyMaterial,
        op: Op,
        backend: &Backend,
    ) -> Result<SaCrypto, CryptoError> {
        Ok(SaCrypto {
            spi,
            esn,
            salt: keys.salt(),
            cipher: crypto::cipher(keys, op, esn, backend)?,
        })
    }
}

/// Something an SA reached that its owner must hear of (the control replaces the SA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaEventKind {
    /// The soft lifetime (packets or bytes): time to rekey.
    SoftLimit,
    /// The hard lifetime: the SA carries nothing more.
    HardLimit,
    /// An outbound SA has used 7/8 of its sequence numbers.
    SeqNearExhaustion,
    /// An outbound SA has used half of the sequence numbers it was granted (`extend_lease`):
    /// the main lcore publishes a new grant, then extends it. Raised again after each grant.
    LeaseLow,
}

impl SaEventKind {
    pub const ALL: [SaEventKind; 4] = [
        SaEventKind::SoftLimit,
        SaEventKind::HardLimit,
        SaEventKind::SeqNearExhaustion,
        SaEventKind::LeaseLow,
    ];
    fn bit(self) -> u8 {
        1 << self as u8
    }
    pub fn name(self) -> &'static str {
        match self {
            SaEventKind::SoftLimit => "soft lifetime reached",
            SaEventKind::HardLimit => "hard lifetime reached",
            SaEventKind::SeqNearExhaustion => "sequence numbers near exhaustion",
            SaEventKind::LeaseLow => "sequence number grant half used",
        }
    }
}

/// Which of an SA's events have been raised (each once) and which still wait to be reported.
#[derive(Debug, Default, Clone, Copy)]
pub struct EventFlags {
    raised: u8,
    pending: u8,
}

impl EventFlags {
    /// Raises `k` unless it was raised before.
    #[inline]
    fn raise(&mut self, k: SaEventKind) {
        if self.raised & k.bit() == 0 {
            self.raised |= k.bit();
            self.pending |= k.bit();
        }
    }

    #[inline(always)]
    pub fn any_pending(&self) -> bool {
        self.pending != 0
    }

    /// `k` may be raised again.
    fn rearm(&mut self, k: SaEventKind) {
        self.raised &= !k.bit();
    }

    /// The events raised since the last call.
    pub fn take(&mut self) -> impl Iterator<Item = SaEventKind> {
        let p = std::mem::take(&mut self.pending);
        SaEventKind::ALL
            .into_iter()
            .filter(move |k| p & k.bit() != 0)
    }
}

/// Why an outbound SA sends no more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqStop {
    /// Every sequence number is used (RFC 4303 section 3.3.3: the counter never wraps).
    Exhausted,
    /// The hard lifetime is reached.
    HardLimit,
    /// Every number granted is used and the next grant has not come yet.
    Lease,
}

/// An outbound SA: the worker that owns it is the only writer of its sequence counter.
/// What every packet touches is in the first two cache lines; the lifetimes the slow paths
/// read are in the third.
#[repr(C, align(64))]
pub struct OutboundSa {
    pub crypto: SaCrypto,
    /// Last sequence number sent; the first packet carries 1.
    last_seq: u64,
    /// `next_seq` takes its slow path once the last number sent reaches this: just before the
    /// soft packet limit or 7/8 of the sequence space, or at the end.
    check_at: u64,
    /// The outer headers, prebuilt from the tunnel and the SPI.
    pub(crate) outer: OuterTemplate,
    /// Two bytes: in the padding the template leaves before the next 8-byte field.
    pub events: EventFlags,
    pub counters: CounterRef,
    /// `carried` takes its slow path at this many bytes (the smaller byte lifetime).
    bytes_check_at: u64,
    // Third line: read by the slow paths only.
    /// The last sequence number the SA may send: the hard packet limit, or the space.
    seq_end: u64,
    /// The sequence number that reaches the soft packet limit (`u64::MAX`: none).
    soft_seq: u64,
    /// Byte lifetimes, in inner bytes (`u64::MAX`: none).
    soft_bytes: u64,
    hard_bytes: u64,
    /// The sequence numbers granted (`Lease`): the SA sends none above `end`, and asks for
    /// more once it passes `renew_at`.
    lease: Lease,
}

/// Sequence numbers an outbound SA may use, granted by the main lcore, which publishes each
/// grant in the channel's segment before the SA gets it: whatever becomes of this process,
/// no number above the published grant was ever sent, so a dataplane that restarts resumes
/// the SA above it and never repeats a nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub end: u64,
    pub renew_at: u64,
}

impl Lease {
    /// No grant needed (standalone: nothing would survive a restart to read it anyway).
    pub const UNLIMITED: Lease = Lease {
        end: u64::MAX,
        renew_at: u64::MAX,
    };
}

/// What an outbound SA is built from, besides its keys.
#[derive(Debug, Clone, Copy)]
pub struct OutboundParams {
    pub spi: u32,
    pub esn: bool,
    pub encap: TunnelEncap,
    /// The sequence number of the first packet (1 for a new SA).
    pub first_seq: u64,
    pub soft: Lifetime,
    pub hard: Lifetime,
    pub lease: Lease,
}

impl OutboundParams {
    /// A new SA (first packet 1) without lifetimes.
    pub fn new(spi: u32, esn: bool, encap: TunnelEncap) -> OutboundParams {
        OutboundParams {
            spi,
            esn,
            encap,
            first_seq: 1,
            soft: Lifetime::default(),
            hard: Lifetime::default(),
            lease: Lease::UNLIMITED,
        }
    }
}

impl OutboundSa {
    pub fn new(
        p: OutboundParams,
        keys: &KeyMaterial,
        counters: CounterRef,
        backend: &Backend,
    ) -> Result<OutboundSa, CryptoError> {
        let space = if p.esn { u64::MAX } else { u64::from(u32::MAX) };
        let last_seq = p.first_seq.saturating_sub(1);
        // The hard packet limit counts packets from the first one.
        let seq_end = p
            .hard
            .packets
            .map_or(space, |n| last_seq.saturating_add(n).min(space));
        let soft_bytes = p.soft.bytes.unwrap_or(u64::MAX);
        let hard_bytes = p.hard.bytes.unwrap_or(u64::MAX);
        let mut sa = OutboundSa {
            crypto: SaCrypto::new(p.spi, p.esn, keys, Op::Seal, backend)?,
            last_seq,
            check_at: 0,
            outer: OuterTemplate::new(&p.encap, p.spi),
            counters,
            bytes_check_at: soft_bytes.min(hard_bytes),
            events: EventFlags::default(),
            seq_end,
            soft_seq: p
                .soft
                .packets
                .map_or(u64::MAX, |n| last_seq.saturating_add(n)),
            soft_bytes,
            hard_bytes,
            lease: p.lease,
        };
        sa.next_check();
        Ok(sa)
    }

    /// The next sequence number, or why there is none. The counter never wraps (RFC 4303
    /// section 3.3.3): 2^32 - 1 numbers without ESN, 2^64 - 1 with it.
    #[inline(always)]
    pub fn next_seq(&mut self) -> Result<u64, SeqStop> {
        if self.last_seq >= self.check_at {
            return self.next_seq_slow();
        }
        self.last_seq += 1;
        Ok(self.last_seq)
    }

    #[cold]
    #[inline(never)]
    fn next_seq_slow(&mut self) -> Result<u64, SeqStop> {
        if self.last_seq >= self.lease.end && self.lease.end < self.seq_end {
            self.events.raise(SaEventKind::LeaseLow);
            return Err(SeqStop::Lease);
        }
        if self.last_seq >= self.seq_end {
            let space = if self.crypto.esn {
                u64::MAX
            } else {
                u64::from(u32::MAX)
            };
            return Err(if self.seq_end < space || self.hard_bytes_reached() {
                self.events.raise(SaEventKind::HardLimit);
                SeqStop::HardLimit
            } else {
                SeqStop::Exhausted
            });
        }
        self.last_seq += 1;
        self.next_check();
        Ok(self.last_seq)
    }

    /// Raises what the sequence number has reached, and sets where to look next.
    fn next_check(&mut self) {
        let space = if self.crypto.esn {
            u64::MAX
        } else {
            u64::from(u32::MAX)
        };
        let near = space - space / 8;
        if self.last_seq >= self.soft_seq {
            self.events.raise(SaEventKind::SoftLimit);
        }
        if self.last_seq >= near {
            self.events.raise(SaEventKind::SeqNearExhaustion);
        }
        if self.last_seq >= self.lease.renew_at {
            self.events.raise(SaEventKind::LeaseLow);
        }
        // The slow path runs before the packet that reaches a threshold is numbered, and at
        // the end (of the numbers, or of the grant).
        self.check_at = [near, self.soft_seq, self.lease.renew_at]
            .into_iter()
            .filter(|&s| s > self.last_seq)
            .map(|s| s - 1)
            .fold(self.seq_end.min(self.lease.end), u64::min);
    }

    /// A new grant of sequence numbers (already published by the main lcore).
    pub fn extend_lease(&mut self, lease: Lease) {
        if lease.end <= self.lease.end {
            return;
        }
        self.lease = lease;
        self.events.rearm(SaEventKind::LeaseLow);
        self.next_check();
    }

    pub fn lease(&self) -> Lease {
        self.lease
    }

    /// Counts packets sealed under the SA (and their inner bytes), and raises what the bytes
    /// reached; once a batch. A hard byte limit stops the SA at once.
    #[inline]
    pub fn carried(&mut self, packets: u64, bytes: u64) {
        let (_, total) = self.counters.carried(packets, bytes);
        self.counters.set_seq(self.last_seq);
        if total >= self.bytes_check_at {
            self.bytes_reached(total);
        }
    }

    #[cold]
    fn bytes_reached(&mut self, total: u64) {
        if total >= self.soft_bytes {
            self.events.raise(SaEventKind::SoftLimit);
            self.bytes_check_at = self.hard_bytes;
        }
        if total >= self.hard_bytes {
            self.events.raise(SaEventKind::HardLimit);
            // No sequence number is left: the next packet stops at once.
            self.seq_end = self.last_seq;
            self.check_at = self.last_seq;
            self.bytes_check_at = u64::MAX;
        }
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    fn hard_bytes_reached(&self) -> bool {
        self.counters.bytes.get() >= self.hard_bytes
    }

    /// The peer: where the SA's packets go, for the outer next hop.
    pub fn remote(&self) -> std::net::IpAddr {
        self.outer.remote()
    }
}

/// An inbound SA, looked up by SPI; its owner is the only writer of its replay window. What
/// every packet touches is in the first two cache lines; the lifetimes the slow path reads are
/// in the third.
#[repr(C, align(64))]
pub struct InboundSa {
    pub crypto: SaCrypto,
    /// Our address the SA's packets must be sent to.
    pub local: Ipv4Addr,
    /// Its tunnel, and that tunnel's MSS clamp for the TCP SYNs it decrypts (0: none), kept
    /// here so that decryption reads no other line for it.
    pub tunnel: crate::forward::TunnelId,
    pub tcp_mss: u16,
    /// Expect ESP in UDP (NAT-T) rather than raw ESP.
    pub udp_encap: bool,
    /// The hard lifetime is reached: every packet is dropped.
    pub expired: bool,
    pub events: EventFlags,
    pub replay: ReplayWindow,
    pub counters: CounterRef,
    /// `carried` takes its slow path at this many packets, or bytes (the smaller lifetimes).
    check_at: (u64, u64),
    /// `None`: any inner addresses (the usual case, and no pointer to follow).
    pub selectors: Option<Box<Selectors>>,
    // Third line: read by the slow path only. Lifetimes as (packets, inner bytes), `u64::MAX`:
    // none.
    soft: (u64, u64),
    hard: (u64, u64),
}

/// What an inbound SA is built from, besides its keys and window.
#[derive(Debug, Clone)]
pub struct InboundParams {
    /// The tunnel it belongs to (what its decrypted packets came through), and its MSS clamp
    /// (0: none).
    pub tunnel: crate::forward::TunnelId,
    pub tcp_mss: u16,
    pub spi: u32,
    pub esn: bool,
    pub local: Ipv4Addr,
    pub udp_encap: bool,
    pub selectors: Selectors,
    pub soft: Lifetime,
    pub hard: Lifetime,
}

impl InboundSa {
    pub fn new(
        p: InboundParams,
        keys: &KeyMaterial,
        replay: ReplayWindow,
        counters: CounterRef,
        backend: &Backend,
    ) -> Result<InboundSa, CryptoError> {
        let limit = |l: Lifetime| (l.packets.unwrap_or(u64::MAX), l.bytes.unwrap_or(u64::MAX));
        let (soft, hard) = (limit(p.soft), limit(p.hard));
        let any = p.selectors.is_any();
        Ok(InboundSa {
            crypto: SaCrypto::new(p.spi, p.esn, keys, Op::Open, backend)?,
            local: p.local,
            tunnel: p.tunnel,
            tcp_mss: p.tcp_mss,
            udp_encap: p.udp_encap,
            expired: false,
            events: EventFlags::default(),
            replay,
            counters,
            check_at: (soft.0.min(hard.0), soft.1.min(hard.1)),
            selectors: (!any).then(|| Box::new(p.selectors)),
            soft,
            hard,
        })
    }

    /// Does a decrypted packet from `src` to `dst` belong to this SA's tunnel?
    #[inline(always)]
    pub fn admits(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        self.selectors
            .as_deref()
            .is_none_or(|s| s.admits_inbound(src, dst))
    }

    /// Does a decrypted IPv6 packet from `src` to `dst` belong to this SA's tunnel?
    #[inline]
    pub fn admits6(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        self.selectors
            .as_deref()
            .is_none_or(|s| s.admits_inbound6(src, dst))
    }

    /// Writes the replay window's top into the SA's counters, where the main lcore publishes
    /// it for the next start of the dataplane.
    #[inline]
    pub fn publish_top(&self) {
        self.counters.set_seq(self.replay.top());
    }

    /// Counts one decapsulated packet (its inner bytes), and raises what that reached. A hard
    /// limit stops the SA at once.
    #[inline(always)]
    pub fn carried(&mut self, bytes: u64) {
        let (packets, total) = self.counters.carried(1, bytes);
        // The window's top for the next start, every 32 packets (at every packet it cost 6 %
        // of the decrypt rate at 64 B); exact whenever the SA leaves its worker (`publish_top`).
        if packets % 32 == 0 {
            self.publish_top();
        }
        if packets >= self.check_at.0 || total >= self.check_at.1 {
            self.limit_reached(packets, total);
        }
    }

    #[cold]
    fn limit_reached(&mut self, packets: u64, bytes: u64) {
        if packets >= self.soft.0 || bytes >= self.soft.1 {
            self.events.raise(SaEventKind::SoftLimit);
            self.check_at = self.hard;
        }
        if packets >= self.hard.0 || bytes >= self.hard.1 {
            self.events.raise(SaEventKind::HardLimit);
            self.expired = true;
            self.check_at = (u64::MAX, u64::MAX);
        }
    }
}

// The hot parts fit the two cache lines the forwarder prefetches a stage ahead
// (`prefetch::hot_lines`); the third holds the lifetimes.
const _: () = assert!(std::mem::offset_of!(OutboundSa, seq_end) <= 128);
const _: () = assert!(std::mem::offset_of!(InboundSa, soft) <= 128);
const _: () = assert!(std::mem::size_of::<OutboundSa>() <= 192);
const _: () = assert!(std::mem::size_of::<InboundSa>() <= 192);

#[cfg(test)]
mod tests;
