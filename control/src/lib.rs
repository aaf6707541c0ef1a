//! espgw's control process.
//!
//! It owns the configuration and the keys: it validates a candidate configuration completely
//! (`config`), keeps every commit (`store`), sends the dataplane only what changed (`diff`)
//! over the shared-memory channel (`link`), resyncs a dataplane that restarted and one it finds
//! after its own restart (`daemon`), and serves the REST port (`api`) the `espgw` CLI uses.

pub mod api;
pub mod api_ike;
pub mod daemon;
pub mod diff;
pub mod ike;
pub mod ike_manager;
pub mod ike_transport;
pub mod link;
pub mod metrics;
pub mod redact;
pub mod store;
