//! The first two exchanges on both sides: IKE_SA_INIT (with the INVALID_KE_PAYLOAD and
//! COOKIE retries) and IKE_AUTH (with the first child).

use super::*;

impl IkeSa {
    /// The selectors an IKE_AUTH request proposes (TSi, TSr).
    fn proposed_selectors(m: &Message) -> (Vec<TrafficSelector>, Vec<TrafficSelector>) {
        let (mut i, mut r) = (Vec::new(), Vec::new());
        for p in &m.payloads {
            match p {
                Payload::TsI(t) => i = t.clone(),
                Payload::TsR(t) => r = t.clone(),
                _ => {}
            }
        }
        (i, r)
    }

    pub(super) fn send_init(&mut self, now: Instant) {
        match init::initiate(&self.settings.ike, self.start.clone(), &self.rng) {
            Ok(i) => {
                self.spi_i = i.spi_i;
                self.start.spi_i = Some(i.spi_i);
                let bytes = i.request.clone();
                self.send_request(now, 0, vec![bytes], Asking::Init(i));
                self.next_id = 1;
            }
            Err(e) => self.close(Close::Failed(e.to_string())),
        }
    }

    /// The answer to our IKE_SA_INIT request: the IKE SA's keys and our IKE_AUTH request, or
    /// the request again (INVALID_KE_PAYLOAD, COOKIE), or the end.
    pub(super) fn init_answered(
        &mut self,
        now: Instant,
        bytes: &[u8],
        m: &Message,
        i: Initiator,
        spis: &mut dyn SpiSource,
    ) {
        self.stats.exchanges += 1;
        if let Some(r) = init::refusal(m) {
            match r {
                Refusal::InvalidKe(g) if self.start.group.map(|x| x.id()) != Some(g) => {
                    match crate::ike::dh::Group::from_id(g) {
                        Ok(group) => {
                            self.start.group = Some(group);
                            self.send_init(now);
                        }
                        Err(_) => self.close(Close::Failed(
                            "INVALID_KE_PAYLOAD for a group we do not have".into(),
                        )),
                    }
                }
                Refusal::Cookie(c) if self.start.cookie.is_none() => {
                    self.start.cookie = Some(c.clone());
                    match i.with_cookie(c) {
                        Ok(i) => {
                            let bytes = i.request.clone();
                            self.send_request(now, 0, vec![bytes], Asking::Init(i));
                        }
                        Err(e) => self.close(Close::Failed(e.to_string())),
                    }
                }
                Refusal::Error(n) => self.close(Close::Failed(notify_name(n))),
                _ => self.close(Close::Failed("IKE_SA_INIT refused twice".into())),
            }
            return;
        }
        let done = match i.complete(&self.settings.ike, bytes) {
            Ok(d) => d,
            Err(e) => return self.close(Close::Failed(e.to_string())),
        };
        self.spi_r = done.spi_r;
        self.nat = done.nat || self.settings.force_encap;
        self.behind_nat = done.behind_nat;
        if self.nat {
            // RFC 7296 section 2.23: IKE floats to UDP 4500.
            self.path.local.set_port(channel::NATT_PORT);
            self.path.remote.set_port(channel::NATT_PORT);
        }
        self.done = Some(done);
        self.state = State::Authenticating;
        let spi = spis.next_spi();
        let settings = self.settings.clone();
        let esp = auth_esp(&settings);
        let cfg = auth_config(&settings, &esp, 0, self.send_initial_contact);
        let Some(d) = &self.done else { return };
        match ike_auth::request(d, &cfg, spi) {
            Ok(req) => {
                self.next_id = 2;
                let req = self.outgoing(req);
                self.send_request(now, 1, req, Asking::Auth);
                self.pending_spi = Some(spi);
            }
            Err(e) => self.close(Close::Failed(e.to_string())),
        }
    }

