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
    pub local_ts: Vec<TrafficSelector>,
    pub remote_ts: Vec<TrafficSelector>,
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
/// it answers; IKE_AUTH picks one by the initiator's selectors: an exact match at once, else
/// the first whose selectors meet the proposal.
pub struct Candidates {
    list: Vec<Arc<Settings>>,
    exact: HashMap<(Identity, Vec<TrafficSelector>, Vec<TrafficSelector>), usize>,
}

impl Candidates {
    pub fn new(list: Vec<Arc<Settings>>) -> Candidates {
        let mut exact = HashMap::new();
        for (i, s) in list.iter().enumerate() {
            exact
                .entry((s.remote_id.clone(), s.remote_ts.clone(), s.local_ts.clone()))
                .or_insert(i);
        }
        Candidates { list, exact }
    }

    pub(super) fn first(&self) -> Option<&Arc<Settings>> {
        self.list.first()
    }

    /// Those to try for a peer that says it is `id` and proposes `ts_i` and `ts_r`, best
    /// first: its own VPNs (several dial-up peers share one address and may share selectors),
    /// an exact match of selectors at once, else those whose selectors meet the proposal;
    /// then its first VPN, else the first candidate (their answer, should nothing fit).
    pub(super) fn for_proposal(
        &self,
        id: Option<&Id>,
        ts_i: &[TrafficSelector],
        ts_r: &[TrafficSelector],
    ) -> Vec<Arc<Settings>> {
        let mut out = Vec::new();
        let id = id.and_then(Identity::from_wire);
        let theirs = |s: &&Arc<Settings>| id.as_ref().is_none_or(|id| s.remote_id == *id);
        let exact = id
            .as_ref()
            .and_then(|id| self.exact.get(&(id.clone(), ts_i.to_vec(), ts_r.to_vec())));
        if let Some(&i) = exact {
            out.extend(self.list.get(i).cloned());
        } else {
            out.extend(
                self.list
                    .iter()
                    .filter(theirs)
                    .filter(|s| {
                        !narrow(ts_i, &s.remote_ts).is_empty()
                            && !narrow(ts_r, &s.local_ts).is_empty()
                    })
                    .take(8)
                    .cloned(),
            );
        }
        out.extend(self.list.iter().find(theirs).or(self.first()).cloned());
        out
    }
}
