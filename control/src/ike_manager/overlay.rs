//! What IKE negotiated, laid over the configuration's changes for the dataplane.

use super::*;

impl IkeManager {
    /// The configuration's changes with what IKE negotiated laid over them: each bound
    /// tunnel's NAT-T ports from its IKE SA, its selectors and SAs from its children (the
    /// VPN's child of the tunnel's slot).
    pub fn overlay(&self, changes: &mut Vec<Change>) {
        for e in self.sas.values() {
            if e.sa.state != State::Established || e.sa.children().is_empty() {
                continue;
            }
            let Some(v) = self.vpn(&e.vpn) else {
                continue;
            };
            for c in changes.iter_mut() {
                if let Change::SetTunnel(t) = c {
                    let Some(slot) = v.tunnels.iter().position(|n| *n == t.name) else {
                        continue;
                    };
                    // The selectors of the child that carries the traffic (the newest).
                    let Some(first) =
                        e.sa.children()
                            .iter()
                            .filter(|c| c.sa.slot == slot)
                            .max_by_key(|c| (c.outbound, c.made))
                            .map(|c| &c.sa)
                    else {
                        continue;
                    };
                    // A dial-up peer is where its IKE SA is.
                    if t.dynamic {
                        t.remote = e.sa.path.remote.ip();
                    }
                    t.udp =
                        e.sa.nat
                            .then(|| (channel::NATT_PORT, e.sa.path.remote.port()));
                    t.local_selectors = prefixes(&first.local_ts)
                        .into_iter()
                        .take(channel::MAX_SELECTORS)
                        .collect();
                    t.remote_selectors = prefixes(&first.remote_ts)
                        .into_iter()
                        .take(channel::MAX_SELECTORS)
                        .collect();
                    // IPv6 as negotiated: none (the tunnel carries no IPv6) unless the child
                    // has IPv6 selectors.
                    *t.local_selectors6 = prefixes6(&first.local_ts)
                        .into_iter()
                        .take(channel::MAX_SELECTORS)
                        .collect();
                    *t.remote_selectors6 = prefixes6(&first.remote_ts)
                        .into_iter()
                        .take(channel::MAX_SELECTORS)
                        .collect();
                }
            }
            for c in e.sa.children() {
                let alg = if c.sa.outbound_key.len() == 20 {
                    Algorithm::Aes128Gcm
                } else {
                    Algorithm::Aes256Gcm
                };
                // The dataplane's soft event (bytes, packets) starts the rekey well before
                // the hard limit stops the SA.
                let share = |n: Option<u64>| n.map(|n| (n as f64 * c.soft_share()).max(1.0) as u64);
                let soft = Lifetime {
                    packets: share(v.hard.packets),
                    bytes: share(v.hard.bytes),
                };
                let Some(&tunnel) = v.tunnels.get(c.sa.slot) else {
                    continue;
                };
                let spec = |spi: u32, key: &[u8]| {
                    KeyMaterial::new(alg, key).ok().map(|keys| SaSpec {
                        tunnel,
                        spi,
                        keys,
                        esn: c.sa.esn,
                        soft,
                        hard: v.hard,
                    })
                };
                if let Some(sa) = spec(c.sa.inbound_spi, &c.sa.inbound_key) {
                    changes.push(Change::SetInboundSa(InboundSaSpec {
                        sa,
                        replay_window: REPLAY_WINDOW,
                        highest_seen: 0,
                        idle_after: None,
                    }));
                }
                if c.outbound {
                    if let Some(sa) = spec(c.sa.outbound_spi, &c.sa.outbound_key) {
                        changes.push(Change::SetOutboundSa(OutboundSaSpec { sa, first_seq: 1 }));
                    }
                }
            }
        }
    }
}
