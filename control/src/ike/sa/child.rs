//! CREATE_CHILD_SA for children (RFC 7296 sections 1.3.1, 1.3.3): a child rekey is
//! make-before-break on both sides (the responder's new inbound SA is in force before it
//! answers; the initiator sends on the new SA at once, then deletes the old one, whose
//! inbound SA stays for the grace period).

use super::*;

impl IkeSa {
    /// What child `slot` of `s` is negotiated with.
    pub(super) fn child_config(s: &Settings, slot: usize) -> ChildConfig<'_> {
        let (local_ts, remote_ts) = s
            .selectors(slot)
            .map_or((&[][..], &[][..]), |c| (&c.local[..], &c.remote[..]));
        ChildConfig {
            esp: &s.esp,
            local_ts,
            remote_ts,
        }
    }

    /// The slot of the child whose inbound SPI is `inbound`.
    pub(super) fn slot_of(&self, inbound: u32) -> Option<usize> {
        self.children
            .iter()
            .find(|c| c.sa.inbound_spi == inbound)
            .map(|c| c.sa.slot)
    }

    /// The next of the VPN's children to ask for under this IKE SA (its initiator asks for
    /// each once, after IKE_AUTH made the first).
    pub(super) fn missing_slot(&self) -> Option<usize> {
        if self.role != Role::Initiator || self.state != State::Established || self.succeeded {
            return None;
        }
        (1..self.settings.children.len()).find(|k| self.asked_slots & (1 << k) == 0)
    }

    /// A CREATE_CHILD_SA request: a new child or a rekey (the new inbound SA in force before
    /// the answer leaves); an IKE SA rekey is refused for now (NO_ADDITIONAL_SAS).
    pub(super) fn create_child(
        &mut self,
        now: Instant,
        payloads: &[Payload],
        spis: &mut dyn SpiSource,
    ) -> Vec<Payload> {
        let refuse = |kind: u16, data: Vec<u8>| {
            vec![Payload::Notify(Notify {
                protocol: 0,
                kind,
                spi: Vec::new(),
                data,
            })]
        };
        if super::ike_rekey::is_ike_rekey(payloads) {
            return self.answer_ike_rekey(now, payloads);
        }
        let Some(asked) = create_child::asked(payloads) else {
            return refuse(35, Vec::new());
        };
        // Our own rekey of the same child is out: both go on, and once both are done the
        // redundant child goes (RFC 7296 sections 2.8.1 and 2.25).
        let mut collides = None;
        let slot = if let Some(old) = asked.rekeys {
            match self.children.iter().find(|c| c.sa.outbound_spi == old) {
                None => return refuse(44, Vec::new()),
                Some(c) if self.rekeying(c.sa.inbound_spi) => {
                    collides = Some(c.sa.inbound_spi);
                    c.sa.slot
                }
                // We are closing it (our rekey of it is done, its delete is out): the peer
                // hears of that next.
                Some(c) if c.rekeyed && self.busy() => return refuse(43, Vec::new()),
                Some(c) => c.sa.slot,
            }
        } else {
            // A new child: the VPN's child its selectors fit, one without a child first.
            let live = |k: usize| !self.children.iter().any(|c| c.sa.slot == k);
            self.settings
                .slot_for(asked.ts_i, asked.ts_r, live)
                .unwrap_or(0)
        };
        let settings = self.settings.clone();
        let Some(d) = &self.done else {
            return refuse(43, Vec::new());
        };
        let derive = Derive {
            prf: d.keys.prf,
            sk_d: &d.keys.sk_d,
        };
        let spi = spis.next_spi();
        match create_child::respond(
            &derive,
            &Self::child_config(&settings, slot),
            &asked,
            spi,
            &self.rng,
        ) {
            Ok((answer, mut child)) => {
                child.slot = slot;
                // A rekey: the old child's traffic moves when the peer deletes it; a new
                // child carries ours at once.
                let rekey = asked.rekeys;
                if let Some(old) = rekey {
                    if let Some(c) = self.children.iter_mut().find(|c| c.sa.outbound_spi == old) {
                        c.rekeyed = true;
                    }
                    self.stats.child_rekeys += 1;
                }
                if let (Some(old), Some(nr)) = (collides, create_child::nonce_of(&answer)) {
                    self.collision = Some(Collision {
                        old,
                        theirs: child.inbound_spi,
                        nonce: asked.nonce().min(nr).to_vec(),
                    });
                }
                self.add_child(child, now, rekey.is_none());
                answer
            }
            Err((kind, data)) => refuse(kind, data),
        }
    }

    /// The answer to our CREATE_CHILD_SA request: the new child, or why not.
    pub(super) fn child_answered(
        &mut self,
        now: Instant,
        pending: ChildPending,
        payloads: &[Payload],
        spis: &mut dyn SpiSource,
    ) {
        let rekeys = pending.rekeys;
        // The lower of this exchange's nonces, should it have collided with the peer's rekey.
        let nonce = create_child::nonce_of(payloads).map(|nr| pending.nonce().min(nr).to_vec());
        let collision = self
            .collision
            .take()
            .filter(|c| rekeys == Some(c.old) && nonce.is_some());
        let settings = self.settings.clone();
        let Some(d) = &self.done else { return };
        let derive = Derive {
            prf: d.keys.prf,
            sk_d: &d.keys.sk_d,
        };
        let slot = pending.slot;
        match create_child::complete(
            &derive,
            &Self::child_config(&settings, slot),
            pending,
            payloads,
        ) {
            Ok(mut child) => {
                child.slot = slot;
                if let Some(col) = collision {
                    return self.resolve_collision(now, child, col, nonce.unwrap_or_default());
                }
                // Both sides have the new SAs: ours switches now, the old is deleted.
                for c in &mut self.children {
                    if Some(c.sa.inbound_spi) == rekeys {
                        c.outbound = false;
                    }
                }
                self.add_child(child, now, true);
                if let Some(old) = rekeys {
                    self.stats.child_rekeys += 1;
                    self.delete_child(now, old);
                }
            }
            Err(Refused::InvalidKe(g)) => self.rekey_child_in(now, rekeys, slot, Some(g), spis),
            Err(Refused::Error(n)) => {
                // The old child stays; it is tried again at its next timer.
                for c in &mut self.children {
                    if Some(c.sa.inbound_spi) == rekeys {
                        c.rekeyed = false;
                        c.made = now;
                    }
                }
                let what = if rekeys.is_some() {
                    "child rekey"
                } else {
                    "child SA"
                };
                self.actions
                    .push_back(Action::ChildFailed(format!("{what}: {}", notify_name(n))));
            }
        }
    }

    /// Both sides rekeyed the same child at once and both exchanges are done (RFC 7296
    /// section 2.8.1): the exchange with the lowest of the four nonces made the redundant
    /// child, which its initiator deletes; the other exchange's initiator deletes the old
    /// child. `mine`: the lower nonce of our exchange, which made `child`.
    fn resolve_collision(&mut self, now: Instant, child: Child, col: Collision, mine: Vec<u8>) {
        let ours = child.inbound_spi;
        // Counted once, when we answered the peer's.
        self.add_child(child, now, false);
        if mine < col.nonce {
            // Ours is redundant: we delete it. The peer deletes the old child once its own
            // exchange is done (its inbound SA of the survivor in force), and our traffic
            // moves to the survivor then, as after any rekey the peer made.
            if let Some(c) = self.children.iter_mut().find(|c| c.sa.inbound_spi == ours) {
                c.rekeyed = true;
            }
            self.delete_child(now, ours);
        } else {
            // The peer's is redundant (it deletes it); ours replaces the old child, in force
            // on both sides already (the peer answered it): our traffic moves now.
            if let Some(c) = self
                .children
                .iter_mut()
                .find(|c| c.sa.inbound_spi == col.theirs)
            {
                c.rekeyed = true;
            }
            let slot = self.slot_of(ours);
            for c in self.children.iter_mut().filter(|c| Some(c.sa.slot) == slot) {
                c.outbound = c.sa.inbound_spi == ours;
            }
            self.delete_child(now, col.old);
        }
    }

    /// Whether our rekey of the child whose inbound SPI is `inbound` is out.
    fn rekeying(&self, inbound: u32) -> bool {
        matches!(
            &self.out,
            Some(Outstanding { what: Asking::CreateChild(p), .. }) if p.rekeys == Some(inbound)
        )
    }

    /// Rekeys the child whose inbound SPI is `inbound` (its lifetime ran out, by time here or
    /// by traffic in the dataplane).
    pub fn rekey_child(&mut self, now: Instant, inbound: u32, spis: &mut dyn SpiSource) -> bool {
        if self.state != State::Established || self.out.is_some() {
            // Not now: as soon as the IKE SA is free (its timers say when).
            if let Some(c) = self
                .children
                .iter_mut()
                .find(|c| c.sa.inbound_spi == inbound)
            {
                c.rekey_due = !c.rekeyed;
            }
            return false;
        }
        match self
            .children
            .iter_mut()
            .find(|c| c.sa.inbound_spi == inbound && !c.rekeyed)
        {
            Some(c) => {
                c.rekeyed = true;
                c.rekey_due = false;
            }
            None => return false,
        }
        let slot = self.slot_of(inbound).unwrap_or(0);
        self.rekey_child_in(now, Some(inbound), slot, None, spis);
        true
    }

    /// Asks for child `slot`: a rekey of `rekeys` (an inbound SPI), or a new child.
    pub(super) fn rekey_child_in(
        &mut self,
        now: Instant,
        rekeys: Option<u32>,
        slot: usize,
        group: Option<u16>,
        spis: &mut dyn SpiSource,
    ) {
        let spi = spis.next_spi();
        let settings = self.settings.clone();
        let Some((inner, mut pending)) = create_child::request(
            &Self::child_config(&settings, slot),
            rekeys,
            spi,
            group,
            &self.rng,
        ) else {
            return;
        };
        pending.slot = slot;
        self.asked_slots |= 1 << slot;
        let id = self.next_id;
        if let Some(b) = self.seal(Exchange::CreateChildSa, id, false, &inner) {
            self.next_id = id.wrapping_add(1);
            self.send_request(now, id, b, Asking::CreateChild(pending));
        }
    }

    /// When a child (or the IKE SA) is rekeyed: the IKE SA's initiator first, the responder
    /// a tenth of the time later, so that both do not rekey the same SA at once (a collision
    /// costs a TEMPORARY_FAILURE and a retry); `jitter` (up to 5 %) earlier.
    pub(super) fn rekey_after(&self, k: Duration, jitter: f64) -> Duration {
        let base = match self.role {
            Role::Initiator => k,
            Role::Responder => k + k / 10,
        };
        base.saturating_sub(k.mul_f64(jitter.clamp(0.0, 0.05)))
    }
}
