//! espgw dataplane: ESP tunnel encapsulation and decapsulation (RFC 4303, RFC 4106, RFC 3948)
//! on DPDK ports, forwarding like a router.
//!
//! The packet path (`wire`, `esp`, `sa`, `forward`), the tables it works in (`mem`), and the
//! main lcore's control state (`control_state`, fed by `config` or, over `control_channel`,
//! by the control process with `channel` changes) are plain Rust over the `PacketBuf` trait: they build and are tested
//! without DPDK (`--no-default-features`). With the `dpdk` feature (the default), `worker`,
//! `main_lcore`, `mbuf`, `stats`, `telemetry`, `app` and the cryptodev backend
//! (`esp::crypto::cryptodev`) put it on DPDK.

pub mod anchor;
pub mod burst;
/// The configuration file, in its own crate (the control process links it without DPDK).
pub use config;
pub mod control_channel;
pub mod control_state;
pub mod counters;
pub mod esp;
pub mod forward;
pub mod link;
pub mod mem;
pub mod packet;
pub mod prefetch;
pub mod reassembly;
pub mod sa;
pub mod wire;

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

#[cfg(feature = "dpdk")]
pub mod app;
#[cfg(feature = "dpdk")]
pub mod host_check;
#[cfg(feature = "dpdk")]
pub mod main_lcore;
#[cfg(feature = "dpdk")]
pub mod mbuf;
#[cfg(feature = "dpdk")]
pub mod stats;
#[cfg(feature = "dpdk")]
pub mod telemetry;
#[cfg(feature = "dpdk")]
pub mod worker;
