//! When VPNs are negotiated: at start, on traffic, at the operator's word, again after a
//! failure; at most `MAX_CONNECTING` at once, and the first IKE SA with a peer's identities
//! (the one that says INITIAL_CONTACT) before any other to them.

use super::*;

impl IkeManager {
    pub(super) fn start(&mut self, vi: usize, now: Instant) {
        let Some(v) = self.vpns.get_mut(vi) else {
            return;
        };
        // A dial-up peer's address is unknown: it calls in.
        if v.remote.is_unspecified() {
            v.start_at = None;
            return;
        }
        v.start_at = None;
        let path = Path {
            local: SocketAddr::new(v.local, 500),
            remote: SocketAddr::new(v.remote, v.port),
        };
        let settings = v.settings.clone();
        let vpn = v.name;
        let mut sa = IkeSa::initiate(settings.clone(), path, now);
        sa.send_initial_contact = !self.has_contact(&settings);
        if let Some(s) = self.stats_of(&vpn) {
            s.initiated += 1;
        }
        let index = self.insert(vpn, sa);
        self.pump(now, Some(index));
    }

    /// Starts `vpn` now (`espgw request security ike initiate`), unless it has an IKE SA up
    /// or under way (a second one would replace it for nothing).
    pub fn initiate(&mut self, vpn: &str, now: Instant) -> Initiate {
        let Some(vi) = self.vpns.iter().position(|v| v.name.as_str() == vpn) else {
            return Initiate::NoSuchVpn;
        };
        if self.vpns[vi].remote.is_unspecified() {
            return Initiate::DialUp;
        }
        if self.busy(&self.vpns[vi].name) {
            return Initiate::Busy;
        }
        self.start_or_defer(vi, now);
        self.pump(now, None);
        Initiate::Started
    }

    /// Whether `vpn` has an IKE SA up or being negotiated (one we are deleting does not count:
    /// the peer may have forgotten it already, and it must not hold the VPN down meanwhile).
    pub(super) fn busy(&self, vpn: &Name) -> bool {
        self.sas
            .values()
            .any(|e| e.vpn == *vpn && !matches!(e.sa.state, State::Closed | State::Deleting))
    }

    /// Whether an IKE SA with `s`'s identities exists (RFC 7296 section 2.4: INITIAL_CONTACT
    /// only in the first).
    pub(super) fn has_contact(&self, s: &Settings) -> bool {
        // A half-open responder SA is no contact: anyone can make one from the peer's address.
        self.sas.values().any(|e| {
            e.sa.state != State::Closed
                && !(e.sa.role == Role::Responder && e.sa.state == State::Authenticating)
                && same_identities(e.sa.settings(), s)
        })
    }

    /// Starts VPN `vi` now, or at the next tick if another VPN's first IKE SA with the same
    /// identities (the one saying INITIAL_CONTACT) is still being negotiated: were ours to
    /// be established first, the peer would take that INITIAL_CONTACT to mean ours is stale.
    pub(super) fn start_or_defer(&mut self, vi: usize, now: Instant) {
        let Some(v) = self.vpns.get(vi) else { return };
        let contact_pending = self.sas.values().any(|e| {
            e.sa.send_initial_contact
                && e.sa.role == Role::Initiator
                && matches!(e.sa.state, State::Connecting | State::Authenticating)
                && same_identities(e.sa.settings(), &v.settings)
        });
        if contact_pending {
            self.vpns[vi].start_at = Some(now);
        } else {
            self.start(vi, now);
        }
    }

    /// Starts the VPNs `due`, but of several with the same identities and none up yet only
    /// the first (it says INITIAL_CONTACT): the others follow once it is established.
    pub(super) fn start_due(&mut self, due: Vec<usize>, now: Instant) {
        let mut contact: HashSet<(Id, Identity)> = HashSet::new();
        let mut pending: HashSet<(Id, Identity)> = HashSet::new();
        for e in self.sas.values() {
            if e.sa.state == State::Closed
                || (e.sa.role == Role::Responder && e.sa.state == State::Authenticating)
            {
                continue;
            }
            let s = e.sa.settings();
            let ids = (s.local_id.clone(), s.remote_id.clone());
            if e.sa.send_initial_contact
                && e.sa.role == Role::Initiator
                && matches!(e.sa.state, State::Connecting | State::Authenticating)
            {
                pending.insert(ids.clone());
            }
            contact.insert(ids);
        }
        for vi in due {
            let s = &self.vpns[vi].settings;
            let ids = (s.local_id.clone(), s.remote_id.clone());
            if pending.contains(&ids) {
                continue;
            }
            if !contact.contains(&ids) {
                pending.insert(ids.clone());
                contact.insert(ids);
            }
            self.start(vi, now);
        }
    }

    /// Traffic for a tunnel with no outbound SA (the dataplane's ACQUIRE).
    pub fn acquire(&mut self, tunnel: &Name, now: Instant) {
        let Some(vi) = self
            .vpns
            .iter()
            .position(|v| v.tunnels.contains(tunnel) && v.establish == Establish::OnTraffic)
        else {
            return;
        };
        if !self.busy(&self.vpns[vi].name) && self.vpns[vi].start_at.is_none() {
            self.start_or_defer(vi, now);
            self.pump(now, None);
        }
    }
}
