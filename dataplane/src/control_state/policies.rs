//! Policies of policy-based VPNs, kept by name. The workers' lookup tables
//! (`forward::policy::Policies`, a classifier per family) are built anew from all of them, with the tunnels' ids, once
//! a batch of changes is in (`publish_policies`, from `flush`): a commit of ten thousand
//! policies builds it once, not ten thousand times. A tunnel a policy sends into cannot go
//! while the policy stays.

use super::{refuse, ChangeError, ControlState};
use crate::forward::policy::{Action, Classifier, Family, Policies, Rule, V4, V6};
use crate::forward::WorkerCommand;
use channel::{Name, PolicyAction, PolicySpec};
use std::sync::Arc;

impl ControlState {
    pub(super) fn set_policy(&mut self, spec: PolicySpec) -> Result<(), ChangeError> {
        let what = format!("policy {}", spec.name);
        if let PolicyAction::Tunnel(t) = spec.action {
            if !self.tunnels.contains_key(&t) {
                return refuse(what, format!("no tunnel named {t}"));
            }
        }
        for (lo, hi) in [spec.src_ports, spec.dst_ports] {
            if lo > hi {
                return refuse(what, format!("port range {lo}-{hi} is empty"));
            }
        }
        self.policies.insert(spec.name, spec);
        self.policies_dirty = true;
        Ok(())
    }

    pub(super) fn delete_policy(&mut self, name: Name) -> Result<(), ChangeError> {
        if self.policies.remove(&name).is_none() {
            return refuse(format!("policy {name}"), "no such policy");
        }
        self.policies_dirty = true;
        Ok(())
    }

    /// The policy that sends into tunnel `name`, if one does.
    pub(super) fn policy_into(&self, name: Name) -> Option<Name> {
        self.policies
            .values()
            .find(|p| p.action == PolicyAction::Tunnel(name))
            .map(|p| p.name)
    }

    /// Sends every worker the lookup table of the policies as they are now, if they changed
    /// (none: no lookup at all, the packet path as without policies).
    pub(super) fn publish_policies(&mut self) {
        if !std::mem::take(&mut self.policies_dirty) {
            return;
        }
        let mut list: Vec<&PolicySpec> = self.policies.values().collect();
        list.sort_by_key(|p| (p.position, p.name));
        let (mut rules, mut rules6) = (Vec::new(), Vec::new());
        for p in list {
            let action = match p.action {
                PolicyAction::Permit => Action::Permit,
                PolicyAction::Deny => Action::Deny,
                PolicyAction::Tunnel(t) => match self.tunnels.get(&t) {
                    Some(t) => Action::Tunnel(t.id),
                    None => continue,
                },
            };
            // One rule per pair of prefixes of each family the policy applies to; a side with
            // none of either family is the whole family.
            let (v4, v6) = p.families();
            let src_any = p.src.is_empty() && p.src6.is_empty();
            let dst_any = p.dst.is_empty() && p.dst6.is_empty();
            if v4 {
                let (s, d) = (or_any(&p.src, src_any), or_any(&p.dst, dst_any));
                rules.extend(pairs::<V4>(p, action, &s, &d));
            }
            if v6 {
                let (s, d) = (or_any(&p.src6, src_any), or_any(&p.dst6, dst_any));
                rules6.extend(pairs::<V6>(p, action, &s, &d));
            }
        }
        let table = (!self.policies.is_empty()).then(|| {
            Arc::new(Policies {
                v4: Classifier::new(rules),
                v6: Classifier::new(rules6),
            })
        });
        let g = self.generation;
        self.broadcast(g, || WorkerCommand::SetPolicies(table.clone()));
    }
}

/// The rules of `p` in one family: one per pair of its source and destination prefixes.
fn pairs<F: Family>(
    p: &PolicySpec,
    action: Action,
    srcs: &[F::Net],
    dsts: &[F::Net],
) -> Vec<Rule<F>> {
    srcs.iter()
        .flat_map(|&src| {
            dsts.iter().map(move |&dst| Rule {
                src,
                dst,
                protocol: p.protocol,
                src_ports: p.src_ports,
                dst_ports: p.dst_ports,
                action,
            })
        })
        .collect()
}

/// A side's prefixes of one family, or the family's whole space (`/0`) when the side is any.
fn or_any<N: Copy + Default>(list: &[N], any: bool) -> Vec<N> {
    if any {
        vec![N::default()]
    } else {
        list.to_vec()
    }
}
