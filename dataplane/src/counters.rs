//! Counters written by one worker and read by anyone (telemetry, stats file).
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
        /// The route points at a tunnel with no outbound SA installed.
        NoSa = "no_sa",
        ExceedsTunnelMtu = "exceeds_tunnel_mtu",
        NoRoute = "no_route",
        NoNeighbor = "no_neighbor",
        TtlExceeded = "ttl_exceeded",
        BadIpChecksum = "bad_ip_checksum",
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

/// Per-SA counters; the owning worker writes them, telemetry reads them.
#[derive(Default, Debug)]
pub struct SaCounters {
    pub packets: Counter,
    pub bytes: Counter,
    pub auth_failures: Counter,
    pub replay_errors: Counter,
    pub bad_trailers: Counter,
    pub ts_check_fail: Counter,
    pub seq_exhausted: Counter,
}

impl SaCounters {
    /// Counts packets (and their inner bytes) carried under the SA; only its owner calls this.
    #[inline]
    pub fn carried(&self, packets: u64, bytes: u64) {
        self.packets.add(packets);
        self.bytes.add(bytes);
    }

    /// Name/value pairs in a stable order, for JSON and telemetry.
    pub fn fields(&self) -> [(&'static str, u64); 7] {
        [
            ("packets", self.packets.get()),
            ("bytes", self.bytes.get()),
            ("auth_failures", self.auth_failures.get()),
            ("replay_errors", self.replay_errors.get()),
            ("bad_trailers", self.bad_trailers.get()),
            ("ts_check_fail", self.ts_check_fail.get()),
            ("seq_exhausted", self.seq_exhausted.get()),
        ]
    }
}
