//! DPDK 22.11 for espgw: raw bindings in [`sys`] and a thin safe layer for
//! what the dataplane uses (EAL, mempools, mbufs, ports, rings, lcores, DPDK's heap,
//! crypto devices and sessions, telemetry). It knows nothing of ESP.
//!
//! Fast-path calls (`rx_burst`, `tx_burst`, ring bursts) are thin wrappers
//! over the `espgw_*` C shim, without allocation.

#![warn(clippy::undocumented_unsafe_blocks)]

pub mod sys;

pub mod cryptodev;
pub mod eal;
pub mod error;
pub mod lcore;
pub mod malloc;
pub mod mbuf;
pub mod mempool;
pub mod port;
pub mod ring;
pub mod telemetry;

pub use cryptodev::{AeadDirection, AeadLengths, AeadSession, Cryptodev, SessionPool};
pub use eal::Eal;
pub use error::{Error, Result};
pub use mbuf::Mbuf;
pub use mempool::Mempool;
pub use port::{port_count, rx_burst, tx_burst, Port, PortConfig, PortStats};
pub use ring::Ring;
pub use telemetry::{TelContainer, TelData};
