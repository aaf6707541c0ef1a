//! SA anchoring: which worker owns each tunnel, as Juniper SRX anchors tunnels to SPUs.
//!
//! Workers form **anchor groups** (the SPU analogue). The **load factor** of a group is the
//! number of tunnels anchored on it divided by its number of workers. The rules:
//!
//! 1. A new site-to-site tunnel goes to the group with the smallest load factor (ties: the
//!    lowest group id), and inside it to the worker with the fewest tunnels (ties: the first
//!    listed).
//! 2. Tunnels between the same local and remote gateway addresses (and so all child SAs of one
//!    IKE SA) go to the group that already holds such a tunnel, spread over its workers by
//!    rule 1's second half.
//! 3. Dynamic tunnels (remote `any`) go round-robin over the groups.
//! 4. A tunnel, once placed, never moves: its inbound and outbound SAs, and the SAs that
//!    replace them at rekey, all live on its worker. Adding workers or tunnels moves nothing.
//!
//! Every SA has exactly one owner, so sequence numbers and replay windows need no atomics.
//! This module is pure bookkeeping; the dataplane applies its answers.

use std::collections::HashMap;
use std::net::IpAddr;

pub type Lcore = u32;

/// Who a tunnel talks to, for the affinity rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Peer {
    Site {
        local: IpAddr,
        remote: IpAddr,
    },
    /// A dial-up peer (remote `any`): no affinity, round-robin.
    Dynamic,
}

/// Where a tunnel lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub group: usize,
    pub worker: Lcore,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnchorError {
    #[error("anchor group {0} has no workers")]
    EmptyGroup(usize),
    #[error("worker lcore {0} is in more than one anchor group")]
    DuplicateWorker(Lcore),
    #[error("there are no anchor groups")]
    NoGroups,
}

#[derive(Debug, Clone)]
struct Group {
    /// (lcore, tunnels anchored on it), in configuration order.
    workers: Vec<(Lcore, u32)>,
    tunnels: u32,
}

impl Group {
    /// Is this group's load factor below `other`'s? (a/b < c/d without division)
    fn lighter_than(&self, other: &Group) -> bool {
        let (a, b) = (u64::from(self.tunnels), self.workers.len() as u64);
        let (c, d) = (u64::from(other.tunnels), other.workers.len() as u64);
        a * d < c * b
    }
}

/// The anchoring state of one dataplane.
#[derive(Debug, Clone)]
pub struct Anchors {
    groups: Vec<Group>,
    tunnels: HashMap<u32, (Placement, Peer)>,
    /// Gateway pair -> (group, tunnels of that pair still anchored).
    affinity: HashMap<(IpAddr, IpAddr), (usize, u32)>,
    next_dynamic: usize,
}

impl Anchors {
    /// Groups as lists of worker lcores.
    pub fn new(groups: &[Vec<Lcore>]) -> Result<Anchors, AnchorError> {
        let mut a = Anchors {
            groups: Vec::new(),
            tunnels: HashMap::new(),
            affinity: HashMap::new(),
            next_dynamic: 0,
        };
        if groups.is_empty() {
            return Err(AnchorError::NoGroups);
        }
        for g in groups {
            a.add_group(g)?;
        }
        Ok(a)
    }

    /// Adds a group; existing tunnels stay where they are.
    pub fn add_group(&mut self, workers: &[Lcore]) -> Result<usize, AnchorError> {
        if workers.is_empty() {
            return Err(AnchorError::EmptyGroup(self.groups.len()));
        }
        for &w in workers {
            if self.contains_worker(w) || workers.iter().filter(|&&x| x == w).count() > 1 {
                return Err(AnchorError::DuplicateWorker(w));
            }
        }
        self.groups.push(Group {
            workers: workers.iter().map(|&w| (w, 0)).collect(),
            tunnels: 0,
        });
        Ok(self.groups.len() - 1)
    }

