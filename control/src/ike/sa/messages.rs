//! An IKE SA's messages as datagrams: sealed under our key (in fragments when both sides
//! agreed to them, RFC 7383), opened under the peer's, the peer's fragments put back together,
//! our requests kept for retransmission.

use super::*;

impl IkeSa {
    pub(super) fn our_key(&self) -> Result<sk::SkKey, SkError> {
        match &self.done {
            Some(d) => d.keys.sk(self.role == Role::Initiator),
            None => Err(SkError::NotEncrypted),
        }
    }

    pub(super) fn peer_key(&self) -> Result<sk::SkKey, SkError> {
        match &self.done {
            Some(d) => d.keys.sk(self.role != Role::Initiator),
            None => Err(SkError::NotEncrypted),
        }
    }

    /// The message with its Encrypted payload checked and opened under the peer's key.
    pub(super) fn open(&self, bytes: &[u8]) -> Option<Message> {
        sk::open(bytes, &self.peer_key().ok()?).ok()
    }

    /// An encrypted message of the peer's, opened (and checked) if it is not yet.
    pub(super) fn open_incoming(&self, body: Incoming<'_>) -> Option<Message> {
        match body {
            Incoming::Whole(bytes) => self.open(bytes),
            Incoming::Reassembled(m) => Some(m),
        }
    }

    /// The largest IKE message we send whole, once both sides agreed to IKE fragmentation:
    /// the fragment size less the IP header of the path's family, UDP and the non-ESP marker.
    pub(super) fn fragment_max(&self) -> Option<usize> {
        let agreed = self.fragmentation();
        let size = usize::from(self.settings.fragment_size.filter(|_| agreed)?);
        let ip = if self.path.remote.is_ipv6() { 40 } else { 20 };
        Some(size.saturating_sub(ip + fragment::UDP_MARKER))
    }

    /// A message sealed whole elsewhere (IKE_AUTH), in fragments if it is too big.
    pub(super) fn outgoing(&mut self, whole: Vec<u8>) -> Vec<Vec<u8>> {
        let Some(max) = self.fragment_max().filter(|&m| whole.len() > m) else {
            return vec![whole];
        };
        let Ok(key) = self.our_key() else {
            return vec![whole];
        };
        let sealed = sk::open(&whole, &key).and_then(|m| {
            fragment::seal(
                &m.header,
                &m.payloads,
                &key,
                &mut self.iv,
                &self.rng,
                Some(max),
            )
        });
        match sealed {
            Ok(frags) => {
                self.stats.fragmented += 1;
                frags
            }
            Err(_) => vec![whole],
        }
    }

    /// Sends `datagrams` (a message or its fragments) along `path`.
    pub(super) fn send_all(&mut self, path: Path, datagrams: &[Vec<u8>]) {
        for bytes in datagrams {
            self.actions.push_back(Action::Send {
                path,
                bytes: bytes.clone(),
            });
        }
    }

    pub(super) fn header(&self, exchange: Exchange, id: u32, response: bool) -> Header {
        Header {
            initiator_spi: self.spi_i,
            responder_spi: self.spi_r,
            exchange,
            flags: Flags {
                initiator: self.role == Role::Initiator,
                response,
                ..Default::default()
            },
            message_id: id,
        }
    }

    /// Encrypts `inner` under our key: one datagram, or its fragments (RFC 7383) when both
    /// sides agreed to them and it is too big.
    pub(super) fn seal(
        &mut self,
        exchange: Exchange,
        id: u32,
        response: bool,
        inner: &[Payload],
    ) -> Option<Vec<Vec<u8>>> {
        let key = self.our_key().ok()?;
        let h = self.header(exchange, id, response);
        let max = self.fragment_max();
        let out = fragment::seal(&h, inner, &key, &mut self.iv, &self.rng, max).ok()?;
        if out.len() > 1 {
            self.stats.fragmented += 1;
        }
        Some(out)
    }

    pub(super) fn send_request(
        &mut self,
        now: Instant,
        id: u32,
        bytes: Vec<Vec<u8>>,
        what: Asking,
    ) {
        self.last_sent = now;
        self.send_all(self.path, &bytes);
        // A liveness check is sent again each interval, `threshold` times in all (Junos'
        // `dead-peer-detection interval N threshold M`); everything else backs off.
        let schedule = match (&what, self.settings.dpd) {
            (Asking::Liveness, Some(d)) => Retransmit {
                timeout: d,
                base: 1.0,
                tries: self.settings.dpd_threshold,
            },
            _ => self.settings.retransmit,
        };
        self.out = Some(Outstanding {
            id,
            bytes,
            sends: 1,
            next: now + schedule.timeout,
            first_sent: now,
            schedule,
            what,
        });
    }

    /// A fragment (RFC 7383) of the message due from the peer: kept once it verifies; the
    /// message handled once whole. A fragment of a request already answered sends the
    /// answer again (on its first fragment, so once per retransmission).
    pub(super) fn fragment_in(
        &mut self,
        now: Instant,
        path: Path,
        bytes: &[u8],
        h: Header,
        spis: &mut dyn SpiSource,
    ) {
        let agreed = self.fragmentation();
        let due = if h.flags.response {
            self.out.as_ref().is_some_and(|o| o.id == h.message_id)
        } else {
            if let Some((id, resp)) = &self.cached {
                if *id == h.message_id {
                    if is_first_fragment(bytes) {
                        let resp = resp.clone();
                        self.stats.duplicates_answered += 1;
                        self.send_all(path, &resp);
                    }
                    return;
                }
            }
            h.message_id == self.peer_next
        };
        let Ok(key) = self.peer_key() else {
            self.stats.invalid += 1;
            return;
        };
        if !agreed || !due {
            self.stats.invalid += 1;
            return;
        }
        let slot = &mut self.reassembly[usize::from(h.flags.response)];
        match fragment::reassemble(slot, bytes, &key) {
            Err(_) => self.stats.invalid += 1,
            Ok(None) => self.last_heard = self.last_heard.max(now),
            Ok(Some(m)) => {
                self.stats.reassembled += 1;
                if h.flags.response {
                    self.handle_response(now, path, h, Incoming::Reassembled(m), spis);
                } else {
                    self.handle_request(now, path, Incoming::Reassembled(m), h, spis);
                }
            }
        }
    }
}
