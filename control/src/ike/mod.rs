//! IKEv2 (RFC 7296), as a sans-IO core the control process drives: `wire` is the message
//! format (never panicking on any input), `kdf` the key schedule, `proposal` the algorithms
//! in strongSwan's syntax and the responder's choice. The SA state machine, the AUTH
//! computation, SK encryption and the transports come next (issue 17).

pub mod kdf;
pub mod proposal;
pub mod wire;
