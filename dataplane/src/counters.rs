//! Counters written by one worker and read by anyone (telemetry, the stats file).
//!
//! Each counter has exactly one writer, so an increment is a relaxed load and store: no
//! locked instruction on the fast path, yet readers on other threads see a torn-free value.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Default, Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`; only the owning thread may call this.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

macro_rules! stats {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u8)]
        pub enum $name { $($(#[$vm])* $v,)* }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v,)*];
            pub const COUNT: usize = Self::ALL.len();
            /// The name used in JSON, telemetry and docs.
            pub fn name(self) -> &'static str {
                match self { $($name::$v => $s,)* }
            }
        }
    };
}

stats! {
    /// Global per-worker counters, named after Junos `show security ipsec statistics` where
    /// one exists there.
    Stat {
        RxPackets = "rx_packets",
        TxPackets = "tx_packets",
        EncryptedPackets = "encrypted_packets",
        EncryptedBytes = "encrypted_bytes",
        DecryptedPackets = "decrypted_packets",
        DecryptedBytes = "decrypted_bytes",
        ForwardedPackets = "forwarded_packets",
        /// ICV did not verify.
        EspAuthFailures = "esp_auth_failures",
        /// Duplicate or older than the window.
        ReplayErrors = "replay_errors",
        /// ESP/UDP headers too short or not what the SA expects.
        BadHeaders = "bad_headers",
        /// Pad length or padding bytes wrong, or a next header we do not carry.
        BadTrailers = "bad_trailers",
        /// No SA for the incoming SPI (Junos "Invalid SPI").
        InvalidSpi = "invalid_spi",
        /// Decrypted packet does not match the SA's traffic selectors.
        TsCheckFail = "ts_check_fail",
        /// Decrypted payload is not a valid IPv4 packet.
        BadInnerPackets = "bad_inner_packets",
        /// RFC 4303 dummy packets (next header 59), dropped as intended.
        DummyPackets = "dummy_packets",
        /// The outbound SA ran out of sequence numbers and stopped.
        SeqExhausted = "seq_exhausted",
        /// The outbound SA used every sequence number granted before the next grant came
        /// (the main lcore was late): dropped, never sent above a published grant.
        SeqLeaseWaits = "seq_lease_waits",
        /// The route points at a tunnel with no outbound SA installed.
        NoSa = "no_sa",
        /// The packet's SA reached its hard lifetime (packets or bytes) and carries no more.
        SaHardLimit = "sa_hard_limit",
        ExceedsTunnelMtu = "exceeds_tunnel_mtu",
        NoRoute = "no_route",
        /// Packets a policy sent into a policy-based VPN's tunnel.
        PolicyTunneled = "policy_tunneled",
        /// Packets a policy let through to be routed as usual.
        PolicyPermitted = "policy_permitted",
        /// Packets a policy dropped.
        PolicyDenied = "policy_denied",
        /// Packets no policy matched (routed as usual), with policies configured.
        PolicyUnmatched = "policy_unmatched",
        NoNeighbor = "no_neighbor",
        TtlExceeded = "ttl_exceeded",
        /// IPv6's TTL: a packet to forward arrived with a hop limit of 1 or 0.
        HopLimitExceeded = "hop_limit_exceeded",
        /// IPv6 a router must not forward (RFC 4291): a link-local source or destination, or a
        /// multicast source.
        Ipv6NotForwarded = "ipv6_not_forwarded",
        BadIpChecksum = "bad_ip_checksum",
        /// ESP in UDP over IPv6 whose UDP checksum is 0 or wrong (RFC 8200 section 8.1).
        BadUdpChecksum = "bad_udp_checksum",
        /// Frames, IP or UDP headers shorter than they claim, or malformed.
        Malformed = "malformed",
        Fragments = "fragments",
        /// Destination MAC neither ours nor broadcast.
        NotForUs = "not_for_us",
        UnsupportedEthertype = "unsupported_ethertype",
        /// Multi-segment mbufs, which this dataplane does not build or accept.
        Segmented = "segmented",
        /// Not enough head- or tailroom to encapsulate in place.
        NoBufferRoom = "no_buffer_room",
        /// RFC 3948 NAT-keepalive (one 0xff byte on the NAT-T port).
        NattKeepalives = "natt_keepalives",
        /// UDP 4500 with a zero non-ESP marker, or UDP 500: IKE, for the control process.
        IkePackets = "ike_packets",
        /// Packets for the gateway itself handed to the main lcore (ARP, ICMP, IKE).
        Punted = "punted",
        PuntDrops = "punt_drops",
        /// The TX queue was full.
        TxDrops = "tx_drops",
        /// The crypto backend failed to seal a packet (a device error, never a packet's fault).
        CryptoErrors = "crypto_errors",
        /// Bursts spread over so many SAs that their crypto went through the worker's queue
        /// pair in one trip, rather than one CPU-crypto call per SA.
        QueuedBursts = "crypto_queue_bursts",
        /// Commands from the main lcore that did not fit the worker's tables (a bug there:
        /// never seen).
        CommandErrors = "command_errors",
    }
}

