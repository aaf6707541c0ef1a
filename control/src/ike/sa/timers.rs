//! An IKE SA's clock: retransmission, liveness (DPD), NAT keepalives, the rekeys and hard
//! lifetimes of the IKE SA and its children. The caller asks `next_timer` and calls `tick`.

use super::*;

impl IkeSa {
    /// When `tick` next has something to do.
    pub fn next_timer(&self) -> Option<Instant> {
        let mut t = self.out.as_ref().map(|o| o.next);
        let mut at = |x: Instant| t = Some(t.map_or(x, |t: Instant| t.min(x)));
        if self.state == State::Established {
            if let Some(d) = self.settings.dpd {
                at(self.last_heard + d);
                if let Some(o) = &self.out {
                    at(o.first_sent + d * self.settings.dpd_threshold);
                }
            }
            if let Some(t) = self.ike_rekey_due() {
                at(t);
            }
            if let Some(t) = self.ike_expires() {
                at(t);
            }
            if self.behind_nat {
                at(self.last_sent + NATT_KEEPALIVE);
            }
            if self.missing_slot().is_some() {
                at(self.last_heard);
            }
            for c in &self.children {
                if let Some(r) = c.retire_at {
                    at(r);
                }
                if let (Some(k), false) = (self.settings.child_rekey, c.rekeyed) {
                    at(c.made + self.rekey_after(k, c.jitter));
                }
                if c.rekey_due && !c.rekeyed {
                    at(c.made);
                }
                if let (Some(l), None) = (self.settings.child_lifetime, c.retire_at) {
                    at(c.made + l);
                }
            }
        }
        t
    }

    /// When this IKE SA reaches its hard lifetime (none once a successor took over).
    pub(super) fn ike_expires(&self) -> Option<Instant> {
        if self.succeeded {
            return None;
        }
        Some(self.established_at? + self.settings.ike_lifetime?)
    }

    /// When this IKE SA is to be rekeyed (its initiator first, as for children).
    pub(super) fn ike_rekey_due(&self) -> Option<Instant> {
        if self.succeeded {
            return None;
        }
        if let Some(t) = self.rekey_ike_at {
            return Some(t);
        }
        let k = self.settings.ike_rekey?;
        Some(self.established_at? + self.rekey_after(k, 0.0))
    }

    /// Timers: retransmission, liveness, child rekeys and the end of replaced inbound SAs.
    pub fn tick(&mut self, now: Instant, spis: &mut dyn SpiSource) {
        // With DPD, any request unanswered (and nothing else heard) for interval x threshold
        // means a dead peer, whatever the request's own schedule (a rekey backs off longer).
        if let (Some(o), Some(d), State::Established) = (&self.out, self.settings.dpd, self.state) {
            let limit = d * self.settings.dpd_threshold;
            if now >= o.first_sent + limit && now >= self.last_heard + limit {
                return self.close(Close::Timeout);
            }
        }
        if let Some(o) = &mut self.out {
            if now >= o.next {
                let r = o.schedule;
                if o.sends >= r.tries {
                    let deleting = self.state == State::Deleting;
                    return self.close(if deleting {
                        Close::Deleted
                    } else {
                        Close::Timeout
                    });
                }
                o.sends += 1;
                o.next = now + r.timeout.mul_f64(r.base.powi(o.sends as i32 - 1));
                self.stats.retransmits += 1;
                let bytes = o.bytes.clone();
                self.send_all(self.path, &bytes);
            }
        }
        if self.state != State::Established {
            return;
        }
        // RFC 3948 section 2.3: one 0xff byte on the NAT-T port every 20 s of silence keeps
        // the NAT's mapping (and so the peer's way to us) open.
        if self.behind_nat && now >= self.last_sent + NATT_KEEPALIVE {
            self.last_sent = now;
            self.stats.keepalives += 1;
            self.actions.push_back(Action::Send {
                path: self.path,
                bytes: vec![0xff],
            });
        }
        if self.ike_expires().is_some_and(|t| now >= t) {
            self.stats.expired = true;
            return self.delete(now);
        }
        let before = self.children.len();
        self.children
            .retain(|c| c.retire_at.is_none_or(|t| now < t));
        // A child at the end of its hard lifetime (its rekey never came through) goes; the
        // peer is told when nothing else is out.
        let expired: Vec<u32> = match self.settings.child_lifetime {
            Some(l) => self
                .children
                .iter()
                .filter(|c| c.retire_at.is_none() && now >= c.made + l)
                .map(|c| c.sa.inbound_spi)
                .collect(),
            None => Vec::new(),
        };
        self.children
            .retain(|c| !expired.contains(&c.sa.inbound_spi));
        if self.children.len() != before {
            self.actions.push_back(Action::Children);
        }
        if let (Some(&spi), None) = (expired.first(), &self.out) {
            self.delete_child(now, spi);
        }
        if self.out.is_some() {
            return;
        }
        if self.ike_rekey_due().is_some_and(|t| now >= t) {
            self.rekey_ike_at = None;
            if self.rekey_ike(now) {
                return;
            }
        }
        if let Some(slot) = self.missing_slot() {
            return self.rekey_child_in(now, None, slot, None, spis);
        }
        let due = |c: &ChildSa| {
            c.rekey_due
                || self
                    .settings
                    .child_rekey
                    .is_some_and(|k| now >= c.made + self.rekey_after(k, c.jitter))
        };
        if let Some(c) = self
            .children
            .iter()
            .find(|c| !c.rekeyed && c.retire_at.is_none() && due(c))
        {
            let spi = c.sa.inbound_spi;
            self.rekey_child(now, spi, spis);
            return;
        }
        if let Some(d) = self.settings.dpd {
            if now >= self.last_heard + d {
                self.stats.dpd_sent += 1;
                self.informational_request(now, &[], Asking::Liveness);
            }
        }
    }
}
