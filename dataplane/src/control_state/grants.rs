//! Sequence-number grants: no outbound SA ever sends a number that was not first published in
//! the channel's segment.
//!
//! The ESP sequence number is the variable part of the AES-GCM nonce (RFC 4106), so an SA
//! that sent numbers 1..n and is installed again after a restart with its key must resume above
//! n. A worker cannot publish its counter on every packet, so the main lcore grants each
//! outbound SA `GRANT` numbers at a time, writes the grant's end into the segment, and only
//! then hands it to the worker; the SA asks for the next grant when it has used half of the
//! current one. Whatever becomes of the process, every number sent is at most the published
//! end, and the next start of the dataplane (which reads the old segment before it replaces
//! it) resumes each SA it is given again above that end.
//!
//! Each tunnel has two records, used in turn, so that an SA being replaced keeps its record
//! until its successor has one. Only with a channel: standalone, nothing would read them.

use super::{refuse, ChangeError, ControlState};
use crate::forward::{TunnelId, WorkerCommand as Cmd};
use crate::sa::Lease;
use channel::{Grant, Name, Segment};
use std::collections::HashMap;

/// Sequence numbers granted at a time: at 15 Mpps under one SA a grant lasts 70 ms, and the
/// next one is asked for 35 ms before it runs out.
pub const GRANT: u64 = 1 << 20;

/// An SA as the grants table names it: its SPI and the first 16 bytes of a digest of its SPI
/// and key.
pub type GrantKey = (u32, [u8; 16]);

pub struct Grants {
    segment: Segment,
    /// Numbers a grant gives (`GRANT`; smaller in tests).
    size: u64,
    /// The highest number granted to SAs that are gone: by the previous start of the dataplane
    /// (read from its segment), or replaced since.
    prior: HashMap<GrantKey, u64>,
    /// The last published top of inbound SAs' replay windows, the same way.
    prior_windows: HashMap<GrantKey, u64>,
}

/// What a tunnel's outbound SA was granted.
#[derive(Debug, Clone, Copy)]
pub struct TunnelGrant {
    pub key: GrantKey,
    pub lease: Lease,
    /// Which of the tunnel's two records holds it.
    pub record: u32,
    /// The SA's sequence-number space.
    pub space: u64,
}

impl Grants {
    pub fn new(segment: Segment, previous: Vec<Grant>, windows: Vec<Grant>) -> Grants {
        let by_key = |list: Vec<Grant>| {
            let mut m: HashMap<GrantKey, u64> = HashMap::new();
            for g in list {
                let e = m.entry((g.spi, g.key)).or_insert(0);
                *e = (*e).max(g.end);
            }
            m
        };
        Grants {
            segment,
            size: GRANT,
            prior: by_key(previous),
            prior_windows: by_key(windows),
        }
    }
}

/// The grant key of an SA.
pub fn grant_key(spi: u32, keys: &[u8]) -> GrantKey {
    let d = super::sync::key_digest(spi, keys);
    let mut k = [0; 16];
    k.copy_from_slice(&d[..16]);
    (spi, k)
}

/// The sequence-number space of an SA.
pub fn space(esn: bool) -> u64 {
    if esn {
        u64::MAX
    } else {
        u64::from(u32::MAX)
    }
}

/// A grant of `size` numbers from `last` on (exclusive), asked to be renewed at its half.
fn lease_after(last: u64, size: u64, space: u64) -> Lease {
    let end = last.saturating_add(size).min(space);
    Lease {
        end,
        renew_at: end.saturating_sub(size / 2).max(last.saturating_add(1)),
    }
}

impl ControlState {
    /// From now on outbound SAs run on grants published in `segment`; `previous` are the
    /// grants the last start of the dataplane left.
    pub fn use_grants(&mut self, segment: Segment, previous: Vec<Grant>, windows: Vec<Grant>) {
        self.grants = Some(Grants::new(segment, previous, windows));
    }

    /// Where an inbound SA's replay window resumes: above what the same SA (SPI and key) was
    /// last published to have accepted, so that its old packets are not accepted again.
    pub(super) fn window_resume(&self, key: GrantKey) -> u64 {
        self.grants
            .as_ref()
            .and_then(|g| g.prior_windows.get(&key).copied())
            .unwrap_or(0)
    }

