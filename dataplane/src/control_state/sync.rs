//! Setting what is already set changes nothing, and a resync removes what was not set again.
//!
//! A control process that restarts, or one that finds a dataplane it did not start, sends its
//! whole state again between `sync_begin` and `sync_end`. Every object a `Set*` names is then
//! either already there, identical (nothing happens: an outbound SA keeps counting its sequence
//! numbers, an inbound SA keeps its replay window), or installed; whatever was there before the
//! resync and was not named in it is deleted at its end.
//!
//! "Identical" is decided on a digest of the whole change, key material included, kept per
//! object; the key bytes themselves are not kept.

use super::{ChangeError, ControlState, RouteOrigin};
use channel::{Change, ObjectKey};
use std::collections::BTreeSet;

/// SHA-256 of a change's encoding.
pub type Digest = [u8; 32];

/// The outcome of one change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// In force once every worker has applied this generation.
    pub generation: u64,
    /// False when the change asked for what was already so.
    pub changed: bool,
}

/// The digest of a change, its key material included; the encoding is wiped after.
pub fn digest(change: &Change) -> Digest {
    let mut bytes = postcard::to_allocvec(change).unwrap_or_default();
    let d = ring::digest::digest(&ring::digest::SHA256, &bytes);
    zeroize::Zeroize::zeroize(&mut bytes);
    let mut out = [0; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The digest of an SA's SPI and key material.
pub(super) fn key_digest(spi: u32, keys: &[u8]) -> Digest {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(&spi.to_be_bytes());
    ctx.update(keys);
    let mut out = [0; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

impl ControlState {
    /// Applies one change; its generation and whether it changed anything, or why it was
    /// refused (then nothing of it was applied). The key material the change carries is wiped
    /// when it returns.
    pub fn apply(&mut self, change: Change) -> Result<Applied, ChangeError> {
        let set = ObjectKey::of_set(&change).map(|k| (k, digest(&change)));
        if let Some((key, d)) = set {
            if let Some(stale) = &mut self.stale {
                stale.remove(&key);
            }
            if self.digests.get(&key) == Some(&d) && self.holds(key) {
                return Ok(Applied {
                    generation: self.generation,
                    changed: false,
                });
            }
        }
        // The same key again under a tunnel's running outbound SA would start its sequence
        // numbers, and so the GCM nonces, over.
        let outbound_key = match &change {
            Change::SetOutboundSa(s) => {
                let kd = key_digest(s.sa.spi, s.sa.keys.bytes());
                let t = s.sa.tunnel;
                if self.key_digests.get(&t) == Some(&kd) && self.holds(ObjectKey::OutboundSa(t)) {
                    return Err(ChangeError {
                        what: format!("outbound SA {:#x} of tunnel {t}", s.sa.spi),
                        reason: "it runs with this key already: installing it again would \
                                 repeat its sequence numbers (GCM nonces); use a new key"
                            .into(),
                    });
                }
                Some((t, kd))
            }
            _ => None,
        };
        let gone = self.deletes(&change);
        let g = self.generation + 1;
        self.apply_change(change, g)?;
        self.generation = g;
        if let Some((key, d)) = set {
            self.digests.insert(key, d);
        }
        if let Some((t, kd)) = outbound_key {
            self.key_digests.insert(t, kd);
        }
        for k in gone {
            self.digests.remove(&k);
            if let ObjectKey::OutboundSa(t) = k {
                self.key_digests.remove(&t);
            }
        }
        Ok(Applied {
            generation: g,
            changed: true,
        })
    }

    /// The objects a delete takes away: its own, and a tunnel's SAs with it.
    fn deletes(&self, change: &Change) -> Vec<ObjectKey> {
        match *change {
            Change::DeleteInterface { name } => vec![ObjectKey::Interface(name)],
            Change::DeleteNeighbor { addr } => vec![ObjectKey::Neighbor(addr)],
            Change::DeleteRoute { prefix } => vec![ObjectKey::Route(prefix)],
            Change::DeletePolicy { name } => vec![ObjectKey::Policy(name)],
            Change::DeleteOutboundSa { tunnel } => vec![ObjectKey::OutboundSa(tunnel)],
            Change::DeleteInboundSa { spi } => vec![ObjectKey::InboundSa(spi)],
            Change::DeleteTunnel { name } => {
                let mut v = vec![ObjectKey::Tunnel(name), ObjectKey::OutboundSa(name)];
                if let Some(t) = self.tunnels.get(&name) {
                    v.extend(t.inbound.iter().map(|s| ObjectKey::InboundSa(*s)));
                }
                v
            }
            _ => Vec::new(),
        }
    }

    /// Whether the object is installed now (a delete of another may have taken it along).
    fn holds(&self, key: ObjectKey) -> bool {
        match key {
            ObjectKey::Policy(n) => self.policies.contains_key(&n),
            ObjectKey::Route(ipnet::IpNet::V4(p)) => {
                matches!(self.routes.get(&p), Some((_, RouteOrigin::Static)))
            }
            ObjectKey::Route(ipnet::IpNet::V6(p)) => {
                matches!(self.routes6.get(&p), Some((_, RouteOrigin::Static)))
            }
            ObjectKey::InboundSa(spi) => self.inbound.contains_key(&spi),
            ObjectKey::OutboundSa(t) => self.tunnels.get(&t).is_some_and(|t| t.outbound.is_some()),
            ObjectKey::Tunnel(t) => self.tunnels.contains_key(&t),
            ObjectKey::Neighbor(a) => self.neighbors.contains_key(&a),
            ObjectKey::Interface(n) => self.interfaces.contains_key(&n),
        }
    }

    /// Every object installed now, as the change that set it would name it.
    fn objects(&self) -> BTreeSet<ObjectKey> {
        let mut all = BTreeSet::new();
        all.extend(self.interfaces.keys().map(|n| ObjectKey::Interface(*n)));
        all.extend(self.neighbors.keys().map(|a| ObjectKey::Neighbor(*a)));
        all.extend(self.policies.keys().map(|n| ObjectKey::Policy(*n)));
        all.extend(
            self.routes
                .iter()
                .filter(|(_, (_, o))| *o == RouteOrigin::Static)
                .map(|(p, _)| ObjectKey::Route((*p).into())),
        );
        all.extend(
            self.routes6
                .iter()
                .filter(|(_, (_, o))| *o == RouteOrigin::Static)
                .map(|(p, _)| ObjectKey::Route((*p).into())),
        );
        for (name, t) in &self.tunnels {
            all.insert(ObjectKey::Tunnel(*name));
            if t.outbound.is_some() {
                all.insert(ObjectKey::OutboundSa(*name));
            }
        }
        all.extend(self.inbound.keys().map(|s| ObjectKey::InboundSa(*s)));
        all
    }

    /// A resync starts: everything installed now is stale until a change sets it again.
    pub fn sync_begin(&mut self) {
        self.stale = Some(self.objects());
    }

    /// The resync ends: what is still stale is deleted (routes first, interfaces last);
    /// how many objects went, and the generation that has them gone.
    pub fn sync_end(&mut self) -> (u32, u64) {
        let Some(stale) = self.stale.take() else {
            return (0, self.generation);
        };
        let mut deleted = 0;
        for key in stale {
            if !self.holds(key) {
                continue;
            }
            match self.apply(key.delete()) {
                Ok(_) => deleted += 1,
                Err(ChangeError { what, reason }) => {
                    eprintln!("espgw: resync: {what} stays: {reason}");
                }
            }
        }
        (deleted, self.generation)
    }
}
