//! Raw bindgen output for the DPDK headers listed in `shim/wrapper.h`, plus
//! the `espgw_*` shim functions. Everything here is `unsafe` to use; prefer
//! the safe modules of this crate.

#![allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    clippy::all,
    clippy::pedantic,
    clippy::undocumented_unsafe_blocks,
    rustdoc::all
)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
