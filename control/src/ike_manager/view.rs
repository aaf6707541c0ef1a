//! What an operator sees of IKE (REST, the CLI, `/metrics`): every IKE SA and its children,
//! never a key, and the counters per gateway.

use super::*;

/// Per-gateway counters (exchanges and failures by reason).
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct GatewayStats {
    pub gateway: String,
    pub established: u64,
    pub initiated: u64,
    pub responded: u64,
    pub rekeys: u64,
    pub dpd_timeouts: u64,
    pub deleted_by_peer: u64,
    /// Failures by reason (`AUTHENTICATION_FAILED`, `NO_PROPOSAL_CHOSEN`, `timeout`...).
    pub failures: BTreeMap<String, u64>,
}

/// An IKE SA as the operator sees it (Junos `show security ike security-associations`).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct IkeSaView {
    pub index: u64,
    pub vpn: String,
    pub gateway: String,
    pub state: String,
    pub role: String,
    pub initiator_spi: String,
    pub responder_spi: String,
    pub remote: String,
    pub local: String,
    pub nat_t: bool,
    pub established_s: Option<u64>,
    pub children: Vec<ChildView>,
    pub exchanges: u64,
    pub retransmits: u64,
    pub child_rekeys: u64,
    /// Its IKE_AUTH said INITIAL_CONTACT: the first IKE SA between the two identities.
    pub initial_contact: bool,
    /// IKE fragmentation (RFC 7383) agreed with the peer; our messages sent in fragments,
    /// and the peer's put back together.
    pub fragmentation: bool,
    pub fragmented: u64,
    pub reassembled: u64,
    /// The identity we send, and the one the peer must prove (Junos "Local identity",
    /// "Remote identity").
    pub local_identity: String,
    pub remote_identity: String,
    /// "pre-shared-keys" or "certificates" (both ways).
    pub authentication: String,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ChildView {
    /// The tunnel it keys (its VPN's child of that slot).
    pub tunnel: String,
    pub inbound_spi: String,
    pub outbound_spi: String,
    pub outbound: bool,
    pub esn: bool,
    pub local_ts: Vec<String>,
    pub remote_ts: Vec<String>,
    pub age_s: u64,
    /// Seconds until it is rekeyed (none: a rekey is under way or it was replaced).
    pub rekey_in_s: Option<u64>,
    /// Seconds until it goes (its hard lifetime, or the end of a replaced SA's grace).
    pub expires_in_s: Option<u64>,
}

/// IKE as a whole, for REST, the CLI and `/metrics`.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct IkeState {
    pub security_associations: Vec<IkeSaView>,
    pub gateways: Vec<GatewayStats>,
    /// IKE datagrams dropped: unparsable, no VPN for the peer, half-open table full.
    pub dropped: u64,
    /// IKE_SA_INIT requests answered with a COOKIE (more than 1000 half-open SAs).
    pub cookies_sent: u64,
}

impl IkeManager {
    pub fn state(&self, now: Instant) -> IkeState {
        IkeState {
            security_associations: self.view(now),
            gateways: self.stats.values().cloned().collect(),
            dropped: self.dropped,
            cookies_sent: self.cookies_sent,
        }
    }

    /// Every IKE SA, for REST and the CLI.
    pub fn view(&self, now: Instant) -> Vec<IkeSaView> {
        self.sas
            .values()
            .map(|e| {
                let v = self.vpn(&e.vpn);
                IkeSaView {
                    index: e.index,
                    vpn: e.vpn.to_string(),
                    gateway: v.map(|v| v.gateway.to_string()).unwrap_or_default(),
                    state: format!("{:?}", e.sa.state).to_lowercase(),
                    role: format!("{:?}", e.sa.role).to_lowercase(),
                    initiator_spi: format!("{:016x}", e.sa.spi_i),
                    responder_spi: format!("{:016x}", e.sa.spi_r),
                    remote: e.sa.path.remote.to_string(),
                    local: e.sa.path.local.to_string(),
                    nat_t: e.sa.nat,
                    established_s: e
                        .sa
                        .established_at
                        .map(|t| now.saturating_duration_since(t).as_secs()),
                    children: e
                        .sa
                        .children()
                        .iter()
                        .map(|c| {
                            let (rekey, expires) = e.sa.child_times(c);
                            let left = |t: Option<Instant>| {
                                t.map(|t| t.saturating_duration_since(now).as_secs())
                            };
                            ChildView {
                                tunnel: v
                                    .and_then(|v| v.tunnels.get(c.sa.slot))
                                    .map(|t| t.to_string())
                                    .unwrap_or_default(),
                                rekey_in_s: left(rekey),
                                expires_in_s: left(expires),
                                inbound_spi: format!("{:08x}", c.sa.inbound_spi),
                                outbound_spi: format!("{:08x}", c.sa.outbound_spi),
                                outbound: c.outbound,
                                esn: c.sa.esn,
                                local_ts: texts(&c.sa.local_ts),
                                remote_ts: texts(&c.sa.remote_ts),
                                age_s: now.saturating_duration_since(c.made).as_secs(),
                            }
                        })
                        .collect(),
                    exchanges: e.sa.stats.exchanges,
                    retransmits: e.sa.stats.retransmits,
                    child_rekeys: e.sa.stats.child_rekeys,
                    fragmentation: e.sa.fragmentation(),
                    local_identity: identity_text(&e.sa.settings().local_id),
                    remote_identity: e.sa.settings().remote_id.to_string(),
                    authentication: match e.sa.settings().auth {
                        Auth::Psk(_) => "pre-shared-keys",
                        Auth::Certificate { .. } => "certificates",
                    }
                    .to_string(),
                    fragmented: e.sa.stats.fragmented,
                    reassembled: e.sa.stats.reassembled,
                    initial_contact: match e.sa.role {
                        Role::Initiator => e.sa.send_initial_contact,
                        Role::Responder => e.sa.initial_contact,
                    },
                }
            })
            .collect()
    }
}

/// An ID payload as an operator reads it.
fn identity_text(id: &Id) -> String {
    Identity::from_wire(id).map_or_else(
        || format!("type {} {}", id.kind, hex::encode(&id.data)),
        |i| i.to_string(),
    )
}

/// A child's selectors as prefixes, IPv4 then IPv6.
fn texts(ts: &[crate::ike::wire::TrafficSelector]) -> Vec<String> {
    let v4 = prefixes(ts).into_iter().map(|p| p.to_string());
    v4.chain(prefixes6(ts).into_iter().map(|p| p.to_string()))
        .collect()
}
