//! What an IKE SA is negotiated with: a VPN's settings, the retransmission schedule, and a
//! responder's candidate settings until IKE_AUTH says which VPN applies.

use super::*;

/// What an IKE SA is configured with (one gateway and one VPN of the configuration).
pub struct Settings {
    pub ike: Vec<ProposalSpec>,
    pub esp: Vec<ProposalSpec>,
    pub auth: Auth,
    pub local_id: Id,
    /// Who the peer must be.
    pub remote_id: Identity,
    /// The children it negotiates, by slot: the first in IKE_AUTH, the others by
    /// CREATE_CHILD_SA (never empty).
    pub children: Vec<ChildSelectors>,
    pub force_encap: bool,
    /// IKE fragmentation (RFC 7383) offered and accepted, our fragments at most this big as
    /// IP datagrams; `None`: not offered.
    pub fragment_size: Option<u16>,
    pub retransmit: Retransmit,
    /// Check liveness after this long without a message from the peer; `None`: never.
    pub dpd: Option<Duration>,
    /// Liveness checks unanswered before the peer is dead.
    pub dpd_threshold: u32,
    /// Rekey a child this long after it was made.
    pub child_rekey: Option<Duration>,
    /// Rekey the IKE SA this long after it was made.
    pub ike_rekey: Option<Duration>,
    /// The IKE SA's hard lifetime: not rekeyed by then, it is deleted with its children (a
    /// VPN that establishes immediately negotiates again).
    pub ike_lifetime: Option<Duration>,
    /// A child's hard lifetime by time: it goes then, rekeyed or not.
    pub child_lifetime: Option<Duration>,
    /// Keep a replaced inbound SA this long (packets the peer sent before it switched).
    pub grace: Duration,
}

/// One child's traffic selectors: ours, the peer's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChildSelectors {
    pub local: Vec<TrafficSelector>,
    pub remote: Vec<TrafficSelector>,
}

impl Settings {
    /// The selectors of child `slot` (the first's if there is no such slot).
    pub fn selectors(&self, slot: usize) -> Option<&ChildSelectors> {
        self.children.get(slot).or(self.children.first())
    }

    /// The first slot whose selectors meet the peer's proposal (`ts_i` the initiator's,
    /// `ts_r` the responder's; `theirs`: which of them is the peer's), among `free` ones
    /// first, then any.
    pub fn slot_for(
        &self,
        theirs: &[TrafficSelector],
        ours: &[TrafficSelector],
        free: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        let meets = |c: &ChildSelectors| {
            !narrow(theirs, &c.remote).is_empty() && !narrow(ours, &c.local).is_empty()
        };
        let fits = |k: &usize| self.children.get(*k).is_some_and(meets);
        (0..self.children.len())
            .filter(|k| free(*k))
            .find(fits)
            .or_else(|| (0..self.children.len()).find(fits))
    }
}

/// Retransmission (RFC 7296 section 2.1): `timeout * base^n` after the n-th send, `tries`
/// sends in all (strongSwan's defaults: 4 s, 1.8, 5 + 1).
#[derive(Debug, Clone, Copy)]
pub struct Retransmit {
    pub timeout: Duration,
    pub base: f64,
    pub tries: u32,
}

impl Default for Retransmit {
    fn default() -> Self {
        Retransmit {
            timeout: Duration::from_secs(4),
            base: 1.8,
            tries: 6,
        }
    }
}

/// The settings a responder may take with one peer (the VPNs with it), shared by every SA
/// it answers; IKE_AUTH picks one, and the slot of its first child, by the initiator's
/// selectors: an exact match at once, else the first whose selectors meet the proposal.
pub struct Candidates {
    list: Vec<Arc<Settings>>,
    /// (peer, the child's selectors) -> (candidate, slot).
    exact: HashMap<(Identity, ChildSelectors), (usize, usize)>,
}

impl Candidates {
    pub fn new(list: Vec<Arc<Settings>>) -> Candidates {
        let mut exact = HashMap::new();
        for (i, s) in list.iter().enumerate() {
            for (k, c) in s.children.iter().enumerate() {
                exact
                    .entry((s.remote_id.clone(), c.clone()))
                    .or_insert((i, k));
            }
        }
        Candidates { list, exact }
    }

    pub(super) fn first(&self) -> Option<&Arc<Settings>> {
        self.list.first()
    }

    /// Those to try, with the slot of the child, for a peer that says it is `id` and
    /// proposes `ts_i` and `ts_r`, best first: its own VPNs (several dial-up peers share one
    /// address and may share selectors), an exact match of selectors at once, else those
    /// whose selectors meet the proposal; then its first VPN, else the first candidate
    /// (their answer, should nothing fit).
    pub(super) fn for_proposal(
        &self,
        id: Option<&Id>,
        ts_i: &[TrafficSelector],
        ts_r: &[TrafficSelector],
    ) -> Vec<(Arc<Settings>, usize)> {
        let mut out = Vec::new();
        let id = id.and_then(Identity::from_wire);
        let theirs = |s: &&Arc<Settings>| id.as_ref().is_none_or(|id| s.remote_id == *id);
        let exact = id.as_ref().and_then(|id| {
            let c = ChildSelectors {
                local: ts_r.to_vec(),
                remote: ts_i.to_vec(),
            };
            self.exact.get(&(id.clone(), c))
        });
        if let Some(&(i, k)) = exact {
            out.extend(self.list.get(i).map(|s| (s.clone(), k)));
        } else {
            out.extend(
                self.list
                    .iter()
                    .filter(theirs)
                    .filter_map(|s| Some((s.clone(), s.slot_for(ts_i, ts_r, |_| true)?)))
                    .take(8),
            );
        }
        out.extend(
            self.list
                .iter()
                .find(theirs)
                .or(self.first())
                .map(|s| (s.clone(), 0)),
        );
        out
    }
}

/// The ESP proposals IKE_AUTH offers or accepts: without DH groups (its child has no DH of
/// its own, RFC 7296 section 1.2; PFS applies from the first rekey).
pub(super) fn auth_esp(s: &Settings) -> Vec<ProposalSpec> {
    s.esp.iter().map(ProposalSpec::without_dh).collect()
}

/// The IKE_AUTH settings of an SA (`esp` from `auth_esp`) for its child `slot`.
pub(super) fn auth_config<'a>(
    s: &'a Settings,
    esp: &'a [ProposalSpec],
    slot: usize,
    initial_contact: bool,
) -> AuthConfig<'a> {
    let (local_ts, remote_ts) = s.selectors(slot).map_or((Vec::new(), Vec::new()), |c| {
        (c.local.clone(), c.remote.clone())
    });
    AuthConfig {
        auth: &s.auth,
        local_id: s.local_id.clone(),
        remote_id: s.remote_id.clone(),
        esp,
        local_ts,
        remote_ts,
        initial_contact,
    }
}
