//! SAs: each built on the main lcore (its cipher on the backend, its counters, its replay
//! window) in its worker's SA pool, and handed to the worker that owns its tunnel; inbound SPIs
//! told to the other workers, so that they hand its packets over.

use super::view::{SaKey, SaView};
use super::{refuse, ChangeError, ControlState, InboundRec};
use crate::counters::CounterRef;
use crate::esp::outer::TunnelEncap;
use crate::esp::replay::{ReplayWindow, MAX_WINDOW};
use crate::forward::{InboundIndex, WorkerCommand as Cmd, WorkerIndex};
use crate::sa::{Direction, InboundParams, InboundSa, OutboundParams, OutboundSa};
use channel::{InboundSaSpec, Name, OutboundSaSpec, SaSpec};

/// RFC 4303 section 2.1: SPI 0 is never sent and 1-255 are reserved by IANA.
const MIN_SPI: u32 = 256;

impl ControlState {
    /// What telemetry shows of an SA: its settings, where it lives and its counters.
    #[allow(clippy::too_many_arguments)]
    fn sa_view(
        &self,
        sa: &SaSpec,
        direction: Direction,
        replay_window: u32,
        owner: WorkerIndex,
        group: usize,
        encap: &TunnelEncap,
        counters: CounterRef,
    ) -> SaView {
        SaView {
            spi: sa.spi,
            direction,
            tunnel: sa.tunnel,
            algorithm: sa.keys.algorithm(),
            esn: sa.esn,
            replay_window,
            local: encap.local,
            remote: encap.remote,
            udp_encap: encap.udp,
            worker: self.lcore(owner),
            group,
            soft: sa.soft,
            hard: sa.hard,
            counters,
            cleared: [0; 8],
        }
    }

    pub(super) fn set_outbound_sa(
        &mut self,
        spec: OutboundSaSpec,
        g: u64,
    ) -> Result<(), ChangeError> {
        let SaSpec { tunnel, spi, .. } = spec.sa;
        let what = format!("outbound SA {spi:#x} of tunnel {tunnel}");
        let (id, owner, group, encap) = match self.tunnels.get(&tunnel) {
            Some(t) => (t.id, t.owner, t.group, t.encap),
            None => return refuse(what, format!("no tunnel named {tunnel}")),
        };
        check_sa(&what, &spec.sa)?;
        let space = if spec.sa.esn {
            u64::MAX
        } else {
            u64::from(u32::MAX)
        };
        if spec.first_seq == 0 || spec.first_seq > space {
            return refuse(
                what,
                format!(
                    "first sequence number {} is outside 1..={space}",
                    spec.first_seq
                ),
            );
        }
        let key = super::grants::grant_key(spi, spec.sa.keys.bytes());
        let (first_seq, grant) =
            self.plan_grant(&what, tunnel, key, spec.first_seq, spec.sa.esn)?;
        let socket = self.socket(owner);
        let Some(counters) = self.counter_slot() else {
            return refuse(what, "no counter slot is free");
        };
        let params = OutboundParams {
            spi,
            esn: spec.sa.esn,
            encap,
            first_seq,
            soft: spec.sa.soft,
            hard: spec.sa.hard,
            lease: grant.map_or(crate::sa::Lease::UNLIMITED, |g| g.lease),
        };
        let sa = match OutboundSa::new(params, &spec.sa.keys, counters.clone(), &self.backend) {
            Ok(sa) => sa,
            Err(e) => {
                self.counters.free(counters);
                return refuse(what, e.to_string());
            }
        };
        let sa = match self
            .pools
            .get_mut(&socket)
            .and_then(|p| p.outbound.alloc(sa))
        {
            Some(sa) => sa,
            _ => {
                self.counters.free(counters);
                return refuse(what, "no room for another outbound SA now; try again");
            }
        };
        // Published before the worker can use a number of it.
        if let Some(gr) = &grant {
            self.publish_grant(id, gr);
        }
        self.send(g, owner, Cmd::InstallOutbound { tunnel: id, sa });
        let old = self.tunnels.get_mut(&tunnel).and_then(|t| {
            t.outbound = Some(spi);
            std::mem::replace(&mut t.grant, grant)
        });
        self.retire_grant(old);
        let view = self.sa_view(&spec.sa, Direction::Out, 0, owner, group, &encap, counters);
        self.lock_view().set_sa(SaKey::Out(tunnel), view);
        Ok(())
    }

    pub(super) fn delete_outbound_sa(&mut self, tunnel: Name, g: u64) -> Result<(), ChangeError> {
        let what = format!("outbound SA of tunnel {tunnel}");
        let Some(t) = self.tunnels.get_mut(&tunnel) else {
            return refuse(what, "no such tunnel");
        };
        if t.outbound.take().is_none() {
            return refuse(what, "the tunnel has none");
        }
        let old = t.grant.take();
        let (id, owner) = (t.id, t.owner);
        self.retire_grant(old);
        self.send(g, owner, Cmd::RemoveOutbound { tunnel: id });
        self.lock_view().remove_sa(&SaKey::Out(tunnel));
        Ok(())
    }

