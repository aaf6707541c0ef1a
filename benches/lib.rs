//! Shared fixtures for the criterion benches live in `benches/`; this crate has no library code.
