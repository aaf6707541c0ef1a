//! espgw dataplane: ESP tunnel encapsulation and decapsulation (RFC 4303, RFC 4106, RFC 3948)
//! on DPDK ports, forwarding like a router.
//!
//! The packet path (`wire`, `esp`, `sa`, `forward`) is plain Rust over the `PacketBuf` trait
//! and is tested without DPDK; `worker`, `main_lcore`, `ports` and `telemetry` put it on DPDK.

pub mod config;
pub mod counters;
pub mod esp;
pub mod forward;
pub mod packet;
pub mod prefetch;
pub mod provision;
pub mod sa;
pub mod wire;

pub mod anchor;
pub mod app;
pub mod heap;
pub mod main_lcore;
pub mod mbuf;
pub mod stats;
pub mod telemetry;
pub mod testkit;
pub mod worker;
