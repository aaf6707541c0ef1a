//! The shared-memory segment between one dataplane and its control process: a file under
//! `/dev/shm` (mode 0600) that the dataplane creates at every start and the control attaches
//! to. Its header says what it is (magic, layout version) and which start of the dataplane
//! made it (the generation); a heartbeat says the dataplane is alive. Four rings follow, then
//! the stats region.
//!
//! ```text
//! 0        header (one page): magic, version, sizes, generation, heartbeats, pids, layout
//! 4096     commands ring  control -> dataplane   (changes, resync)
//!          events ring    dataplane -> control   (results, SA limits, ACQUIRE, ...)
//!          punt ring      dataplane -> control   (IKE packets from the wire)
//!          inject ring    control -> dataplane   (packets the control sends)
//!          stats region   written by the dataplane, read by the control
//!          grants         per outbound SA: the highest sequence number it may ever have used
//!          windows        per inbound SA: the top of its replay window, as last published
//! ```

use crate::ring::{self, Consumer, Producer, RingError, RingLayout};
use memmap2::MmapRaw;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

/// The first bytes of every segment.
pub const MAGIC: [u8; 8] = *b"ESPGWSHM";
/// Changes whenever the header, a ring's slot format or the messages change shape.
pub const LAYOUT_VERSION: u32 = 9;
const HEADER_LEN: usize = 4096;

/// The four rings, in the order they lie in the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingId {
    Commands = 0,
    Events = 1,
    Punt = 2,
    Inject = 3,
}

const RINGS: usize = 4;

/// How big each ring and the stats region are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub rings: [RingLayout; RINGS],
    pub stats_len: u64,
    /// Records in the grants table: one per outbound SA slot (tunnel id).
    pub grants: u32,
    /// Records in the windows table: one per inbound SA slot.
    pub windows: u32,
}

impl Default for Layout {
    /// Commands and events sized for pushing 10 000 tunnels without waiting long; punt and
    /// inject slots hold a 1500-byte datagram with its addresses.
    fn default() -> Layout {
        let r = |slots, slot_size| RingLayout { slots, slot_size };
        Layout {
            rings: [r(4096, 1024), r(4096, 256), r(1024, 2048), r(1024, 2048)],
            stats_len: 1 << 20,
            grants: 4096,
            windows: 8192,
        }
    }
}

impl Layout {
    /// Where the rings, the stats region and the grants table start, and the total size.
    fn offsets(&self) -> ([u64; RINGS], u64, u64, u64, u64) {
        let mut at = HEADER_LEN as u64;
        let mut rings = [0; RINGS];
        for (o, r) in rings.iter_mut().zip(&self.rings) {
            *o = at;
            at += r.bytes() as u64;
        }
        let stats = at;
        let grants = stats + self.stats_len.next_multiple_of(64);
        let windows = grants + u64::from(self.grants) * GRANT_LEN as u64;
        let end = windows + u64::from(self.windows) * GRANT_LEN as u64;
        (rings, stats, grants, windows, end)
    }
}

#[repr(C)]
struct RingDesc {
    offset: u64,
    slots: u32,
    slot_size: u32,
}

/// The header at offset 0. Plain fields are written once, by the dataplane, before `magic`.
#[repr(C)]
struct Header {
    magic: AtomicU64,
    version: u32,
    header_len: u32,
    total_len: u64,
    /// Set anew at every start of the dataplane: a control that sees it change replays its
    /// whole state.
    generation: u64,
    dataplane_pid: u32,
    /// 0 while the dataplane starts, 1 once its ports are up and it takes commands.
    ready: AtomicU32,
    /// Milliseconds since the dataplane started, bumped by its main loop.
    heartbeat: AtomicU64,
    control_pid: AtomicU32,
    _pad: u32,
    control_heartbeat: AtomicU64,
    rings: [RingDesc; RINGS],
    stats_offset: u64,
    stats_len: u64,
    grants_offset: u64,
    grants: u32,
    windows: u32,
    windows_offset: u64,
}

