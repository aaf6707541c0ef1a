//! Policies of policy-based VPNs, kept by name. The workers' lookup table
//! (`forward::policy::Classifier`) is built anew from all of them, with the tunnels' ids, once
//! a batch of changes is in (`publish_policies`, from `flush`): a commit of ten thousand
//! policies builds it once, not ten thousand times. A tunnel a policy sends into cannot go
//! while the policy stays.

use super::{refuse, ChangeError, ControlState};
use crate::forward::policy::{Action, Classifier, Rule};
use crate::forward::WorkerCommand;
use channel::{Name, PolicyAction, PolicySpec};
use ipnet::Ipv4Net;
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
        let mut rules = Vec::new();
        for p in list {
            let action = match p.action {
                PolicyAction::Permit => Action::Permit,
                PolicyAction::Deny => Action::Deny,
                PolicyAction::Tunnel(t) => match self.tunnels.get(&t) {
                    Some(t) => Action::Tunnel(t.id),
                    None => continue,
                },
            };
            let any = [Ipv4Net::default()];
            let or_any = |l: &[Ipv4Net]| {
                if l.is_empty() {
                    any.to_vec()
                } else {
                    l.to_vec()
                }
            };
            for src in or_any(&p.src) {
                for dst in or_any(&p.dst) {
                    rules.push(Rule {
                        src,
                        dst,
                        protocol: p.protocol,
                        src_ports: p.src_ports,
                        dst_ports: p.dst_ports,
                        action,
                    });
                }
            }
        }
        let table = (!self.policies.is_empty()).then(|| Arc::new(Classifier::new(rules)));
        let g = self.generation;
        self.broadcast(g, || WorkerCommand::SetPolicies(table.clone()));
    }
}