/// One worker's global counters.
pub struct StatBlock([Counter; Stat::COUNT]);

impl Default for StatBlock {
    fn default() -> Self {
        StatBlock(std::array::from_fn(|_| Counter::default()))
    }
}

impl StatBlock {
    #[inline]
    pub fn inc(&self, s: Stat) {
        self.0[s as usize].inc();
    }
    #[inline]
    pub fn add(&self, s: Stat, n: u64) {
        self.0[s as usize].add(n);
    }
    pub fn get(&self, s: Stat) -> u64 {
        self.0[s as usize].get()
    }
}

/// Per-SA counters in the main lcore's counter slots (`mem::Slots`); the worker that owns the
/// SA writes them, anyone reads them. What every packet or burst writes is in the first cache
/// line.
#[derive(Default, Debug)]
#[repr(C, align(64))]
pub struct SaCounters {
    pub packets: Counter,
    pub bytes: Counter,
    /// The highest sequence number the SA sent (outbound, once a burst) or accepted (inbound,
    /// its replay window's top): what a restarted dataplane resumes an inbound window from.
    /// Not a counter: `clear` leaves it.
    pub seq: Counter,
    pub auth_failures: Counter,
    pub replay_errors: Counter,
    pub bad_trailers: Counter,
    pub ts_check_fail: Counter,
    pub seq_exhausted: Counter,
    // Second line: rare.
    /// Packets dropped because the SA reached its hard lifetime.
    pub hard_limit_drops: Counter,
}

const _: () = assert!(std::mem::size_of::<SaCounters>() == 128);
const _: () = assert!(std::mem::offset_of!(SaCounters, seq_exhausted) < 64);

// SAFETY: counters are atomics, and an all-zero atomic is 0.
unsafe impl crate::mem::Zeroable for SaCounters {}

/// An SA's counters in their slot.
pub type CounterRef = crate::mem::SlotRef<SaCounters>;

/// Counters for an SA made outside a control state (a load generator's mirror SAs, tests):
/// a slot of its own on the heap, never given back.
pub fn standalone() -> CounterRef {
    let mut slots: crate::mem::Slots<SaCounters> =
        match crate::mem::Slots::new(crate::mem::Memory::Heap, -1, 1, "SA counters") {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
    // One slot out: the slots keep their memory when dropped.
    match slots.alloc(|c| c.reset()) {
        Some(c) => c,
        None => unreachable!("one free slot"),
    }
}

/// The names of `SaCounters::fields`, in its order.
pub const SA_COUNTER_NAMES: [&str; 8] = [
    "packets",
    "bytes",
    "auth_failures",
    "replay_errors",
    "bad_trailers",
    "ts_check_fail",
    "seq_exhausted",
    "hard_limit_drops",
];

impl SaCounters {
    /// Counts packets (and their inner bytes) carried under the SA, and returns the SA's
    /// packets and bytes so far; only its owner calls this.
    #[inline]
    pub fn carried(&self, packets: u64, bytes: u64) -> (u64, u64) {
        let p = self.packets.get().wrapping_add(packets);
        let b = self.bytes.get().wrapping_add(bytes);
        self.packets.0.store(p, Relaxed);
        self.bytes.0.store(b, Relaxed);
        (p, b)
    }

    /// Values in the order of `SA_COUNTER_NAMES`.
    pub fn values(&self) -> [u64; 8] {
        [
            self.packets.get(),
            self.bytes.get(),
            self.auth_failures.get(),
            self.replay_errors.get(),
            self.bad_trailers.get(),
            self.ts_check_fail.get(),
            self.seq_exhausted.get(),
            self.hard_limit_drops.get(),
        ]
    }

    /// Name/value pairs in a stable order, for JSON and telemetry.
    pub fn fields(&self) -> [(&'static str, u64); 8] {
        let v = self.values();
        std::array::from_fn(|i| (SA_COUNTER_NAMES[i], v[i]))
    }

    /// Records the highest sequence number sent or accepted; only its owner calls this.
    #[inline(always)]
    pub fn set_seq(&self, seq: u64) {
        self.seq.0.store(seq, Relaxed);
    }

    /// Zeroes every counter: only before the slot is handed to a new SA.
    pub fn reset(&self) {
        for c in [
            &self.seq,
            &self.packets,
            &self.bytes,
            &self.auth_failures,
            &self.replay_errors,
            &self.bad_trailers,
            &self.ts_check_fail,
            &self.seq_exhausted,
            &self.hard_limit_drops,
        ] {
            c.0.store(0, Relaxed);
        }
    }
}
