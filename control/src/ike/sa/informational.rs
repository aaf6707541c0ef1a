//! INFORMATIONAL (RFC 7296 section 1.4): deletes of the IKE SA and of children both ways,
//! and liveness checks (an empty request).

use super::*;

impl IkeSa {
    /// An INFORMATIONAL request: liveness (empty), or deletes. The answer's payloads, and
    /// whether the IKE SA is gone.
    pub(super) fn informational(
        &mut self,
        now: Instant,
        payloads: &[Payload],
    ) -> (Vec<Payload>, bool) {
        let mut ours = Vec::new();
        let mut changed = false;
        for p in payloads {
            match p {
                Payload::Delete { protocol: 1, .. } => return (Vec::new(), true),
                Payload::Delete {
                    protocol: PROTO_ESP,
                    spis,
                    ..
                } => {
                    for s in spis {
                        let Ok(b) = <[u8; 4]>::try_from(s.as_slice()) else {
                            continue;
                        };
                        let theirs = u32::from_be_bytes(b);
                        // Their inbound SPI is our outbound one; we answer with our inbound.
                        if let Some(i) = self
                            .children
                            .iter()
                            .position(|c| c.sa.outbound_spi == theirs)
                        {
                            let c = self.children.remove(i);
                            ours.push(c.sa.inbound_spi.to_be_bytes().to_vec());
                            // Its successor from a rekey carries our traffic from now on
                            // (not a redundant child of a simultaneous rekey, nor one going).
                            if c.outbound {
                                if let Some(n) = self.children.iter_mut().rev().find(|n| {
                                    n.sa.slot == c.sa.slot && !n.rekeyed && n.retire_at.is_none()
                                }) {
                                    n.outbound = true;
                                }
                            }
                            changed = true;
                        }
                    }
                }
                _ => {}
            }
        }
        let _ = now;
        if changed {
            self.actions.push_back(Action::Children);
        }
        if ours.is_empty() {
            return (Vec::new(), false);
        }
        (
            vec![Payload::Delete {
                protocol: PROTO_ESP,
                spi_size: 4,
                spis: ours,
            }],
            false,
        )
    }

    /// Our INFORMATIONAL request: `inner` its payloads.
    pub(super) fn informational_request(&mut self, now: Instant, inner: &[Payload], what: Asking) {
        let id = self.next_id;
        if let Some(b) = self.seal(Exchange::Informational, id, false, inner) {
            self.next_id = id.wrapping_add(1);
            self.send_request(now, id, b, what);
        }
    }

    pub(super) fn delete_child(&mut self, now: Instant, inbound: u32) {
        let d = Payload::Delete {
            protocol: PROTO_ESP,
            spi_size: 4,
            spis: vec![inbound.to_be_bytes().to_vec()],
        };
        self.informational_request(now, &[d], Asking::DeleteChild(inbound));
    }

    /// Deletes the IKE SA and its children (the peer is told; the children go at once).
    pub fn delete(&mut self, now: Instant) {
        match self.state {
            State::Established => {
                self.out = None;
                let d = Payload::Delete {
                    protocol: 1,
                    spi_size: 0,
                    spis: Vec::new(),
                };
                if !self.children.is_empty() {
                    self.children.clear();
                    self.actions.push_back(Action::Children);
                }
                self.informational_request(now, &[d], Asking::Delete);
                self.state = State::Deleting;
            }
            State::Closed | State::Deleting => {}
            _ => self.close(Close::Deleted),
        }
    }
}
