//! Each change to the kind of object it is about (`network`, `tunnels`, `sas`), where it is
//! checked against what is installed (nothing is sent or changed until the whole change is
//! known to fit), then turned into worker commands.

use super::{ChangeError, ControlState};
use crate::forward::{Interface, WorkerIndex};
use crate::wire::ethernet::Mac;
use channel::Change;
use ipnet::Ipv4Net;

impl ControlState {
    pub(super) fn apply_change(&mut self, change: Change, g: u64) -> Result<(), ChangeError> {
        match change {
            Change::SetInterface(spec) => self.set_interface(spec, g),
            Change::DeleteInterface { name } => self.delete_interface(name, g),
            Change::SetNeighbor { addr, mac } => self.set_neighbor(addr, Mac(mac), g),
            Change::DeleteNeighbor { addr } => self.delete_neighbor(addr, g),
            Change::SetRoute { prefix, via } => self.set_route(prefix, via, g),
            Change::DeleteRoute { prefix } => self.delete_route(prefix, g),
            Change::SetTunnel(spec) => self.set_tunnel(spec, g),
            Change::DeleteTunnel { name } => self.delete_tunnel(name, g),
            Change::SetOutboundSa(spec) => self.set_outbound_sa(spec, g),
            Change::DeleteOutboundSa { tunnel } => self.delete_outbound_sa(tunnel, g),
            Change::SetInboundSa(spec) => self.set_inbound_sa(spec, g),
            Change::DeleteInboundSa { spi } => self.delete_inbound_sa(spi, g),
            Change::ClearCounters(scope) => {
                self.clear(scope);
                Ok(())
            }
            Change::SetPolicy(spec) => self.set_policy(spec),
            Change::DeletePolicy { name } => self.delete_policy(name),
        }
    }

    pub(super) fn socket(&self, w: WorkerIndex) -> i32 {
        self.workers
            .get(usize::from(w))
            .map_or(-1, |w| w.info.socket)
    }

    pub(super) fn lcore(&self, w: WorkerIndex) -> u32 {
        self.workers
            .get(usize::from(w))
            .map_or(u32::MAX, |w| w.info.lcore)
    }
}

pub(super) fn subnet(i: &Interface) -> Ipv4Net {
    Ipv4Net::new(i.addr, i.prefix_len)
        .map(|n| n.trunc())
        .unwrap_or_default()
}
