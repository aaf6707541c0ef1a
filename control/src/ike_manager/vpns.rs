//! The configuration's VPNs as IKE needs them: settings parsed and checked once per commit.

use super::*;

/// A configured identity in normal form; `Err`: a DN that does not parse.
fn identity_of(i: &IkeId) -> Result<Option<Identity>, String> {
    Ok(Some(match i {
        IkeId::Ipv4(a) => Identity::Ipv4(*a),
        IkeId::Ipv6(a) => Identity::Ipv6(*a),
        IkeId::Fqdn(s) => Identity::Fqdn(s.to_lowercase()),
        IkeId::UserFqdn(s) => Identity::UserFqdn(s.to_lowercase()),
        IkeId::Dn(s) => Identity::Dn(Dn::parse(s)?),
        IkeId::CertificateSubject => return Ok(None),
    }))
}

/// The ID payload we send: as configured, a DN as our certificate's own subject (which it
/// must be), by default that subject.
fn local_id(i: &IkeId, auth: &Auth) -> Result<Id, String> {
    let subject = auth.certificate_subject();
    match (identity_of(i)?, subject) {
        (Some(Identity::Dn(dn)), Some(s)) => {
            if Identity::from_wire(s) != Some(Identity::Dn(dn.clone())) {
                return Err(format!("{dn} is not the subject of the certificate"));
            }
            Ok(s.clone())
        }
        (Some(id), _) => id
            .to_wire()
            .ok_or_else(|| "a DN needs a certificate".into()),
        (None, Some(s)) => Ok(s.clone()),
        (None, None) => Err("no certificate to take the identity from".into()),
    }
}

/// A gateway's authentication with its certificates and key loaded (once per commit).
fn auth_of(a: &IkeAuth) -> Result<Auth, (&'static str, String)> {
    Ok(match a {
        IkeAuth::Psk(k) => Auth::Psk(k.clone()),
        IkeAuth::Certificate {
            certificate,
            private_key,
            ca_certificates,
        } => Auth::Certificate {
            ours: Arc::new(
                load_credential(certificate, private_key).map_err(|e| ("certificate", e))?,
            ),
            trust: Arc::new(load_trust(ca_certificates).map_err(|e| ("ca_certificates", e))?),
        },
    })
}

/// The IKE settings of every VPN of `cfg`; an error names the field (a proposal the
/// dataplane cannot carry out, or that does not parse).
pub(super) fn vpns_of(cfg: &Config) -> Result<Vec<Vpn>, (String, String)> {
    let mut out = Vec::new();
    let mut auths: HashMap<usize, Auth> = HashMap::new();
    for (vi, v) in cfg.ike.vpns.iter().enumerate() {
        let Some(g) = cfg.ike.gateways.get(v.gateway) else {
            continue;
        };
        let gi = v.gateway;
        let ike = g
            .proposals
            .iter()
            .enumerate()
            .map(|(i, p)| {
                parse_ike(p)
                    .map_err(|e| (format!("ike.gateways[{gi}].proposals[{i}]"), e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let esp = v
            .esp_proposals
            .iter()
            .enumerate()
            .map(|(i, p)| {
                parse_esp(p)
                    .map_err(|e| (format!("ike.vpns[{vi}].esp_proposals[{i}]"), e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let rekey = v.lifetime_s.saturating_sub(v.rekey_margin_s);
        let field = |f: &str| format!("ike.gateways[{gi}].{f}");
        let auth = match auths.get(&gi) {
            Some(a) => a.clone(),
            None => {
                let a = auth_of(&g.auth).map_err(|(f, e)| (field(f), e))?;
                auths.insert(gi, a.clone());
                a
            }
        };
        let local_id = local_id(&g.local_id, &auth).map_err(|e| (field("local_id"), e))?;
        let remote_id = match identity_of(&g.remote_id) {
            Ok(Some(id)) => id,
            Ok(None) => return Err((field("remote_id"), "give the peer's identity".into())),
            Err(e) => return Err((field("remote_id"), e)),
        };
        let settings = Settings {
            ike,
            esp,
            auth,
            local_id,
            remote_id,
            children: v
                .children
                .iter()
                .map(|c| ChildSelectors {
                    local: c
                        .local_ts
                        .iter()
                        .map(|p| selector(*p, c.protocol, c.local_ports))
                        .collect(),
                    remote: c
                        .remote_ts
                        .iter()
                        .map(|p| selector(*p, c.protocol, c.remote_ports))
                        .collect(),
                })
                .collect(),
            force_encap: g.force_encap,
            fragment_size: g.fragment_size,
            retransmit: Retransmit::default(),
            dpd: match g.dpd.action {
                DpdAction::None => None,
                _ => Some(Duration::from_secs(u64::from(g.dpd.interval_s))),
            },
            dpd_threshold: g.dpd.threshold,
            ike_rekey: Some(Duration::from_secs(u64::from(
                g.lifetime_s - g.lifetime_s / 10,
            ))),
            ike_lifetime: Some(Duration::from_secs(u64::from(g.lifetime_s))),
            child_lifetime: Some(Duration::from_secs(u64::from(v.lifetime_s))),
            child_rekey: Some(Duration::from_secs(u64::from(rekey.max(1)))),
            grace: Duration::from_secs(5),
        };
        let fingerprint = format!("{g:?} {v:?}");
        out.push(Vpn {
            name: v.name,
            gateway: g.name,
            tunnels: v.children.iter().map(|c| c.tunnel).collect(),
            local: g.local,
            remote: g.remote,
            port: g.port,
            settings: Arc::new(settings),
            establish: v.establish,
            dpd_action: g.dpd.action,
            hard: Lifetime {
                packets: v.lifetime_packets,
                bytes: v.lifetime_bytes,
            },
            start_at: None,
            fingerprint,
        });
    }
    Ok(out)
}

/// Checks what only the control can check (the proposals); `Err`: (field, reason).
pub fn validate(cfg: &Config) -> Result<(), (String, String)> {
    vpns_of(cfg).map(|_| ())
}
