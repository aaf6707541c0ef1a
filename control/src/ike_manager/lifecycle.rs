//! An IKE SA established (its VPN found, the SAs it replaces ended) or closed (counted, the
//! VPN negotiated again as configured).

use super::*;

impl IkeManager {
    pub(super) fn on_established(&mut self, index: u64, now: Instant) {
        let Some(e) = self.sas.get_mut(&index) else {
            return;
        };
        // A responder knows its VPN only now: the one whose settings IKE_AUTH took.
        if e.sa.role == Role::Responder {
            let chosen = self
                .by_settings
                .get(&(Arc::as_ptr(e.sa.settings()) as usize))
                .and_then(|&i| self.vpns.get(i));
            if let Some(v) = chosen {
                e.vpn = v.name;
            }
        }
        let (vpn, initial_contact) = (e.vpn, e.sa.initial_contact);
        self.by_vpn.entry(vpn).or_default().insert(index);
        eprintln!(
            "espgw-control: IKE: {vpn}: IKE SA {:016x}_i {:016x}_r established with {} as {:?}{}; child SAs {}",
            e.sa.spi_i,
            e.sa.spi_r,
            e.sa.path.remote,
            e.sa.role,
            if e.sa.nat { ", NAT-T" } else { "" },
            e.sa
                .children()
                .iter()
                .map(|c| format!("{:08x}_i {:08x}_o", c.sa.inbound_spi, c.sa.outbound_spi))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let Some(s) = self.stats_of(&vpn) {
            s.established += 1;
        }
        // One IKE SA per VPN: the newest replaces the others (the peer restarted, or both
        // sides initiated at once). With INITIAL_CONTACT the peer has forgotten every IKE SA
        // between the two identities, of this VPN and of any other: they go without a delete.
        let mut sync = false;
        let mut others: Vec<u64> = self
            .by_vpn
            .get(&vpn)
            .map(|s| s.iter().copied().filter(|&i| i != index).collect())
            .unwrap_or_default();
        // Other VPNs' SAs only once established: one still being negotiated may be the peer's
        // next, which its INITIAL_CONTACT does not mean.
        if initial_contact {
            let mine = self.sas.get(&index).map(|e| e.sa.settings().clone());
            if let Some(mine) = mine {
                others.extend(self.sas.values().filter_map(|o| {
                    (o.index != index
                        && o.vpn != vpn
                        && o.sa.state == State::Established
                        && same_identities(o.sa.settings(), &mine))
                    .then_some(o.index)
                }));
            }
        }
        for i in others {
            let Some(o) = self.sas.get_mut(&i) else {
                continue;
            };
            // A responder not yet authenticated has no VPN yet (IKE_AUTH picks it).
            let unknown = o.sa.role == Role::Responder && o.sa.state == State::Authenticating;
            if o.sa.state != State::Closed && !unknown {
                if initial_contact || o.sa.state != State::Established {
                    sync |= !o.sa.children().is_empty();
                    o.sa.abandon();
                } else {
                    o.sa.delete(now);
                }
            }
        }
        if sync {
            self.out.push(Out::Sync);
        }
    }

    pub(super) fn on_closed(&mut self, index: u64, vpn: &Name, why: Close, now: Instant) {
        eprintln!("espgw-control: IKE: {vpn}: IKE SA #{index}: {why:?}");
        if why == Close::Rekeyed {
            return;
        }
        let reason = match &why {
            Close::Timeout => Some("timeout".to_string()),
            Close::Failed(s) => Some(failure_kind(s)),
            Close::DeletedByPeer | Close::Deleted | Close::Rekeyed => None,
        };
        if let Some(s) = self.stats_of(vpn) {
            match &why {
                Close::Timeout => s.dpd_timeouts += 1,
                Close::DeletedByPeer => s.deleted_by_peer += 1,
                _ => {}
            }
            if let Some(r) = &reason {
                *s.failures.entry(r.clone()).or_default() += 1;
            }
        }
        let vi = self.vpn_index.get(vpn).copied();
        if let Some(v) = vi.and_then(|i| self.vpns.get_mut(i)) {
            let again = match (v.establish, &why) {
                (Establish::ResponderOnly, _) => false,
                (_, Close::Timeout) => {
                    v.dpd_action == DpdAction::Restart || v.establish == Establish::Immediately
                }
                (Establish::Immediately, _) => true,
                _ => false,
            };
            if again && v.start_at.is_none() {
                v.start_at = Some(now + RETRY);
            }
        }
    }
}

/// A failure counted by its kind: an authentication failure's detail (which may quote what
/// the peer said it is) goes to the log, not into a counter's name.
fn failure_kind(s: &str) -> String {
    match s.split_once(": ") {
        Some((kind @ ("AUTHENTICATION_FAILED" | "cannot authenticate"), _)) => kind.to_string(),
        _ => s.to_string(),
    }
}