    /// An inbound SA that goes: its window's top is remembered for this run.
    pub(super) fn retire_window(&mut self, key: GrantKey, top: u64) {
        if let Some(g) = &mut self.grants {
            let e = g.prior_windows.entry(key).or_insert(0);
            *e = (*e).max(top);
        }
    }

    /// Publishes the top of every inbound SA's replay window (from the counters its worker
    /// writes with each packet): what the next start of the dataplane resumes them from.
    /// Called with every stats snapshot, and once the workers have stopped.
    pub fn publish_windows(&self) {
        let Some(g) = &self.grants else {
            return;
        };
        let v = self.lock_view();
        for (spi, r) in &self.inbound {
            let Some(key) = r.key else {
                continue;
            };
            let top = v
                .sas
                .get(&super::view::SaKey::In(*spi))
                .map_or(0, |s| s.counters.seq.get());
            if top > 0 {
                g.segment.publish_window(
                    r.index.0,
                    Grant {
                        spi: *spi,
                        key: key.1,
                        end: top,
                    },
                );
            }
        }
    }

    /// Grants of `n` numbers instead of `GRANT` (tests: to see renewals with few packets).
    pub fn set_grant_size(&mut self, n: u64) {
        if let Some(g) = &mut self.grants {
            g.size = n.max(2);
        }
    }

    /// Where a new outbound SA of `tunnel` starts and what it is first granted (not yet
    /// published: `publish_grant` does, once nothing can fail any more).
    pub(super) fn plan_grant(
        &self,
        what: &str,
        tunnel: Name,
        key: GrantKey,
        first_seq: u64,
        esn: bool,
    ) -> Result<(u64, Option<TunnelGrant>), ChangeError> {
        let Some(g) = &self.grants else {
            return Ok((first_seq, None));
        };
        let space = space(esn);
        let used = g.prior.get(&key).copied().unwrap_or(0);
        let first = first_seq.max(used.saturating_add(1));
        if first > space || used == u64::MAX {
            return refuse(
                what,
                "every sequence number was used under this key: it needs a new key",
            );
        }
        let t = self.tunnels.get(&tunnel);
        let record = t.and_then(|t| t.grant).map_or(0, |g| 1 - g.record);
        let id = t.map_or(u32::MAX, |t| t.id);
        if id.saturating_mul(2).saturating_add(1) >= g.segment.grant_slots() {
            return refuse(
                what,
                "the channel's grants table has no record for its tunnel",
            );
        }
        Ok((
            first,
            Some(TunnelGrant {
                key,
                lease: lease_after(first - 1, g.size, space),
                record,
                space,
            }),
        ))
    }

    /// Publishes a tunnel's grant; the SA must not use it before this returns. (`plan_grant`
    /// made sure the table has the record.)
    pub(super) fn publish_grant(&self, tunnel: TunnelId, g: &TunnelGrant) -> bool {
        let Some(grants) = &self.grants else {
            return true;
        };
        grants.segment.publish_grant(
            tunnel.saturating_mul(2).saturating_add(g.record),
            Grant {
                spi: g.key.0,
                key: g.key.1,
                end: g.lease.end,
            },
        )
    }

    /// An SA that goes: its grant is remembered, so that its key installed again later in
    /// this run resumes above it.
    pub(super) fn retire_grant(&mut self, g: Option<TunnelGrant>) {
        if let (Some(grants), Some(g)) = (&mut self.grants, g) {
            let e = grants.prior.entry(g.key).or_insert(0);
            *e = (*e).max(g.lease.end);
        }
    }

    /// The outbound SA `spi` of some tunnel used half of its grant: the next one, published,
    /// then sent to its worker.
    pub(super) fn grant_more(&mut self, spi: u32) {
        let Some((&name, t)) = self.tunnels.iter().find(|(_, t)| t.outbound == Some(spi)) else {
            return;
        };
        let (id, owner) = (t.id, t.owner);
        let Some(mut g) = t.grant else {
            return;
        };
        if g.lease.end >= g.space {
            return;
        }
        let size = self.grants.as_ref().map_or(GRANT, |g| g.size);
        g.lease = lease_after(g.lease.end, size, g.space);
        if !self.publish_grant(id, &g) {
            return;
        }
        if let Some(t) = self.tunnels.get_mut(&name) {
            t.grant = Some(g);
        }
        self.generation += 1;
        let gen = self.generation;
        self.send(
            gen,
            owner,
            Cmd::ExtendLease {
                tunnel: id,
                spi,
                lease: g.lease,
            },
        );
    }
}