const _: () = assert!(std::mem::size_of::<Header>() <= HEADER_LEN);

/// One record of the grants table: an outbound SA (its SPI and a fingerprint of its key) and
/// the highest sequence number it was granted. Written by the dataplane's main lcore before
/// the SA may use the numbers; read by the next start of the dataplane, and by the control.
#[repr(C, align(32))]
struct GrantRecord {
    end: AtomicU64,
    spi: AtomicU32,
    _pad: u32,
    key: [AtomicU64; 2],
}

const GRANT_LEN: usize = std::mem::size_of::<GrantRecord>();
const _: () = assert!(GRANT_LEN == 32);

/// A grant as read from the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub spi: u32,
    /// The first 16 bytes of a digest of the SA's SPI and key (never the key).
    pub key: [u8; 16],
    /// No number above this was ever sent under this SA.
    pub end: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not an espgw channel (no magic; made by something else?)")]
    BadMagic { path: PathBuf },
    #[error("{path}: layout version {found}, this build speaks {LAYOUT_VERSION} (run the espgw-control and espgw-dataplane of one release)")]
    Version { path: PathBuf, found: u32 },
    #[error("{path}: {what}")]
    Malformed { path: PathBuf, what: String },
    #[error("{path}: in use by a running dataplane (pid {pid})")]
    InUse { path: PathBuf, pid: u32 },
    #[error("{path}: {ring:?} ring: {source}")]
    Ring {
        path: PathBuf,
        ring: RingId,
        source: RingError,
    },
}

/// The mapping, shared by the segment and every ring end taken from it, so that the memory
/// stays mapped while any of them lives.
struct Map {
    raw: MmapRaw,
    _file: File,
}

// SAFETY: the mapping is shared memory by design; all access through it goes through the
// rings' and the header's atomics.
unsafe impl Send for Map {}
unsafe impl Sync for Map {}

/// One mapped segment.
#[derive(Clone)]
pub struct Segment {
    map: Arc<Map>,
    path: PathBuf,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment").field("path", &self.path).finish()
    }
}

impl Segment {
    /// Creates the segment at `path` for a dataplane starting now, replacing one a stopped
    /// dataplane left; refused while a live process made it. Mode 0600.
    pub fn create(path: &Path, layout: Layout) -> Result<Segment, SegmentError> {
        let io = |source| SegmentError::Io {
            path: path.into(),
            source,
        };
        if let Ok(old) = Segment::attach(path) {
            let pid = old.dataplane_pid();
            if pid != std::process::id() && process_alive(pid) {
                return Err(SegmentError::InUse {
                    path: path.into(),
                    pid,
                });
            }
        }
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        for r in &layout.rings {
            if !r.is_valid() {
                return Err(SegmentError::Malformed {
                    path: path.into(),
                    what: format!(
                        "ring layout {r:?}: slots a power of two, slot size a multiple of 64"
                    ),
                });
            }
        }
        let (offsets, stats_offset, grants_offset, windows_offset, total) = layout.offsets();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        // The mode a umask or an existing ACL may have changed: 0600 is what keys need.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io)?;
        file.set_len(total).map_err(io)?;
        let raw = MmapRaw::map_raw(&file).map_err(io)?;
        let seg = Segment {
            map: Arc::new(Map { raw, _file: file }),
            path: path.into(),
        };
        let h = seg.header_mut_ptr();
        // SAFETY: a fresh mapping of `total` zeroed bytes, HEADER_LEN of them the header; no
        // other process reads it until `magic` is set below.
        unsafe {
            (*h).version = LAYOUT_VERSION;
            (*h).header_len = HEADER_LEN as u32;
            (*h).total_len = total;
            (*h).generation = new_generation();
            (*h).dataplane_pid = std::process::id();
            for (i, r) in layout.rings.iter().enumerate() {
                (*h).rings[i] = RingDesc {
                    offset: offsets[i],
                    slots: r.slots,
                    slot_size: r.slot_size,
                };
                ring::init(seg.base().add(offsets[i] as usize), *r);
            }
            (*h).stats_offset = stats_offset;
            (*h).stats_len = layout.stats_len;
            (*h).grants_offset = grants_offset;
            (*h).grants = layout.grants;
            (*h).windows_offset = windows_offset;
            (*h).windows = layout.windows;
            (*h).magic
                .store(u64::from_le_bytes(MAGIC), Ordering::Release);
        }
        Ok(seg)
    }