    pub(super) fn set_inbound_sa(
        &mut self,
        spec: InboundSaSpec,
        g: u64,
    ) -> Result<(), ChangeError> {
        let SaSpec {
            tunnel, spi, esn, ..
        } = spec.sa;
        let what = format!("inbound SA {spi:#x}");
        let (id, owner, group, encap, selectors, tcp_mss) = match self.tunnels.get(&tunnel) {
            Some(t) => (
                t.id,
                t.owner,
                t.group,
                t.encap,
                t.selectors.clone(),
                t.spec.tcp_mss.unwrap_or(0),
            ),
            None => return refuse(what, format!("no tunnel named {tunnel}")),
        };
        check_sa(&what, &spec.sa)?;
        if spec.replay_window > MAX_WINDOW {
            return refuse(
                what,
                format!("replay window {} is above {MAX_WINDOW}", spec.replay_window),
            );
        }
        if !esn && spec.highest_seen > u64::from(u32::MAX) {
            return refuse(
                what,
                "highest sequence number seen is above 2^32 - 1 without ESN",
            );
        }
        // An IPv6 tunnel's SAs are bound to the unspecified IPv4 address: ESP in IPv6 checks
        // for it (`esp_input6`), ESP in IPv4, sent to one of ours, never matches it.
        let local = match encap.local {
            std::net::IpAddr::V4(a) => a,
            std::net::IpAddr::V6(_) => std::net::Ipv4Addr::UNSPECIFIED,
        };
        let existing = match self.inbound.get(&spi) {
            Some(r) if r.tunnel != tunnel => {
                return refuse(what, format!("the SPI is in use by tunnel {}", r.tunnel));
            }
            Some(r) => Some(r.index),
            None => None,
        };
        let socket = self.socket(owner);
        let mut replay = match ReplayWindow::in_memory(spec.replay_window, esn, self.memory, socket)
        {
            Ok(w) => w,
            Err(e) => return refuse(what, e.to_string()),
        };
        let key = super::grants::grant_key(spi, spec.sa.keys.bytes());
        replay.resume_at(spec.highest_seen.max(self.window_resume(key)));
        let Some(counters) = self.counter_slot() else {
            return refuse(what, "no counter slot is free");
        };
        let params = InboundParams {
            tunnel: id,
            tcp_mss,
            spi,
            esn,
            local,
            udp_encap: encap.udp.is_some(),
            selectors,
            soft: spec.sa.soft,
            hard: spec.sa.hard,
        };
        let sa = match InboundSa::new(
            params,
            &spec.sa.keys,
            replay,
            counters.clone(),
            &self.backend,
        ) {
            Ok(sa) => sa,
            Err(e) => {
                self.counters.free(counters);
                return refuse(what, e.to_string());
            }
        };
        let index = match existing.or_else(|| self.inbound_ids.take().map(InboundIndex)) {
            Some(i) => i,
            None => {
                self.counters.free(counters);
                return refuse(
                    what,
                    format!(
                        "all {} inbound SAs are in use (dataplane.max_sas)",
                        self.capacity.inbound_sas
                    ),
                );
            }
        };
        let sa = match self
            .pools
            .get_mut(&socket)
            .and_then(|p| p.inbound.alloc(sa))
        {
            Some(sa) => sa,
            _ => {
                if existing.is_none() {
                    self.inbound_ids.give(index.0);
                }
                self.counters.free(counters);
                return refuse(what, "no room for another inbound SA now; try again");
            }
        };
        self.send(g, owner, Cmd::InstallInbound { spi, index, sa });
        if existing.is_none() {
            for w in 0..self.workers.len() as WorkerIndex {
                if w != owner {
                    self.send(g, w, Cmd::SetSpi { spi, owner });
                }
            }
        }
        let idle = spec.idle_after.map(super::idle::Watch::new);
        let key = self.grants.as_ref().map(|_| key);
        if let Some(old) = self.inbound.get(&spi).and_then(|r| r.key) {
            let top = self.inbound_top(spi);
            self.retire_window(old, top);
        }
        self.inbound.insert(
            spi,
            InboundRec {
                tunnel,
                index,
                idle,
                key,
            },
        );
        if let Some(t) = self.tunnels.get_mut(&tunnel) {
            t.inbound.insert(spi);
        }
        let view = self.sa_view(
            &spec.sa,
            Direction::In,
            spec.replay_window,
            owner,
            group,
            &encap,
            counters,
        );
        self.lock_view().set_sa(SaKey::In(spi), view);
        Ok(())
    }

    pub(super) fn delete_inbound_sa(&mut self, spi: u32, g: u64) -> Result<(), ChangeError> {
        let what = format!("inbound SA {spi:#x}");
        let top = self.inbound_top(spi);
        let Some(r) = self.inbound.remove(&spi) else {
            return refuse(what, "no such SA");
        };
        if let Some(k) = r.key {
            self.retire_window(k, top);
        }
        let owner = match self.tunnels.get_mut(&r.tunnel) {
            Some(t) => {
                t.inbound.remove(&spi);
                t.owner
            }
            None => return Ok(()),
        };
        for w in 0..self.workers.len() as WorkerIndex {
            let cmd = if w == owner {
                Cmd::RemoveInbound { spi }
            } else {
                Cmd::DelSpi { spi }
            };
            self.send(g, w, cmd);
        }
        self.inbound_ids.give(r.index.0);
        self.lock_view().remove_sa(&SaKey::In(spi));
        Ok(())
    }
}

impl ControlState {
    /// The highest sequence number inbound SA `spi` accepted, as its worker last wrote it.
    fn inbound_top(&self, spi: u32) -> u64 {
        self.lock_view()
            .sas
            .get(&SaKey::In(spi))
            .map_or(0, |s| s.counters.seq.get())
    }
}

/// What every SA must be, whichever way.
fn check_sa(what: &str, s: &SaSpec) -> Result<(), ChangeError> {
    if s.spi < MIN_SPI {
        return refuse(what, "SPIs 0-255 are reserved (RFC 4303 section 2.1)");
    }
    for (kind, soft, hard) in [
        ("packet", s.soft.packets, s.hard.packets),
        ("byte", s.soft.bytes, s.hard.bytes),
    ] {
        if soft.zip(hard).is_some_and(|(s, h)| s > h) {
            return refuse(
                what,
                format!("its soft {kind} lifetime is above its hard one"),
            );
        }
    }
    Ok(())
}
