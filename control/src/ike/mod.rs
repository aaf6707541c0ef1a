//! IKEv2 (RFC 7296), as a sans-IO core the control process drives: `wire` is the message
//! format (checked views and plain representations, never panicking on any input). The key
//! schedule, the SA state machine and the transports come next (issue 17).

pub mod wire;
