//! What travels between the main lcore and a worker. The main lcore's `ControlState` turns
//! each change into worker commands (tagged with its generation); a worker applies them
//! between bursts and reports the last generation it applied. The other way go what the
//! worker's traffic found out (`Event`) and the SAs it no longer holds (`Retired`), which the
//! main lcore frees.

use super::{InboundIndex, Interface, Target, Target6, TunnelId, WorkerIndex};
use crate::mem::Owned;
use crate::sa::{Direction, InboundSa, OutboundSa, SaEventKind};
use crate::wire::ethernet::Mac;
use ipnet::{Ipv4Net, Ipv6Net};
use std::net::IpAddr;

/// A change to one worker's state, applied between bursts.
pub enum WorkerCommand {
    SetInterface(Interface),
    DelInterface {
        port: u16,
    },
    AddRoute {
        prefix: Ipv4Net,
        target: Target,
    },
    DelRoute {
        prefix: Ipv4Net,
    },
    AddRoute6 {
        prefix: Ipv6Net,
        target: Target6,
    },
    DelRoute6 {
        prefix: Ipv6Net,
    },
    SetNeighbor {
        addr: IpAddr,
        mac: Mac,
        /// Static, never replaced by what ARP or neighbor discovery learns.
        permanent: bool,
    },
    DelNeighbor {
        addr: IpAddr,
    },
    /// A UDP port on which ESP in UDP (RFC 3948) is accepted, or no longer.
    AddNattPort(u16),
    DelNattPort(u16),
    /// A tunnel and the worker that owns it (its SAs, and the packets into it), and the MSS
    /// its TCP SYNs are clamped to (0: none).
    SetTunnel {
        tunnel: TunnelId,
        owner: WorkerIndex,
        tcp_mss: u16,
    },
    /// Forgets a tunnel that has no SA left.
    DelTunnel {
        tunnel: TunnelId,
    },
    /// On the tunnel's owner: its outbound SA, retiring the one it replaces.
    InstallOutbound {
        tunnel: TunnelId,
        sa: Owned<OutboundSa>,
    },
    /// On the tunnel's owner: retires its outbound SA.
    RemoveOutbound {
        tunnel: TunnelId,
    },
    /// On the tunnel's owner: its inbound SAs' MSS clamp changed (the tunnel's, which went to
    /// every worker in `SetTunnel`).
    SetInboundMss {
        tunnel: TunnelId,
        tcp_mss: u16,
    },
    /// On the tunnel's owner: its outbound SA's outer headers rebuilt for the tunnel's new
    /// NAT-T ports or dial-up peer (RFC 7296 section 2.23: the peer is now elsewhere, behind
    /// its NAT); keys, sequence numbers and counters go on.
    Reencap {
        tunnel: TunnelId,
        encap: crate::esp::outer::TunnelEncap,
    },
    /// On the tunnel's owner: more sequence numbers for its outbound SA `spi` (published
    /// before this is sent).
    ExtendLease {
        tunnel: TunnelId,
        spi: u32,
        lease: crate::sa::Lease,
    },
    /// On every worker but the owner: an inbound SPI and the worker that holds its SA.
    SetSpi {
        spi: u32,
        owner: WorkerIndex,
    },
    DelSpi {
        spi: u32,
    },
    /// On the owner: the inbound SA for `spi`, kept at `index`.
    InstallInbound {
        spi: u32,
        index: InboundIndex,
        sa: Owned<InboundSa>,
    },
    /// On the owner: retires the inbound SA for `spi`.
    RemoveInbound {
        spi: u32,
    },
    /// Retires every SA (the worker is stopping): the main lcore frees them.
    RetireAll,
    /// The policies' lookup table (policy-based VPNs); `None`: no policies, no lookup.
    SetPolicies(Option<std::sync::Arc<super::policy::Policies>>),
}

/// A command as it travels: the generation of the change it belongs to.
pub struct Envelope {
    pub generation: u64,
    pub command: WorkerCommand,
}

/// What a worker's traffic found out, for the main lcore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Resolve this next hop on this port (by ARP, or IPv6 neighbor discovery).
    Resolve { port: u16, addr: IpAddr },
    /// An SA reached a lifetime or the end of its sequence numbers.
    Sa {
        spi: u32,
        direction: Direction,
        kind: SaEventKind,
    },
    /// Traffic for a tunnel that has no outbound SA (what IKE calls an ACQUIRE).
    Acquire { tunnel: TunnelId },
}

/// An SA a worker no longer holds, going back to the main lcore to be freed (its crypto
/// session with it).
#[derive(Debug)]
pub enum Retired {
    Outbound(Owned<OutboundSa>),
    Inbound(Owned<InboundSa>),
}