    /// Adds a worker to a group; existing tunnels stay where they are.
    pub fn add_worker(&mut self, group: usize, lcore: Lcore) -> Result<(), AnchorError> {
        if self.contains_worker(lcore) {
            return Err(AnchorError::DuplicateWorker(lcore));
        }
        match self.groups.get_mut(group) {
            Some(g) => {
                g.workers.push((lcore, 0));
                Ok(())
            }
            None => Err(AnchorError::EmptyGroup(group)),
        }
    }

    fn contains_worker(&self, lcore: Lcore) -> bool {
        self.groups
            .iter()
            .any(|g| g.workers.iter().any(|&(w, _)| w == lcore))
    }

    /// Anchors a tunnel (identified by `tunnel`), or returns where it already is: SAs of a
    /// tunnel, and their replacements, always land on its worker.
    pub fn place(&mut self, tunnel: u32, peer: Peer) -> Placement {
        if let Some(&(p, _)) = self.tunnels.get(&tunnel) {
            return p;
        }
        let group = match peer {
            Peer::Site { local, remote } => match self.affinity.get(&(local, remote)) {
                Some(&(g, _)) => g,
                None => self.lightest_group(),
            },
            Peer::Dynamic => {
                let g = self.next_dynamic % self.groups.len();
                self.next_dynamic = self.next_dynamic.wrapping_add(1);
                g
            }
        };
        let grp = &mut self.groups[group];
        // The least-loaded worker; `min_by_key` keeps the first of equals.
        let slot = grp.workers.iter_mut().min_by_key(|(_, n)| *n);
        let worker = match slot {
            Some((w, n)) => {
                *n += 1;
                *w
            }
            None => unreachable!("groups are never empty"),
        };
        grp.tunnels += 1;
        if let Peer::Site { local, remote } = peer {
            self.affinity.entry((local, remote)).or_insert((group, 0)).1 += 1;
        }
        let p = Placement { group, worker };
        self.tunnels.insert(tunnel, (p, peer));
        p
    }

    /// Forgets a tunnel (deleted). Its gateway pair loses its affinity with the last one.
    pub fn remove(&mut self, tunnel: u32) -> Option<Placement> {
        let (p, peer) = self.tunnels.remove(&tunnel)?;
        let g = &mut self.groups[p.group];
        g.tunnels -= 1;
        if let Some(w) = g.workers.iter_mut().find(|(w, _)| *w == p.worker) {
            w.1 -= 1;
        }
        if let Peer::Site { local, remote } = peer {
            if let Some(e) = self.affinity.get_mut(&(local, remote)) {
                e.1 -= 1;
                if e.1 == 0 {
                    self.affinity.remove(&(local, remote));
                }
            }
        }
        Some(p)
    }

    pub fn placement(&self, tunnel: u32) -> Option<Placement> {
        self.tunnels.get(&tunnel).map(|(p, _)| *p)
    }

    fn lightest_group(&self) -> usize {
        let mut best = 0;
        for (i, g) in self.groups.iter().enumerate().skip(1) {
            if g.lighter_than(&self.groups[best]) {
                best = i;
            }
        }
        best
    }

    pub fn groups(&self) -> usize {
        self.groups.len()
    }

    /// Tunnels per worker over workers in the group.
    pub fn load_factor(&self, group: usize) -> f64 {
        self.groups
            .get(group)
            .map_or(0.0, |g| f64::from(g.tunnels) / g.workers.len() as f64)
    }

    /// (lcore, tunnels) of each worker of a group, in configuration order.
    pub fn workers(&self, group: usize) -> &[(Lcore, u32)] {
        self.groups.get(group).map_or(&[], |g| &g.workers)
    }

    pub fn tunnels_in(&self, group: usize) -> u32 {
        self.groups.get(group).map_or(0, |g| g.tunnels)
    }

    /// The group a worker belongs to.
    pub fn group_of(&self, lcore: Lcore) -> Option<usize> {
        self.groups
            .iter()
            .position(|g| g.workers.iter().any(|&(w, _)| w == lcore))
    }
}

#[cfg(test)]
mod tests;