    /// The answer to our IKE_AUTH request: established with the first child, or failed.
    pub(super) fn auth_answered(
        &mut self,
        now: Instant,
        path: Path,
        body: Incoming<'_>,
        out: Outstanding,
    ) {
        let Some(m) = self.open_incoming(body) else {
            // Not from the peer (or mangled): wait for the real answer.
            self.stats.invalid += 1;
            self.out = Some(Outstanding {
                what: Asking::Auth,
                ..out
            });
            return;
        };
        self.stats.exchanges += 1;
        let spi = self.pending_spi.take().unwrap_or_default();
        let settings = self.settings.clone();
        let esp = auth_esp(&settings);
        let cfg = auth_config(&settings, &esp, 0, self.send_initial_contact);
        let Some(d) = &self.done else { return };
        match ike_auth::complete(d, &cfg, &m, spi) {
            Ok(child) => {
                self.path = path;
                self.established(now);
                match child {
                    Ok(c) => self.add_child(c, now, true),
                    Err(n) => {
                        // An IKE SA without its child serves no VPN: it goes too
                        // (strongSwan does the same).
                        self.actions.push_back(Action::ChildFailed(format!(
                            "child SA: {}",
                            notify_name(n)
                        )));
                        self.delete(now);
                    }
                }
            }
            Err(e) => self.close(Close::Failed(e.to_string())),
        }
    }

    pub(super) fn answer_auth(
        &mut self,
        now: Instant,
        path: Path,
        body: Incoming<'_>,
        spis: &mut dyn SpiSource,
    ) {
        let Some(m) = self.open_incoming(body) else {
            // Not from the peer, or mangled: changes nothing.
            self.stats.invalid += 1;
            return;
        };
        let Some(d) = &self.done else { return };
        let spi = spis.next_spi();
        // The first of the candidate settings (the VPNs with this peer) whose selectors and
        // proposals suit the child; if none does, the first one's answer.
        let (ts_i, ts_r) = Self::proposed_selectors(&m);
        let id = m.payloads.iter().find_map(|p| match p {
            Payload::IdI(id) => Some(id),
            _ => None,
        });
        let tried = match self.candidates.take() {
            Some(c) => c.for_proposal(id, &ts_i, &ts_r),
            None => vec![(self.settings.clone(), 0)],
        };
        let mut first = None;
        let mut chosen = None;
        for (s, slot) in &tried {
            let esp = auth_esp(s);
            let r = ike_auth::respond(d, &auth_config(s, &esp, *slot, false), &m, spi);
            if matches!(&r, Ok(a) if a.child.is_ok()) {
                chosen = Some((s.clone(), *slot, r));
                break;
            }
            if first.is_none() {
                first = Some((s.clone(), *slot, r));
            }
        }
        let Some((settings, slot, r)) = chosen.or(first) else {
            return;
        };
        self.settings = settings;
        self.asked_slots = 1 << slot;
        match r {
            Ok(a) => {
                self.stats.exchanges += 1;
                self.peer_next = 2;
                self.path = path;
                self.initial_contact = a.initial_contact;
                self.established(now);
                match a.child {
                    // The inbound SA is in force before the peer hears of it.
                    Ok(mut c) => {
                        c.slot = slot;
                        self.add_child(c, now, true)
                    }
                    Err(n) => self
                        .actions
                        .push_back(Action::ChildFailed(format!("child SA: {}", notify_name(n)))),
                }
                let response = self.outgoing(a.response);
                self.send_all(path, &response);
                self.cached = Some((1, response));
            }
            Err(AuthError::Sk(_)) => self.stats.invalid += 1,
            Err(e) => {
                // Said to the peer, then forgotten (RFC 7296 section 2.21.2).
                let n = Payload::Notify(Notify {
                    protocol: 0,
                    kind: e.notify(),
                    spi: Vec::new(),
                    data: Vec::new(),
                });
                if let Some(b) = self.seal(Exchange::IkeAuth, 1, true, &[n]) {
                    self.send_all(path, &b);
                }
                self.close(Close::Failed(e.to_string()));
            }
        }
    }
}