    /// Maps an existing segment and checks that it is one this build understands.
    pub fn attach(path: &Path) -> Result<Segment, SegmentError> {
        let io = |source| SegmentError::Io {
            path: path.into(),
            source,
        };
        let bad = |what: String| SegmentError::Malformed {
            path: path.into(),
            what,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len < HEADER_LEN as u64 {
            return Err(SegmentError::BadMagic { path: path.into() });
        }
        let raw = MmapRaw::map_raw(&file).map_err(io)?;
        let seg = Segment {
            map: Arc::new(Map { raw, _file: file }),
            path: path.into(),
        };
        let h = seg.header();
        if h.magic.load(Ordering::Acquire) != u64::from_le_bytes(MAGIC) {
            return Err(SegmentError::BadMagic { path: path.into() });
        }
        if h.version != LAYOUT_VERSION {
            return Err(SegmentError::Version {
                path: path.into(),
                found: h.version,
            });
        }
        if h.total_len != len || h.header_len as usize != HEADER_LEN {
            return Err(bad(format!(
                "header says {} bytes, the file has {len}",
                h.total_len
            )));
        }
        let mut end = HEADER_LEN as u64;
        for (i, d) in h.rings.iter().enumerate() {
            let r = RingLayout {
                slots: d.slots,
                slot_size: d.slot_size,
            };
            if !r.is_valid() || d.offset != end || d.offset % 64 != 0 {
                return Err(bad(format!("ring {i} descriptor {r:?} at {}", d.offset)));
            }
            end += r.bytes() as u64;
        }
        if h.stats_offset != end || end.saturating_add(h.stats_len) > len {
            return Err(bad(format!("stats region at {}", h.stats_offset)));
        }
        let grants_end = u64::from(h.grants)
            .checked_mul(GRANT_LEN as u64)
            .and_then(|n| n.checked_add(h.grants_offset));
        if h.grants_offset % 64 != 0
            || h.grants_offset < h.stats_offset + h.stats_len
            || grants_end.is_none_or(|e| e > len)
        {
            return Err(bad(format!("grants table at {}", h.grants_offset)));
        }
        let windows_end = u64::from(h.windows)
            .checked_mul(GRANT_LEN as u64)
            .and_then(|n| n.checked_add(h.windows_offset));
        if h.windows_offset % 32 != 0
            || grants_end.is_none_or(|g| h.windows_offset < g)
            || windows_end.is_none_or(|e| e > len)
        {
            return Err(bad(format!("windows table at {}", h.windows_offset)));
        }
        Ok(seg)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn base(&self) -> *mut u8 {
        self.map.raw.as_mut_ptr()
    }

    fn header_mut_ptr(&self) -> *mut Header {
        self.base() as *mut Header
    }

    fn header(&self) -> &Header {
        // SAFETY: the mapping is at least HEADER_LEN long (checked at attach, made so at
        // create) and page-aligned; the fields other processes write are atomics.
        unsafe { &*(self.base() as *const Header) }
    }

    /// Which start of the dataplane made this segment.
    pub fn generation(&self) -> u64 {
        self.header().generation
    }

    pub fn dataplane_pid(&self) -> u32 {
        self.header().dataplane_pid
    }

    /// The dataplane's ports are up and it takes commands.
    pub fn is_ready(&self) -> bool {
        self.header().ready.load(Ordering::Acquire) == 1
    }

    pub fn set_ready(&self) {
        self.header().ready.store(1, Ordering::Release);
    }

    /// The dataplane's heartbeat (milliseconds since it started).
    pub fn heartbeat(&self) -> u64 {
        self.header().heartbeat.load(Ordering::Acquire)
    }

    pub fn beat(&self, ms: u64) {
        self.header().heartbeat.store(ms, Ordering::Release);
    }

    /// The attached control's pid (0: none yet) and heartbeat.
    pub fn control(&self) -> (u32, u64) {
        let h = self.header();
        (
            h.control_pid.load(Ordering::Acquire),
            h.control_heartbeat.load(Ordering::Acquire),
        )
    }

    pub fn set_control(&self, pid: u32, beat: u64) {
        let h = self.header();
        h.control_pid.store(pid, Ordering::Release);
        h.control_heartbeat.store(beat, Ordering::Release);
    }

    fn ring_at(&self, id: RingId) -> (*mut u8, RingLayout) {
        let d = &self.header().rings[id as usize];
        let layout = RingLayout {
            slots: d.slots,
            slot_size: d.slot_size,
        };
        // SAFETY: the descriptor was checked to lie inside the mapping.
        (unsafe { self.base().add(d.offset as usize) }, layout)
    }

    /// The writing end of ring `id`. The caller is its only writer (the control for commands
    /// and inject, the dataplane for events and punt).
    pub fn producer(&self, id: RingId) -> Result<Tx, SegmentError> {
        let (base, layout) = self.ring_at(id);
        // SAFETY: inside the mapping, which `Tx` keeps alive.
        let p = unsafe { Producer::new(base, layout) }.map_err(|e| self.ring_error(id, e))?;
        Ok(Tx {
            ring: p,
            _map: self.map.clone(),
        })
    }

    /// The reading end of ring `id`; the caller is its only reader.
    pub fn consumer(&self, id: RingId) -> Result<Rx, SegmentError> {
        let (base, layout) = self.ring_at(id);
        // SAFETY: as for `producer`.
        let c = unsafe { Consumer::new(base, layout) }.map_err(|e| self.ring_error(id, e))?;
        Ok(Rx {
            ring: c,
            _map: self.map.clone(),
        })
    }

    fn ring_error(&self, ring: RingId, source: RingError) -> SegmentError {
        SegmentError::Ring {
            path: self.path.clone(),
            ring,
            source,
        }
    }

    /// The stats region's bytes: its start (64-byte aligned) and length.
    pub fn stats_region(&self) -> (*mut u8, usize) {
        let h = self.header();
        // SAFETY: checked to lie inside the mapping.
        (
            unsafe { self.base().add(h.stats_offset as usize) },
            h.stats_len as usize,
        )
    }
}

impl Segment {
    fn table(&self, t: Table) -> (u64, u32) {
        let h = self.header();
        match t {
            Table::Grants => (h.grants_offset, h.grants),
            Table::Windows => (h.windows_offset, h.windows),
        }
    }

    fn grant_record(&self, t: Table, slot: u32) -> Option<&GrantRecord> {
        let (offset, n) = self.table(t);
        if slot >= n {
            return None;
        }
        // SAFETY: the table was checked to lie inside the mapping at attach (or made so at
        // create); records are 32-byte aligned atomics.
        Some(unsafe {
            &*(self.base().add(offset as usize + slot as usize * GRANT_LEN) as *const GrantRecord)
        })
    }

    /// Publishes a grant for the outbound SA in `slot` (the dataplane's main lcore, before the
    /// SA may use it). `false` if the table has no such slot.
    pub fn publish_grant(&self, slot: u32, g: Grant) -> bool {
        self.publish(Table::Grants, slot, g)
    }

    /// Publishes the top of the replay window of the inbound SA in `slot` (in `g.end`).
    pub fn publish_window(&self, slot: u32, g: Grant) -> bool {
        self.publish(Table::Windows, slot, g)
    }

    fn publish(&self, t: Table, slot: u32, g: Grant) -> bool {
        let Some(r) = self.grant_record(t, slot) else {
            return false;
        };
        let cur = r.end.load(Ordering::Acquire);
        let same = r.spi.load(Ordering::Relaxed) == g.spi
            && r.key[0].load(Ordering::Relaxed) == u64::from_le_bytes(first8(&g.key, 0))
            && r.key[1].load(Ordering::Relaxed) == u64::from_le_bytes(first8(&g.key, 8));
        if !same || cur == 0 {
            // Another SA in the slot: its record is replaced whole; `end` last, so a reader
            // never pairs a new SA with an old grant.
            r.end.store(0, Ordering::Release);
            r.spi.store(g.spi, Ordering::Relaxed);
            r.key[0].store(u64::from_le_bytes(first8(&g.key, 0)), Ordering::Relaxed);
            r.key[1].store(u64::from_le_bytes(first8(&g.key, 8)), Ordering::Relaxed);
        }
        r.end.store(g.end, Ordering::Release);
        true
    }

    /// Records in the grants table.
    pub fn grant_slots(&self) -> u32 {
        self.header().grants
    }

    /// Every grant in the table.
    pub fn grants(&self) -> Vec<Grant> {
        self.records(Table::Grants)
    }

    /// Records in the windows table.
    pub fn window_slots(&self) -> u32 {
        self.header().windows
    }

    /// Every inbound SA's published window top (in `Grant::end`).
    pub fn windows(&self) -> Vec<Grant> {
        self.records(Table::Windows)
    }

    fn records(&self, t: Table) -> Vec<Grant> {
        let (_, n) = self.table(t);
        (0..n)
            .filter_map(|i| self.grant_record(t, i))
            .filter_map(|r| {
                let end = r.end.load(Ordering::Acquire);
                let mut key = [0; 16];
                key[..8].copy_from_slice(&r.key[0].load(Ordering::Relaxed).to_le_bytes());
                key[8..].copy_from_slice(&r.key[1].load(Ordering::Relaxed).to_le_bytes());
                (end != 0).then(|| Grant {
                    spi: r.spi.load(Ordering::Relaxed),
                    key,
                    end,
                })
            })
            .collect()
    }

    /// The grants a previous start of the dataplane left in the segment at `path` (none if
    /// there is no segment there, or one this build does not read).
    pub fn previous_grants(path: &Path) -> Vec<Grant> {
        Segment::attach(path)
            .map(|s| s.grants())
            .unwrap_or_default()
    }

    /// The windows a previous start of the dataplane left at `path`.
    pub fn previous_windows(path: &Path) -> Vec<Grant> {
        Segment::attach(path)
            .map(|s| s.windows())
            .unwrap_or_default()
    }
}

fn first8(b: &[u8; 16], at: usize) -> [u8; 8] {
    let mut o = [0; 8];
    o.copy_from_slice(&b[at..at + 8]);
    o
}

/// The two tables of `Grant` records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    /// Outbound SAs: the highest sequence number granted.
    Grants,
    /// Inbound SAs: the top of the replay window.
    Windows,
}

/// A ring's writing end, with the mapping it lives in.
pub struct Tx {
    pub ring: Producer,
    _map: Arc<Map>,
}

/// A ring's reading end, with the mapping it lives in.
pub struct Rx {
    pub ring: Consumer,
    _map: Arc<Map>,
}

/// A generation no earlier start had: the wall clock in nanoseconds, mixed with the pid.
fn new_generation() -> u64 {
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (ns ^ (u64::from(std::process::id()) << 48)).max(1)
}

fn process_alive(pid: u32) -> bool {
    pid != 0 && Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests;
